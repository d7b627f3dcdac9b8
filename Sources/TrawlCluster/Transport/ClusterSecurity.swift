#if canImport(Glibc)
import Glibc
#endif
import CZeroMQ
import Synchronization
import TrawlCore

/// CURVE on every link: the listening sockets (forwarder, loggers) are CURVE servers with
/// the cluster's server key; every node connects with the cluster's client key, and a ZAP
/// handler refuses any other client key, so a node without the keys cannot join. The keys
/// are four Z85 text files in one directory (`trawl --generate-cluster-keys DIR`).
public final class ClusterSecurity: @unchecked Sendable {
    public struct Keys: Sendable, Equatable {
        public var serverPublic: String, serverSecret: String
        public var clientPublic: String, clientSecret: String
    }

    public let keys: Keys?
    /// Connections refused for a wrong key, with the peer's address: for cluster.log.
    private let refusals = Mutex<[String]>([])
    private let refusedCount = Atomic<UInt64>(0)
    private var zapThread: pthread_t?
    private var zapSocket: ZMQSocket?
    private let stopping = Atomic<Bool>(false)

    public static let fileNames = ["server.public", "server.secret", "client.public", "client.secret"]

    /// No encryption: for one host, or when the layout asks for plaintext.
    public static let plaintext = ClusterSecurity(keys: nil)

    init(keys: Keys?) { self.keys = keys }

    /// The layout's choice: keys from its key directory; plaintext between hosts only when
    /// asked for (`warn` says so), never by default.
    public static func forLayout(_ layout: ClusterLayout, warn: (String) -> Void) throws(LayoutError) -> ClusterSecurity {
        if let directory = layout.keyDirectory {
            return ClusterSecurity(keys: try loadKeys(directory))
        }
        if layout.spansHosts {
            guard layout.allowPlaintext else {
                throw LayoutError(file: "layout", node: nil, field: "keys",
                                  message: "the nodes are on different hosts: give the cluster's keys (trawl --generate-cluster-keys DIR, then \"keys\": \"DIR\"), or \"plaintext\": true to send logs unencrypted")
            }
            warn("cluster: links between hosts are not encrypted (\"plaintext\": true in the layout)")
        }
        return .plaintext
    }

    static func loadKeys(_ directory: String) throws(LayoutError) -> Keys {
        var texts: [String] = []
        for name in fileNames {
            let path = directory + "/" + name
            let text: String
            do { text = try readFile(path) } catch {
                throw LayoutError(file: path, node: nil, field: nil, message: "cannot read the cluster key: \(error)")
            }
            let key = text.trimmingWhitespace
            guard key.utf8.count == 40 else {
                throw LayoutError(file: path, node: nil, field: nil, message: "not a CURVE key (40 characters of Z85 text)")
            }
            texts.append(key)
        }
        let keys = Keys(serverPublic: texts[0], serverSecret: texts[1], clientPublic: texts[2], clientSecret: texts[3])
        guard ZMQContext.curvePublicKey(secretKey: keys.serverSecret) == keys.serverPublic,
              ZMQContext.curvePublicKey(secretKey: keys.clientSecret) == keys.clientPublic else {
            throw LayoutError(file: directory, node: nil, field: nil, message: "the public and secret keys do not belong together")
        }
        return keys
    }

    /// Writes a new set of keys into `directory` (made if missing), readable by the owner only.
    public static func generateKeys(into directory: String) throws -> Keys {
        try makeDirectories(directory)
        let server = try ZMQContext.curveKeyPair(), client = try ZMQContext.curveKeyPair()
        let keys = Keys(serverPublic: server.publicKey, serverSecret: server.secretKey,
                        clientPublic: client.publicKey, clientSecret: client.secretKey)
        for (name, text) in zip(fileNames, [keys.serverPublic, keys.serverSecret, keys.clientPublic, keys.clientSecret]) {
            let path = directory + "/" + name
            guard access(path, F_OK) != 0 else { throw LayoutError(file: path, node: nil, field: nil, message: "exists already; not overwritten") }
            let file = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL, permissions: 0o600)
            try file.writeAll(Array((text + "\n").utf8))
            try file.close()
        }
        return keys
    }

    public func configureServer(_ socket: ZMQSocket) throws(ZMQError) {
        guard let keys else { return }
        try socket.set(ZMQ_CURVE_SERVER, Int32(1))
        try socket.set(ZMQ_CURVE_SECRETKEY, text: keys.serverSecret)
        try socket.set(ZMQ_ZAP_DOMAIN, text: "trawl")
    }

    public func configureClient(_ socket: ZMQSocket, server: ClusterNode) throws(ZMQError) {
        guard let keys else { return }
        try socket.set(ZMQ_CURVE_SERVERKEY, text: keys.serverPublic)
        try socket.set(ZMQ_CURVE_PUBLICKEY, text: keys.clientPublic)
        try socket.set(ZMQ_CURVE_SECRETKEY, text: keys.clientSecret)
    }

    /// Starts the ZAP handler of `context` (before any server socket binds): it accepts the
    /// cluster's client key and refuses every other, remembering who was refused.
    public func startAuthentication(_ context: ZMQContext) throws(ZMQError) {
        guard let keys, zapThread == nil else { return }
        let socket = try ZMQSocket(context, .rep)
        try socket.bind("inproc://zeromq.zap.01")
        zapSocket = socket
        var expected = [UInt8](repeating: 0, count: 32)
        _ = zmq_z85_decode(&expected, keys.clientPublic)
        let clientKey = expected
        zapThread = startThread { [self] in authenticate(socket, clientKey: clientKey) }
    }

    public func stopAuthentication() {
        stopping.store(true, ordering: .relaxed)
        if let zapThread { pthread_join(zapThread, nil) }
        zapThread = nil
        zapSocket?.close()
    }

    /// Refusals since the last call: "ADDRESS" each.
    public func takeRefusals() -> [String] { refusals.withLock { taken in defer { taken = [] }; return taken } }
    public var refused: UInt64 { refusedCount.load(ordering: .relaxed) }

    private func authenticate(_ socket: ZMQSocket, clientKey: [UInt8]) {
        var descriptor = [pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .relaxed) {
            while socket.canReceive, let request = try? socket.receive() {
                // ZAP 1.0 (rfc.zeromq.org/spec/27): version, request id, domain, address,
                // identity, mechanism, then the mechanism's credentials.
                guard request.count >= 6 else { continue }
                let address = String(decoding: request[3], as: UTF8.self)
                let mechanism = String(decoding: request[5], as: UTF8.self)
                let accepted = mechanism == "CURVE" && request.count >= 7 && request[6] == clientKey
                if !accepted {
                    refusedCount.add(1, ordering: .relaxed)
                    refusals.withLock { $0.append(address) }
                }
                let status = accepted ? "200" : "400"
                let text = accepted ? "OK" : "not the cluster's key"
                _ = try? socket.send([Array("1.0".utf8), request[1], Array(status.utf8), Array(text.utf8), [], []], wait: true)
            }
            descriptor[0].revents = 0
            _ = poll(&descriptor, 1, 100)
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        let bytes = Array(utf8)
        var start = 0, end = bytes.count
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x0a || bytes[start] == 0x0d || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x0a || bytes[end - 1] == 0x0d || bytes[end - 1] == 0x09 { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
