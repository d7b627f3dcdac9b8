import Synchronization

/// A weird a packet source reported (Zeek's PktSrc::Weird): its name and `addl`.
public struct SourceWeird: Equatable, Sendable {
    public let name: String
    public let addl: String?
    public init(name: String, addl: String?) {
        self.name = name
        self.addl = addl
    }
}

/// What a packet source says beside its packets, from any thread (a plugin's background
/// reader as well as its next_batch): warnings, shown at once; weirds, kept until the
/// reading thread takes them for the analysis; and a failure, after which the source is
/// read no more (Zeek's PktSrc::Info, Weird and Error). Everything is bounded: a source
/// that reports on every packet costs counters, not memory.
public final class SourceReports: Sendable {
    public let sourceName: String
    /// Where warnings go; stderr in trawl, a list in tests.
    let show: @Sendable (String) -> Void

    public static let warningsShown = 100
    public static let weirdsKept = 1024

    private struct State {
        var warnings: UInt64 = 0
        var weirds: [SourceWeird] = []
        var weirdsReported: UInt64 = 0
        var weirdsDropped: UInt64 = 0
        var failure: (message: String, code: SourceErrorCode)?
    }
    private let state = Mutex(State())
    /// Set when weirds wait or a failure came: the reading thread looks at this after each
    /// batch without taking the lock.
    private let pending = Atomic<Bool>(false)

    public init(sourceName: String, show: @escaping @Sendable (String) -> Void = { writeStandardError($0 + "\n") }) {
        self.sourceName = sourceName
        self.show = show
    }

    public func warning(_ message: String) {
        let n = state.withLock { state in
            state.warnings += 1
            return state.warnings
        }
        if n <= UInt64(Self.warningsShown) {
            show("warning: \(sourceName): \(message)")
        } else if n == UInt64(Self.warningsShown) + 1 {
            show("warning: \(sourceName): more warnings than \(Self.warningsShown); the rest are counted, not shown")
        }
    }

    public func weird(_ name: String, addl: String?) {
        state.withLock { state in
            state.weirdsReported += 1
            if state.weirds.count < Self.weirdsKept {
                state.weirds.append(SourceWeird(name: name, addl: addl))
            } else {
                state.weirdsDropped += 1
            }
        }
        pending.store(true, ordering: .releasing)
    }

    /// The first failure stands; later ones add nothing.
    public func fail(_ message: String, code: SourceErrorCode) {
        state.withLock { state in
            if state.failure == nil { state.failure = (message, code) }
        }
        pending.store(true, ordering: .releasing)
    }

    /// Whether weirds or a failure wait: one atomic load, for every batch.
    @inline(__always) public var hasPending: Bool { pending.load(ordering: .acquiring) }

    /// The weirds reported since the last call, oldest first.
    public func takeWeirds() -> [SourceWeird] {
        state.withLock { state in
            defer { state.weirds.removeAll(keepingCapacity: true) }
            if state.failure == nil { pending.store(false, ordering: .relaxed) }
            return state.weirds
        }
    }

    public var failure: (message: String, code: SourceErrorCode)? { state.withLock { $0.failure } }

    public var counts: (warnings: UInt64, weirds: UInt64, weirdsDropped: UInt64) {
        state.withLock { ($0.warnings, $0.weirdsReported, $0.weirdsDropped) }
    }
}
