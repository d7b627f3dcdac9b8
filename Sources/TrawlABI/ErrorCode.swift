import CTrawlABI

/// What kind of failure a source reported (the ABI's trawl_error_code), so that trawl and
/// trawlctl can react: name the missing capability, list the interfaces there are. One
/// Swift spelling for the host (SourceErrorCode) and the SDK (PluginErrorCode).
public enum TrawlErrorCode: Int32, Sendable, Equatable {
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

    /// A code a newer plugin may send that this side does not know is unspecified.
    public init(code: Int32) { self = TrawlErrorCode(rawValue: code) ?? .unspecified }

    /// The kind of failure an errno value means.
    public init(errno value: Int32) { self.init(code: trawl_error_code_for_errno(value)) }
}
