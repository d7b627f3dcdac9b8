#if canImport(Glibc)
import Glibc
#endif
import CZeroMQ
import Synchronization
import TrawlCore

/// Sends a node's log batches to the loggers on a thread of its own, so that neither the
/// packet thread nor the log thread waits on the network. One logger at a time takes a
/// node's batches, in order, with up to `window` of them unacknowledged; a logger that
/// leaves batches unacknowledged for `ackTimeout` gets them again, and when several loggers
/// exist the next one is tried. The logger acknowledges a batch once it is written and
/// recognises one it wrote before, so a batch is written once, whatever is resent.
public final class LogShipper: @unchecked Sendable {
    public struct Settings: Sendable {
        public var window = 64
        public var ackTimeout: UInt64 = 3_000_000_000
        public init() {}
    }

    let outbox: Outbox
    private let loggers: [ClusterNode]
    private let context: ZMQContext
    private let settings: Settings
    private let security: ClusterSecurity
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?
    /// Which logger takes the batches now (an index into `loggers`).
    private var active = 0
    /// Failures to set up a socket, said once.
    private let warn: @Sendable (String) -> Void

    init(outbox: Outbox, loggers: [ClusterNode], context: ZMQContext, security: ClusterSecurity, settings: Settings = Settings(),
         warn: @escaping @Sendable (String) -> Void) {
        precondition(!loggers.isEmpty, "a shipper needs a logger")
        self.outbox = outbox
        self.loggers = loggers
        self.context = context
        self.security = security
        self.settings = settings
        self.warn = warn
        // Nodes spread over the loggers by name, so that each logger gets its share.
        active = 0
    }

    public func start(node: String) {
        active = Int(truncatingIfNeeded: stableHash(node) % UInt64(loggers.count))
        thread = startThread { [self] in run() }
    }

    /// Waits up to `timeout` for the loggers to acknowledge everything, stops the thread,
    /// and spools what is left so that the node's next run sends it. Returns the batches
    /// spooled.
    @discardableResult
    public func finish(timeout: UInt64) -> Int {
        _ = outbox.waitUntilEmpty(deadline: Clock.monotonicNanoseconds() &+ timeout)
        stopping.store(true, ordering: .relaxed)
        outbox.wakeup.signal()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        return outbox.spoolRemaining()
    }

    public var counters: DeliveryCounters { outbox.snapshot }

    private func run() {
        var sockets: [ZMQSocket] = []
        for logger in loggers {
            do {
                let socket = try ZMQSocket(context, .dealer)
                try socket.set(ZMQ_IMMEDIATE, Int32(1)) // no queueing towards a logger that is not there
                try socket.set(ZMQ_SNDHWM, Int32(settings.window * 2))
                try socket.set(ZMQ_RCVHWM, Int32(settings.window * 4))
                try security.configureClient(socket, server: logger)
                try socket.connect(logger.endpoint()!)
                sockets.append(socket)
            } catch {
                warn("cluster: cannot set up the link to logger \(logger.name): \(error)")
                return
            }
        }
        var descriptors = [pollfd(fd: outbox.wakeup.descriptor, events: Int16(POLLIN), revents: 0)]
        descriptors += sockets.map { pollfd(fd: $0.fileDescriptor, events: Int16(POLLIN), revents: 0) }
        var nextCheck = Clock.monotonicNanoseconds() &+ 500_000_000
        // When the active logger last acknowledged something (or had nothing to do).
        var lastProgress = Clock.monotonicNanoseconds()
        while !stopping.load(ordering: .relaxed) {
            outbox.wakeup.clear()
            var acknowledged = 0
            for socket in sockets { acknowledged += receiveAcks(socket) }
            let now = Clock.monotonicNanoseconds()
            if acknowledged > 0 || outbox.pending == 0 { lastProgress = now }
            send(through: sockets[active], now: now)
            if now >= nextCheck {
                nextCheck = now &+ 500_000_000
                let requeued = outbox.requeue(from: active, olderThan: settings.ackTimeout, now: now)
                // A logger that answers nothing for the timeout (down, unreachable, stalled)
                // hands its share to the next one, which gets the batches again in order.
                if loggers.count > 1 && (requeued > 0 || now &- lastProgress > settings.ackTimeout) {
                    let silent = loggers[active].name
                    _ = outbox.requeue(from: active, olderThan: 0, now: now)
                    active = (active + 1) % loggers.count
                    lastProgress = now
                    warn("cluster: logger \(silent) has not acknowledged anything for \(settings.ackTimeout / 1_000_000_000) s; sending to \(loggers[active].name)")
                }
            }
            for index in descriptors.indices { descriptors[index].revents = 0 }
            _ = poll(&descriptors, nfds_t(descriptors.count), 100)
        }
    }

    /// Takes the acknowledgements waiting on `socket`; returns how many.
    private func receiveAcks(_ socket: ZMQSocket) -> Int {
        var count = 0
        while socket.canReceive, let frames = try? socket.receive(), let last = frames.last {
            guard let ack = try? LogAck(last) else { continue } // not an ack: ignored
            outbox.acknowledge(session: ack.session, sequence: ack.sequence, duplicate: ack.status == .duplicate,
                               refused: ack.status == .refused)
            count += 1
        }
        return count
    }

    private func send(through socket: ZMQSocket, now: UInt64) {
        let batches = outbox.takeForSending(to: active, window: settings.window, now: now)
        for (index, batch) in batches.enumerated() {
            let sent = (try? socket.send([[], batch.bytes])) ?? false
            if !sent {
                // Not connected (or its queue is full): these go back to unsent, to be tried again.
                _ = outbox.unsend(batches[index...].map { ($0.session, $0.sequence) })
                return
            }
        }
    }
}

/// FNV-1a of a name: stable across runs and machines (Swift's Hasher is seeded per process).
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return hash
}
