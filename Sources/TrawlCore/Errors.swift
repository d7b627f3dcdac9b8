import TrawlABI

/// What kind of failure a source reported: the ABI's error code.
public typealias SourceErrorCode = TrawlErrorCode

/// Why a packet source could not be opened or read, worded as Zeek words it so that
/// scripts written against Zeek's messages keep working; the code beside it says what kind
/// of failure it is, when the source said.
public enum PacketSourceError: Error, Equatable, CustomStringConvertible {
    /// `problem with trace file X (reason)`
    case traceFile(String, reason: String, code: SourceErrorCode = .unspecified)
    /// `problem with interface X (reason)`
    case interface(String, reason: String, code: SourceErrorCode = .unspecified)
    /// No component has the prefix, or it lacks the mode.
    case unsupportedSourceType(prefix: String, mode: SourceMode)
    /// A failure while reading an already open source.
    case read(String, reason: String, code: SourceErrorCode = .unspecified)

    public static func problem(_ name: String, mode: SourceMode, reason: String,
                               code: SourceErrorCode = .unspecified) -> PacketSourceError {
        mode == .live ? .interface(name, reason: reason, code: code) : .traceFile(name, reason: reason, code: code)
    }

    public var description: String {
        switch self {
        case let .traceFile(name, reason, _): return "problem with trace file \(name) (\(reason))"
        case let .interface(name, reason, _): return "problem with interface \(name) (\(reason))"
        case let .unsupportedSourceType(prefix, _):
            return "type of packet source '\(prefix)' not recognized, or mode not supported"
        case let .read(name, reason, _): return "problem reading from \(name) (\(reason))"
        }
    }

    public var code: SourceErrorCode {
        switch self {
        case let .traceFile(_, _, code), let .interface(_, _, code), let .read(_, _, code): return code
        case .unsupportedSourceType: return .unspecified
        }
    }
}

extension Errno {
    /// The kind of source failure this errno means.
    public var sourceErrorCode: SourceErrorCode { SourceErrorCode(errno: rawValue) }
}
