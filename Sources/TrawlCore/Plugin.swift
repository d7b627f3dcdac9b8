/// Where a plugin came from.
public enum PluginOrigin: Sendable, Equatable {
    /// Registered in-process by a program that embeds TrawlCore.
    case builtIn
    /// Loaded with dlopen from this path.
    case dynamic(path: String)

    public var path: String? {
        if case let .dynamic(path) = self { return path }
        return nil
    }
}

/// What a component needs to open one source.
public struct SourceOpenRequest {
    /// The name as the user gave it: "af_packet::eth0", "trace.pcap".
    public var name: String
    /// The part the component interprets: "eth0", "trace.pcap".
    public var path: String
    public var mode: SourceMode
    /// Longest time a live source's `nextBatch` may block without packets; 0: never block.
    public var timeoutMilliseconds: UInt32
    /// The plugin's options, in the order it declared them, defaults filled in.
    public var options: [OptionValue]

    public init(name: String, path: String, mode: SourceMode, timeoutMilliseconds: UInt32 = 100, options: [OptionValue] = []) {
        self.name = name
        self.path = path
        self.mode = mode
        self.timeoutMilliseconds = timeoutMilliseconds
        self.options = options
    }
}

/// Opens sources of one component: backed by a plugin's C function table, or by Swift
/// code in the host.
public protocol SourceOpener: Sendable {
    func open(_ request: SourceOpenRequest) throws(PacketSourceError) -> any PacketSource
}

/// An opener made from a closure, for sources written inside the host program.
public struct ClosureSourceOpener: SourceOpener {
    let body: @Sendable (SourceOpenRequest) throws(PacketSourceError) -> any PacketSource
    public init(_ body: @escaping @Sendable (SourceOpenRequest) throws(PacketSourceError) -> any PacketSource) {
        self.body = body
    }
    public func open(_ request: SourceOpenRequest) throws(PacketSourceError) -> any PacketSource {
        try body(request)
    }
}

/// A packet-source component: one prefix (`af_packet`) and the modes it supports.
public struct SourceComponent: Sendable {
    public let name: String
    public let prefix: String
    public let modes: SourceModes
    public let opener: any SourceOpener
    /// The first bytes of the trace files it reads (Zeek's components declare theirs too):
    /// a file named without a prefix goes to the component whose magic it starts with.
    public let fileMagics: [[UInt8]]

    public init(name: String, prefix: String, modes: SourceModes, opener: any SourceOpener, fileMagics: [[UInt8]] = []) {
        self.name = name
        self.prefix = prefix
        self.modes = modes
        self.opener = opener
        self.fileMagics = fileMagics
    }
}

/// A plugin: a name such as `Trawl::Pcap`, its components and its options.
public struct Plugin: Sendable {
    public let name: String
    public let description: String
    public let version: String
    /// Options are set as `Namespace::name=value`.
    public let optionNamespace: String
    public let options: [OptionDeclaration]
    public let components: [SourceComponent]
    public let origin: PluginOrigin
    /// The ABI version the plugin was built for; nil for a plugin built into the program.
    public var abiVersion: PluginABIVersion?
    /// What it needs beside the C ABI: "c", or the Swift toolchain that built it; nil when
    /// it does not say (ABI 1.0) or is built in.
    public var runtime: String?

    public init(name: String, description: String, version: String, optionNamespace: String,
                options: [OptionDeclaration], components: [SourceComponent], origin: PluginOrigin = .builtIn) {
        self.name = name
        self.description = description
        self.version = version
        self.optionNamespace = optionNamespace
        self.options = options
        self.components = components
        self.origin = origin
    }
}
