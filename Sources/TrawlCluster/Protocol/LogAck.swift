import TrawlCore

/// The logger's answer to a batch: it is written (or was already).
public struct LogAck: Equatable, Sendable {
    public enum Status: UInt8, Sendable { case written = 0, duplicate = 1, refused = 2 }
    public var status: Status
    public var session: UInt64
    public var sequence: UInt64

    public init(status: Status, session: UInt64, sequence: UInt64) {
        self.status = status
        self.session = session
        self.sequence = sequence
    }

    public var bytes: [UInt8] {
        var bytes = ClusterProtocol.ackMagic + [ClusterProtocol.version, status.rawValue, 0, 0]
        LogBatchEncoder.put(session, into: &bytes)
        LogBatchEncoder.put(sequence, into: &bytes)
        return bytes
    }

    public init(_ bytes: [UInt8]) throws(ProtocolError) {
        var (reader, code) = try WireReader.opening(bytes, magic: ClusterProtocol.ackMagic)
        guard let status = Status(rawValue: code) else { throw .invalid("ack status \(code)") }
        self.status = status
        session = try reader.u64("session")
        sequence = try reader.u64("sequence")
        guard reader.position == bytes.count else { throw .invalid("bytes after the ack") }
    }
}
