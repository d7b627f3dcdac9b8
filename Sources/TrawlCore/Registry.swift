import CTrawlABI
#if canImport(Glibc)
import Glibc
#endif
/// A source name split at its first "::": `af_packet::eth0` is prefix `af_packet`, path
/// `eth0`. A name without "::" (including libpcap's own `netmap:em0`) has no prefix.
public struct SourceSpec: Equatable, Sendable {
    public let prefix: String?
    public let path: String

    public init(_ name: String) {
        if let separator = name.firstRange(of: "::") {
            prefix = String(name[..<separator.lowerBound])
            path = String(name[separator.upperBound...])
        } else {
            prefix = nil
            path = name
        }
    }
}

public enum RegistryError: Error, Equatable, CustomStringConvertible {
    /// Two components claim one prefix; names both plugins and where they came from.
    case prefixClash(prefix: String, first: String, second: String)

    public var description: String {
        switch self {
        case let .prefixClash(prefix, first, second):
            return "packet source prefix '\(prefix)' is claimed by both \(first) and \(second); remove one of them"
        }
    }
}

/// What `register` did with a plugin.
public enum Registration: Equatable, Sendable {
    case added
    /// A plugin with the same name was registered first; this one was skipped.
    case duplicateName(firstOrigin: PluginOrigin)
}

/// The plugins a process knows, and the prefix each component answers to.
///
/// Register everything first, from one thread; once registration is done the registry is
/// only read, and may be shared between threads.
public final class SourceRegistry: @unchecked Sendable {
    public private(set) var plugins: [Plugin] = []
    /// The prefix used for names without one.
    public let defaultPrefix: String
    private var componentsByPrefix: [String: (plugin: Plugin, component: SourceComponent)] = [:]

    public init(defaultPrefix: String = "pcap") {
        self.defaultPrefix = defaultPrefix
    }

    /// Adds a plugin. Same name as one already registered: skipped, first wins.
    /// A prefix already claimed by another plugin: error, nothing is added.
    @discardableResult
    public func register(_ plugin: Plugin) throws(RegistryError) -> Registration {
        if let existing = plugins.first(where: { $0.name == plugin.name }) {
            return .duplicateName(firstOrigin: existing.origin)
        }
        var claimed = Set<String>()
        for component in plugin.components {
            if let owner = componentsByPrefix[component.prefix] {
                throw .prefixClash(prefix: component.prefix, first: Self.describe(owner.plugin), second: Self.describe(plugin))
            }
            if !claimed.insert(component.prefix).inserted {
                throw .prefixClash(prefix: component.prefix, first: Self.describe(plugin), second: Self.describe(plugin))
            }
        }
        for component in plugin.components {
            componentsByPrefix[component.prefix] = (plugin, component)
        }
        plugins.append(plugin)
        return .added
    }

    static func describe(_ plugin: Plugin) -> String {
        if let path = plugin.origin.path { return "\(plugin.name) (\(path))" }
        return "\(plugin.name) (built in)"
    }

    public func plugin(named name: String) -> Plugin? {
        plugins.first { $0.name.lowercased() == name.lowercased() }
    }

    public func component(prefix: String) -> (plugin: Plugin, component: SourceComponent)? {
        componentsByPrefix[prefix]
    }

    /// Finds the component for `name` in `mode`. A trace file named without a prefix goes
    /// to the component whose declared file magic it starts with (the longest that
    /// matches); a file no component recognises is an unknown format, as for Zeek.
    public func resolve(_ name: String, mode: SourceMode) throws(PacketSourceError)
        -> (plugin: Plugin, component: SourceComponent, path: String)
    {
        let spec = SourceSpec(name)
        if spec.prefix == nil, mode == .offline, spec.path != "-" {
            let head: [UInt8]
            switch Self.readHead(of: spec.path) {
            case let .success(bytes): head = bytes
            case let .failure(error):
                throw .traceFile(name, reason: "unable to open \(spec.path): \(error)", code: error.sourceErrorCode)
            }
            guard let entry = component(reading: head) else { throw .traceFile(name, reason: "unknown file format", code: .format) }
            return (entry.plugin, entry.component, spec.path)
        }
        let prefix = spec.prefix ?? defaultPrefix
        guard let entry = componentsByPrefix[prefix], entry.component.modes.contains(mode) else {
            throw .unsupportedSourceType(prefix: prefix, mode: mode)
        }
        return (entry.plugin, entry.component, spec.path)
    }

    /// The offline component whose longest file magic `head` starts with.
    public func component(reading head: [UInt8]) -> (plugin: Plugin, component: SourceComponent)? {
        var best: (plugin: Plugin, component: SourceComponent)?
        var bestLength = 0
        for plugin in plugins {
            for component in plugin.components where component.modes.contains(.offline) {
                for magic in component.fileMagics where magic.count > bestLength && head.starts(with: magic) {
                    best = (plugin, component)
                    bestLength = magic.count
                }
            }
        }
        return best
    }

    /// The first bytes of a file, as many as a magic can have.
    static func readHead(of path: String) -> Result<[UInt8], Errno> {
        let file: FileDescriptor
        do { file = try FileDescriptor.open(path, O_RDONLY) } catch { return .failure(error) }
        defer { try? file.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(TRAWL_MAGIC_SIZE), alignment: 1)
        defer { buffer.deallocate() }
        do throws(Errno) {
            let n = try file.read(into: buffer)
            return .success(Array(buffer.prefix(n)))
        } catch {
            // A directory opens but cannot be read.
            return .failure(error)
        }
    }

    /// Opens `name` with the options in `settings`.
    public func open(_ name: String, mode: SourceMode, settings: OptionSettings = OptionSettings(),
                     timeoutMilliseconds: UInt32 = 100) throws(PacketSourceError) -> any PacketSource {
        let (plugin, component, path) = try resolve(name, mode: mode)
        let request = SourceOpenRequest(
            name: name, path: path, mode: mode, timeoutMilliseconds: timeoutMilliseconds,
            options: settings.values(for: plugin)
        )
        return try component.opener.open(request)
    }
}
