import CTrawlABI
import TrawlABI

/// A plugin ABI version, major.minor, as `trawl_plugin.abi_version` spells it: the major in
/// the low 16 bits, the minor in the high 16 (so 1.0 is the plain 1 of the first release).
public struct PluginABIVersion: Equatable, Comparable, Sendable, CustomStringConvertible {
    public let major: UInt32
    public let minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    public init(encoded: UInt32) {
        self.init(major: encoded & 0xffff, minor: encoded >> 16)
    }

    /// The version this trawl speaks.
    public static let host = PluginABIVersion(encoded: TRAWL_ABI_VERSION)

    public var encoded: UInt32 { major | minor << 16 }
    public var description: String { "\(major).\(minor)" }

    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// Whether a host of this version loads a plugin built for `plugin`: the same major,
    /// and no newer minor (the plugin may rely on everything its minor has).
    public func loads(_ plugin: PluginABIVersion) -> Bool {
        plugin.major == major && plugin.minor <= minor
    }

    /// `sizeof(trawl_plugin)` in this minor of major 1: the least a descriptor's
    /// `struct_size` may say.
    var descriptorSize: UInt32 {
        minor == 0 ? TRAWL_PLUGIN_SIZE_1_0 : TRAWL_PLUGIN_SIZE_1_1
    }

    /// Whether structs of this version have the fields a minor added.
    func has(minor added: UInt32) -> Bool { minor >= added }
}

/// The Swift toolchain this trawl was built with, as a Swift plugin names its own in
/// `trawl_plugin.runtime` ("swift-6.3"); see TrawlABI.
public enum SwiftToolchain {
    public static var runtime: String { swiftRuntimeName }
}
