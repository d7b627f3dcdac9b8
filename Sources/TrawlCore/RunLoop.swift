#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Asks a run loop (and whatever else holds it) to stop; safe from any thread.
public final class StopToken: Sendable {
    private let flag = Atomic<Bool>(false)
    public init() {}
    public var isStopped: Bool { flag.load(ordering: .relaxed) }
    public func stop() { flag.store(true, ordering: .relaxed) }
}

/// Something the run loop drives: a packet source's reader, a socket's handler. `process`
/// does the work that is ready without blocking and says whether there was any; when no
/// source had work, the loop sleeps in `poll` on their descriptors until one is readable,
/// a timer is due or 100 ms have passed.
public protocol IOSource: AnyObject {
    func process() throws -> Bool
    /// Readable when there may be work; nil for a source that is always ready (a trace file)
    /// or that must be asked (a source without a descriptor: then the loop naps 1 ms).
    var descriptor: Int32? { get }
    /// True once the source has nothing more to give (a trace's end).
    var isExhausted: Bool { get }
}

/// One loop for a node's thread, as Zeek's IOSource manager: it drives the packet sources,
/// the sockets and the timers together and stops at the stop token, so that `trawl` and an
/// embedder share it. Handlers run on the loop's thread, one at a time.
public final class RunLoop {
    public let stopToken: StopToken
    private var sources: [any IOSource] = []
    /// Sources that count towards the end: the loop ends when all of these are exhausted.
    private var ending: [ObjectIdentifier] = []
    private var timers: [Timer] = []
    private var pollSet: [pollfd] = []

    public init(stopToken: StopToken = StopToken()) { self.stopToken = stopToken }

    /// Adds a source. With `endsLoop` the loop ends once it (and every other such source)
    /// is exhausted; without, the source is served for as long as the loop runs.
    public func add(_ source: any IOSource, endsLoop: Bool = false) {
        sources.append(source)
        if endsLoop { ending.append(ObjectIdentifier(source)) }
    }

    public func remove(_ source: any IOSource) {
        sources.removeAll { $0 === source }
        ending.removeAll { $0 == ObjectIdentifier(source) }
    }

    /// Calls `handler` every `interval` nanoseconds of monotonic time, first after one interval.
    @discardableResult
    public func every(_ interval: UInt64, _ handler: @escaping () throws -> Void) -> TimerHandle {
        let timer = Timer(due: Clock.monotonicNanoseconds() &+ interval, interval: interval, handler: handler)
        timers.append(timer)
        return TimerHandle(timer: timer)
    }

    /// Calls `handler` once, at `deadline` (monotonic nanoseconds).
    @discardableResult
    public func at(_ deadline: UInt64, _ handler: @escaping () throws -> Void) -> TimerHandle {
        let timer = Timer(due: deadline, interval: 0, handler: handler)
        timers.append(timer)
        return TimerHandle(timer: timer)
    }

    /// Runs until stopped or, when sources were added with `endsLoop`, until they are all
    /// exhausted. An error from a source or a timer ends the loop and is thrown.
    public func run() throws {
        while !stopToken.isStopped {
            if !ending.isEmpty && sources.allSatisfy({ !ending.contains(ObjectIdentifier($0)) || $0.isExhausted }) { return }
            try runOnce(maximumWait: 100)
        }
    }

    /// One round: fires due timers, lets every source work, and when none had any, waits up
    /// to `maximumWait` milliseconds (less when a timer is due sooner) for a descriptor.
    public func runOnce(maximumWait: Int32) throws {
        try fireTimers()
        var busy = false
        for source in sources where !source.isExhausted {
            if try source.process() { busy = true }
            if stopToken.isStopped { return }
        }
        if busy { return }
        var wait = maximumWait
        if let next = timers.lazy.map(\.due).min() {
            let now = Clock.monotonicNanoseconds()
            wait = next <= now ? 0 : Int32(min(UInt64(wait), (next - now + 999_999) / 1_000_000))
        }
        pollSet.removeAll(keepingCapacity: true)
        var askOnly = false
        for source in sources where !source.isExhausted {
            if let fd = source.descriptor { pollSet.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) } else { askOnly = true }
        }
        if askOnly { wait = min(wait, 1) }
        guard wait > 0 else { return }
        _ = poll(&pollSet, nfds_t(pollSet.count), wait) // EINTR and timeouts alike: go round again
    }

    private func fireTimers() throws {
        guard !timers.isEmpty else { return }
        let now = Clock.monotonicNanoseconds()
        var index = 0
        while index < timers.count {
            let timer = timers[index]
            if timer.cancelled { timers.remove(at: index); continue }
            if timer.due <= now {
                if timer.interval == 0 { timers.remove(at: index) } else {
                    // Catch up without firing for every missed interval.
                    timer.due = max(timer.due &+ timer.interval, now &+ 1)
                    index += 1
                }
                try timer.handler()
            } else {
                index += 1
            }
        }
    }

    /// Fires the timers that are due: for a loop body of one's own (the packet thread's
    /// tight read loop) that still wants the timers.
    public func fireDueTimers() throws { try fireTimers() }

    final class Timer {
        var due: UInt64
        let interval: UInt64
        let handler: () throws -> Void
        var cancelled = false
        init(due: UInt64, interval: UInt64, handler: @escaping () throws -> Void) {
            self.due = due
            self.interval = interval
            self.handler = handler
        }
    }
}

/// Cancels a timer.
public struct TimerHandle {
    let timer: RunLoop.Timer
    public func cancel() { timer.cancelled = true }
}
