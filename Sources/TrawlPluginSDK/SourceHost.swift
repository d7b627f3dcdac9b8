#if canImport(Glibc)
import Glibc
#endif
@_exported import TrawlABI

/// The host's services to an open source (the ABI's trawl_host; Zeek's PktSrc::Info, Weird
/// and Error). Callable from any thread, from `init(request:)` until the source is released.
/// A request made in Swift for a test has no host: then the calls do nothing.
public struct SourceHost: @unchecked Sendable {
    private let table: UnsafePointer<trawl_host>?

    public init(_ table: UnsafePointer<trawl_host>?) { self.table = table }

    /// A warning for the operator: trawl shows it on stderr, naming the source.
    public func warning(_ message: String) {
        guard let table, let warning = table.pointee.warning else { return }
        message.withCString { warning(table.pointee.context, $0) }
    }

    /// Something odd in the input, counted and logged in weird.log as `name` (an
    /// identifier) with `addl`.
    public func weird(_ name: String, addl: String? = nil) {
        guard let table, let weird = table.pointee.weird else { return }
        name.withCString { n in
            if let addl { addl.withCString { weird(table.pointee.context, n, $0) } } else { weird(table.pointee.context, n, nil) }
        }
    }

    /// The source failed and can deliver nothing more (from a background thread, say):
    /// trawl stops reading it once the call in progress returns and reports `error`.
    public func fail(_ error: PluginError) {
        guard let table, let fail = table.pointee.error else { return }
        error.description.withCString { fail(table.pointee.context, error.code.rawValue, $0) }
    }
}

/// What kind of failure a PluginError is (the ABI's trawl_error_code): trawl and trawlctl
/// react to it, e.g. by naming the capability a capture lacks. `PluginErrorCode(errno:)`
/// picks it from an errno value.
public typealias PluginErrorCode = TrawlErrorCode
