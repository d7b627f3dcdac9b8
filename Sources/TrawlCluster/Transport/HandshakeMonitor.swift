import CZeroMQ
import Synchronization
import TrawlCore

/// Watches a listening socket for peers whose handshake failed: a node without the
/// cluster's keys, or plaintext against CURVE. Each failure is counted and reported (the
/// ZAP handler names the peer when the key itself was wrong). Runs on the node's loop.
public final class HandshakeMonitor: IOSource {
    private let pair: ZMQSocket
    private let report: Reporter
    public private(set) var failures: UInt64 = 0
    private static let counter = Atomic<Int>(0)

    public init(watching socket: ZMQSocket, context: ZMQContext, report: @escaping Reporter) throws(ZMQError) {
        let endpoint = "inproc://trawl-monitor-\(Self.counter.add(1, ordering: .relaxed).newValue)"
        try socket.monitor(endpoint, events: ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        pair = try ZMQSocket(context, .pair)
        try pair.connect(endpoint)
        self.report = report
    }

    public var descriptor: Int32? { pair.fileDescriptor }
    public var isExhausted: Bool { false }

    public func process() throws -> Bool {
        var any = false
        while pair.canReceive, let frames = try pair.receive(), frames.count == 2, frames[0].count >= 6 {
            any = true
            failures += 1
            let event = UInt16(frames[0][0]) | UInt16(frames[0][1]) << 8
            let endpoint = String(decoding: frames[1], as: UTF8.self)
            let why: String
            switch Int32(event) {
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: why = "its key is not the cluster's"
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: why = "the handshake broke the protocol (no keys, or plaintext against encryption?)"
            default: why = "the handshake failed (a key that is not the cluster's?)"
            }
            if failures <= 100 { report("refused a connection on \(endpoint): \(why)") }
        }
        return any
    }

    public func close() { pair.close() }
}
