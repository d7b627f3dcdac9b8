#if canImport(Glibc)
import Glibc
#endif
import CZeroMQ
import TrawlCore

/// The manager's event forwarder, as Zeek 9's ZeroMQ backend has it: nodes publish into its
/// XSUB port (the manager's port + 1) and subscribe at its XPUB port (the manager's port);
/// libzmq's proxy passes messages one way and subscriptions the other, on a thread of its own.
public final class Forwarder: @unchecked Sendable {
    let frontend: ZMQSocket, backend: ZMQSocket
    private let control: ZMQSocket, steering: ZMQSocket
    private var thread: pthread_t?

    public init(context: ZMQContext, manager: ClusterNode, security: ClusterSecurity) throws(ZMQError) {
        frontend = try ZMQSocket(context, .xsub)
        backend = try ZMQSocket(context, .xpub)
        try frontend.set(ZMQ_RCVHWM, Int32(100_000))
        try backend.set(ZMQ_SNDHWM, Int32(100_000))
        try frontend.set(ZMQ_MAXMSGSIZE, Int64(1 << 20))
        try security.configureServer(frontend)
        try security.configureServer(backend)
        try frontend.bind(Self.listening(manager, offset: 1))
        try backend.bind(Self.listening(manager, offset: 0))
        let endpoint = "inproc://trawl-forwarder-control-\(getpid())"
        control = try ZMQSocket(context, .pair)
        try control.bind(endpoint)
        steering = try ZMQSocket(context, .pair)
        try steering.connect(endpoint)
    }

    static func listening(_ node: ClusterNode, offset: UInt16) -> String {
        "tcp://" + (node.host.contains(":") ? "[\(node.host)]" : node.host) + ":\(node.port! + offset)"
    }

    /// Watches both listening sockets for failed handshakes (before `start`: the sockets
    /// belong to the forwarder's thread after it).
    public func monitors(context: ZMQContext, report: @escaping Reporter) throws(ZMQError) -> [HandshakeMonitor] {
        [try HandshakeMonitor(watching: frontend, context: context, report: report),
         try HandshakeMonitor(watching: backend, context: context, report: report)]
    }

    public func start() {
        let frontend = self.frontend, backend = self.backend, control = self.control
        thread = startThread {
            _ = zmq_proxy_steerable(frontend.handle, backend.handle, nil, control.handle)
        }
    }

    public func stop() {
        _ = try? steering.send([Array("TERMINATE".utf8)], wait: true)
        if let thread { pthread_join(thread, nil) }
        thread = nil
        for socket in [frontend, backend, control, steering] { socket.close() }
    }
}
