import TrawlAnalysis
import TrawlCore

/// A batch of log records of one stream from one node, as it travels to a logger: the
/// stream's schema, then the records. docs/cluster-protocol.md describes the bytes.
public struct LogBatchHeader: Equatable, Sendable {
    public var node: String
    /// Chosen at random when the node starts: with `sequence`, names the batch uniquely.
    public var session: UInt64
    /// 1, 2, 3... within a session, in the order the node made its batches.
    public var sequence: UInt64
    public var path: String
    public var fields: [(name: String, type: LogFieldType)]

    public init(node: String, session: UInt64, sequence: UInt64, path: String, fields: [(name: String, type: LogFieldType)]) {
        self.node = node
        self.session = session
        self.sequence = sequence
        self.path = path
        self.fields = fields
    }

    public static func == (a: LogBatchHeader, b: LogBatchHeader) -> Bool {
        a.node == b.node && a.session == b.session && a.sequence == b.sequence && a.path == b.path
            && a.fields.elementsEqual(b.fields, by: { $0.name == $1.name && $0.type == $1.type })
    }
}

/// The field types a batch can carry, with their codes on the wire.
public enum LogFieldType: UInt8, Sendable {
    case bool = 1, count = 2, int = 3, double = 4, time = 5, interval = 6, string = 7, address = 8, port = 9,
         enumeration = 10, stringSet = 11

    /// From Zeek's name of the type, as schemas spell it.
    public init?(zeekName: String) {
        switch zeekName {
        case "bool": self = .bool
        case "count": self = .count
        case "int": self = .int
        case "double": self = .double
        case "time": self = .time
        case "interval": self = .interval
        case "string": self = .string
        case "addr": self = .address
        case "port": self = .port
        case "enum": self = .enumeration
        case "set[string]": self = .stringSet
        default: return nil
        }
    }

    public var zeekName: String {
        switch self {
        case .bool: return "bool"
        case .count: return "count"
        case .int: return "int"
        case .double: return "double"
        case .time: return "time"
        case .interval: return "interval"
        case .string: return "string"
        case .address: return "addr"
        case .port: return "port"
        case .enumeration: return "enum"
        case .stringSet: return "set[string]"
        }
    }
}

/// The limits a decoder holds a batch to; anything beyond is refused whole.
public enum LogBatchLimits {
    public static let maximumBytes = 64 << 20
    public static let maximumFields = 256
    public static let maximumRecords = 1 << 20
    public static let maximumName = 1024
}

/// Why a message was refused.
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case badMagic
    case unsupportedVersion(UInt8)
    case invalid(String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case let .truncated(what): return "truncated message (in \(what))"
        case .badMagic: return "not a Trawl cluster message"
        case let .unsupportedVersion(version): return "unsupported protocol version \(version) (this node speaks \(ClusterProtocol.version))"
        case let .invalid(what): return "invalid message: \(what)"
        case let .tooLarge(what): return "message too large: \(what)"
        }
    }
}

public enum ClusterProtocol {
    public static let version: UInt8 = 1
    static let batchMagic: [UInt8] = Array("TRLB".utf8)
    static let ackMagic: [UInt8] = Array("TRLA".utf8)
    static let eventMagic: [UInt8] = Array("TRLE".utf8)
}
