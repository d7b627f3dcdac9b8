/// Why a packet source could not be opened or read, worded as Zeek words it so that
/// scripts written against Zeek's messages keep working.
public enum PacketSourceError: Error, Equatable, CustomStringConvertible {
    /// `problem with trace file X (reason)`
    case traceFile(String, reason: String)
    /// `problem with interface X (reason)`
    case interface(String, reason: String)
    /// No component has the prefix, or it lacks the mode.
    case unsupportedSourceType(prefix: String, mode: SourceMode)
    /// A failure while reading an already open source.
    case read(String, reason: String)

    public static func problem(_ name: String, mode: SourceMode, reason: String) -> PacketSourceError {
        mode == .live ? .interface(name, reason: reason) : .traceFile(name, reason: reason)
    }

    public var description: String {
        switch self {
        case let .traceFile(name, reason): return "problem with trace file \(name) (\(reason))"
        case let .interface(name, reason): return "problem with interface \(name) (\(reason))"
        case let .unsupportedSourceType(prefix, _):
            return "type of packet source '\(prefix)' not recognized, or mode not supported"
        case let .read(name, reason): return "problem reading from \(name) (\(reason))"
        }
    }
}
