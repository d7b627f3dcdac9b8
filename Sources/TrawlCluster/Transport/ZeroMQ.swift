#if canImport(Glibc)
import Glibc
#endif
import CZeroMQ

/// An error from libzmq, with its number and libzmq's text for it.
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    public let code: Int32
    public let operation: String

    static func last(_ operation: String) -> ZMQError { ZMQError(code: zmq_errno(), operation: operation) }

    public var description: String { "\(operation): \(String(cString: zmq_strerror(code)))" }
    public var wouldBlock: Bool { code == EAGAIN }
    public var interrupted: Bool { code == EINTR }
}

/// A libzmq context: one per process, shared by its sockets and their threads.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() {
        handle = zmq_ctx_new()
        // Our own threads block signals; libzmq's I/O thread must not take SIGINT/SIGTERM either.
        zmq_ctx_set(handle, ZMQ_BLOCKY, 0)
    }

    deinit { zmq_ctx_term(handle) }

    /// A CURVE key pair in Z85 text (40 characters each).
    public static func curveKeyPair() throws(ZMQError) -> (publicKey: String, secretKey: String) {
        var publicKey = [CChar](repeating: 0, count: 41), secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw .last("zmq_curve_keypair") }
        return (cText(publicKey), cText(secretKey))
    }

    /// The public key that goes with a Z85 secret key, or nil when the text is not one.
    public static func curvePublicKey(secretKey: String) -> String? {
        guard secretKey.utf8.count == 40 else { return nil }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { return nil }
        return cText(publicKey)
    }
}

/// One libzmq socket, used by one thread at a time (libzmq sockets are not thread-safe).
public final class ZMQSocket: @unchecked Sendable { // handed over between threads, never shared
    public enum Kind {
        case router, dealer, pub, sub, xpub, xsub, push, pull, rep, pair
        var raw: Int32 {
            switch self {
            case .router: return ZMQ_ROUTER
            case .dealer: return ZMQ_DEALER
            case .pub: return ZMQ_PUB
            case .sub: return ZMQ_SUB
            case .xpub: return ZMQ_XPUB
            case .xsub: return ZMQ_XSUB
            case .push: return ZMQ_PUSH
            case .pull: return ZMQ_PULL
            case .rep: return ZMQ_REP
            case .pair: return ZMQ_PAIR
            }
        }
    }

    let handle: UnsafeMutableRawPointer
    private var closed = false

    public init(_ context: ZMQContext, _ kind: Kind) throws(ZMQError) {
        guard let socket = zmq_socket(context.handle, kind.raw) else { throw .last("zmq_socket") }
        handle = socket
        try set(ZMQ_LINGER, Int32(0)) // what is unsent at close is the outbox's business, not libzmq's
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    public func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else { throw .last("zmq_setsockopt \(option)") }
    }

    public func set(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else { throw .last("zmq_setsockopt \(option)") }
    }

    public func set(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let status = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard status == 0 else { throw .last("zmq_setsockopt \(option)") }
    }

    public func set(_ option: Int32, text: String) throws(ZMQError) {
        try set(option, bytes: Array(text.utf8))
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw .last("cannot listen on \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw .last("cannot connect to \(endpoint)") }
    }

    /// Has libzmq report `events` of this socket on a PAIR socket at `endpoint` (inproc).
    public func monitor(_ endpoint: String, events: Int32) throws(ZMQError) {
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else { throw .last("zmq_socket_monitor") }
    }

    public func disconnect(_ endpoint: String) {
        _ = zmq_disconnect(handle, endpoint)
    }

    /// The descriptor that becomes readable when the socket's events may have changed
    /// (edge-triggered: read `events` after it fires, and drain).
    public var fileDescriptor: Int32 {
        var fd: Int32 = -1
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_FD, &fd, &size)
        return fd
    }

    public var canReceive: Bool { events & Int32(ZMQ_POLLIN) != 0 }
    public var canSend: Bool { events & Int32(ZMQ_POLLOUT) != 0 }

    private var events: Int32 {
        var events: Int32 = 0
        var size = MemoryLayout<Int32>.size
        zmq_getsockopt(handle, ZMQ_EVENTS, &events, &size)
        return events
    }

    /// Sends the frames as one message. False when it would block (with `wait` false).
    @discardableResult
    public func send(_ frames: [[UInt8]], wait: Bool = false) throws(ZMQError) -> Bool {
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = wait ? 0 : ZMQ_DONTWAIT
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let sent = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if sent < 0 {
                let error = ZMQError.last("zmq_send")
                // Only the first frame can block: libzmq takes a message's later frames once the first is in.
                if error.wouldBlock && index == 0 { return false }
                if error.interrupted { continue }
                throw error
            }
        }
        return true
    }

    /// The next message's frames, or nil when none is waiting (with `wait` false).
    public func receive(wait: Bool = false) throws(ZMQError) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let received = zmq_msg_recv(&message, handle, wait || !frames.isEmpty ? 0 : ZMQ_DONTWAIT)
            if received < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                if error.wouldBlock && frames.isEmpty { return nil }
                if error.interrupted { continue }
                throw error
            }
            let size = zmq_msg_size(&message)
            let data = zmq_msg_data(&message)!
            frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }
}

/// The text of a NUL-terminated C character array.
func cText(_ characters: [CChar]) -> String {
    String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
