@_exported import CTrawlABI
#if canImport(Glibc)
import Glibc
#endif

/// The modes a plugin's component supports.
public struct PluginModes: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let live = PluginModes(rawValue: TRAWL_MODE_LIVE.rawValue)
    public static let offline = PluginModes(rawValue: TRAWL_MODE_OFFLINE.rawValue)
}

/// An option the plugin declares; users set it as `Namespace::name=value`.
public struct PluginOption: Sendable {
    public enum Kind: Sendable {
        case bool(default: Bool)
        case count(default: UInt64)
        case int(default: Int64)
        case double(default: Double)
        case string(default: String)
        case `enum`(default: String, choices: [String])
    }

    public let name: String
    public let kind: Kind
    public let documentation: String

    public init(_ name: String, _ kind: Kind, _ documentation: String) {
        self.name = name
        self.kind = kind
        self.documentation = documentation
    }
}

/// Everything `trawl -NN` shows about a plugin with one packet-source component.
public struct PluginMetadata: Sendable {
    public var name: String             // "Trawl::Pcap"
    public var description: String      // "Packet acquisition via libpcap"
    public var version: String          // "1.0.0"
    public var optionNamespace: String  // "Pcap"
    public var componentName: String   // "PcapReader"
    public var prefix: String           // "pcap"
    public var modes: PluginModes
    public var options: [PluginOption]
    /// The first bytes of the trace files the component reads (up to 16 each): a file
    /// named without a prefix is given to the component whose magic it starts with.
    public var fileMagics: [[UInt8]]

    public init(name: String, description: String, version: String, optionNamespace: String,
                componentName: String, prefix: String, modes: PluginModes, options: [PluginOption] = [],
                fileMagics: [[UInt8]] = []) {
        self.fileMagics = fileMagics
        self.name = name
        self.description = description
        self.version = version
        self.optionNamespace = optionNamespace
        self.componentName = componentName
        self.prefix = prefix
        self.modes = modes
        self.options = options
    }
}

/// A plugin failure; its message reaches the user inside Zeek's "problem with ..." line,
/// its code tells trawl what kind of failure it is.
public struct PluginError: Error, CustomStringConvertible {
    public let description: String
    public let code: PluginErrorCode
    /// The errno behind it, or 0.
    public let systemErrno: Int32

    public init(_ description: String, code: PluginErrorCode = .unspecified, errno: Int32 = 0) {
        self.description = description
        self.code = code
        systemErrno = errno
    }

    /// A failed system call: "what: strerror", its code from errno.
    public static func system(_ what: String, errno code: Int32) -> PluginError {
        PluginError("\(what): \(String(cString: strerror(code)))", code: PluginErrorCode(errno: code), errno: code)
    }
}

/// Properties of an open source, as the host sees them.
public struct PluginSourceInfo: Sendable {
    public var linkType: UInt32
    public var snaplen: UInt32
    public var netmask: UInt32
    public var selectableFD: Int32
    public var isLive: Bool

    public init(linkType: UInt32, snaplen: UInt32, netmask: UInt32 = 0, selectableFD: Int32 = -1, isLive: Bool) {
        self.linkType = linkType
        self.snaplen = snaplen
        self.netmask = netmask
        self.selectableFD = selectableFD
        self.isLive = isLive
    }
}

/// A packet source written in Swift. Conform one type, then export it with one line:
///
///     @_cdecl("trawl_plugin_entry")
///     public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(MySource.self) }
public protocol SourcePlugin: AnyObject {
    static var metadata: PluginMetadata { get }

    /// Opens `request.path` in `request.mode`.
    init(request: OpenRequest) throws(PluginError)

    var info: PluginSourceInfo { get }

    /// Fills `batch`; returns false once offline input is exhausted (packets appended in
    /// that last call are delivered too). Bytes handed out must stay valid until the next
    /// call or until the source is closed.
    func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool

    func setFilter(_ expression: String) throws(PluginError)

    func statistics() throws(PluginError) -> trawl_stats

    /// Makes a blocked `nextBatch` return soon. Called from another thread (never a signal
    /// handler), possibly while `nextBatch`, `setFilter` or `statistics` runs.
    func interrupt()
}

extension SourcePlugin {
    public func interrupt() {}
}
