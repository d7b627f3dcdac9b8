import CTrawlABI

/// What kind of failure a source reported (the ABI's trawl_error_code), so that trawl and
/// trawlctl can react: name the missing capability, list the interfaces there are.
public enum SourceErrorCode: Int32, Sendable, Equatable {
    case unspecified = 0
    case permission = 1
    case noSuchDevice = 2
    case noSuchFile = 3
    case busy = 4
    case notSupported = 5
    case invalid = 6
    case noMemory = 7
    case format = 8
    case io = 9
    case unavailable = 10

    /// A code a newer plugin may send that this trawl does not know is unspecified.
    public init(code: Int32) { self = SourceErrorCode(rawValue: code) ?? .unspecified }
}

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
    public var sourceErrorCode: SourceErrorCode { SourceErrorCode(code: trawl_error_code_for_errno(rawValue)) }
}
