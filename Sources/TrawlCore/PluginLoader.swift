import CTrawlABI
#if canImport(Glibc)
import Glibc
#endif

/// Why one library was not loaded as a plugin.
public enum PluginLoadError: Error, Equatable, CustomStringConvertible {
    case cannotLoad(dlerror: String)
    case missingEntrySymbol
    case abiMismatch(found: UInt32)
    case invalidDescriptor(String)

    public var description: String {
        switch self {
        case let .cannotLoad(message): return "cannot load: \(message)"
        case .missingEntrySymbol: return "not a Trawl plugin: no \(TRAWL_PLUGIN_ENTRY_SYMBOL) symbol"
        case let .abiMismatch(found):
            return "speaks plugin ABI version \(found), this trawl speaks version \(TRAWL_ABI_VERSION)"
        case let .invalidDescriptor(reason): return "invalid plugin descriptor: \(reason)"
        }
    }
}

/// Something the loader skipped, with the library's path. Printed as a warning.
public struct PluginDiagnostic: Equatable, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "plugin \(path): \(message)" }
}

/// A directory searched for plugin libraries.
public struct PluginDirectory: Equatable, Sendable {
    public let path: String
    /// When set, only files whose name starts with this (case-insensitively) are plugins;
    /// used beside the executable, where other libraries may live.
    public let namePrefix: String?
    /// Named by TRAWL_PLUGIN_PATH: then its absence is said (the standard places may be missing).
    public let named: Bool

    public init(path: String, namePrefix: String? = nil, named: Bool = false) {
        self.path = path
        self.namePrefix = namePrefix
        self.named = named
    }
}

/// Finds plugin libraries and registers what they describe.
///
/// Search order: each entry of `TRAWL_PLUGIN_PATH` (a directory, every `*.so` in it, or a
/// library file), then the executable's directory (`libtrawl*.so`, so `swift build` output
/// works as it is), then `<prefix>/lib/trawl/plugins` for an executable in `<prefix>/bin`.
public struct PluginLoader {
    public var entries: [PluginDirectory]

    public init(entries: [PluginDirectory]) {
        self.entries = entries
    }

    public static let pathVariable = "TRAWL_PLUGIN_PATH"

    /// The standard search list for this process.
    public static func standard(pluginPath: String? = getenv(pathVariable).map { String(cString: $0) },
                                executablePath: String? = currentExecutablePath()) -> PluginLoader {
        var entries: [PluginDirectory] = []
        for item in (pluginPath ?? "").split(separator: ":") where !item.isEmpty {
            entries.append(PluginDirectory(path: String(item), named: true))
        }
        if let executablePath, let slash = executablePath.lastIndex(of: "/") {
            let directory = String(executablePath[..<slash])
            entries.append(PluginDirectory(path: directory, namePrefix: "libtrawl"))
            let installed = directory + "/../lib/trawl/plugins"
            entries.append(PluginDirectory(path: realPath(installed) ?? installed))
        }
        return PluginLoader(entries: entries)
    }

    public static func currentExecutablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The plugin library files to try, in order, each once (by real path).
    public func candidateFiles() -> [String] {
        var seen = Set<String>()
        var files: [String] = []
        for entry in entries {
            var status = stat()
            guard stat(entry.path, &status) == 0 else { continue } // a missing directory is no error
            let paths: [String]
            if status.st_mode & S_IFMT == S_IFDIR {
                paths = Self.listDirectory(entry.path)
                    .filter { $0.hasSuffix(".so") }
                    .filter { name in entry.namePrefix.map { name.lowercased().hasPrefix($0) } ?? true }
                    .map { entry.path + "/" + $0 }
            } else {
                paths = [entry.path]
            }
            for path in paths {
                let key = Self.realPath(path) ?? path
                if seen.insert(key).inserted { files.append(path) }
            }
        }
        return files
    }

    /// Loads every candidate into `registry`. Libraries that fail are reported and skipped;
    /// a prefix claimed twice stops loading with an error.
    public func load(into registry: SourceRegistry) throws(RegistryError) -> [PluginDiagnostic] {
        var diagnostics: [PluginDiagnostic] = []
        for entry in entries where entry.named && access(entry.path, F_OK) != 0 {
            diagnostics.append(PluginDiagnostic(path: entry.path, message: "\(Self.pathVariable) names it, but it does not exist; ignored"))
        }
        for path in candidateFiles() {
            switch Self.loadLibrary(at: path) {
            case let .failure(error):
                diagnostics.append(PluginDiagnostic(path: path, message: error.description))
            case let .success(plugin):
                if case let .duplicateName(first) = try registry.register(plugin) {
                    let where_ = first.path.map { "loaded from \($0)" } ?? "built in"
                    diagnostics.append(PluginDiagnostic(
                        path: path, message: "plugin \(plugin.name) is already \(where_); skipped"))
                }
            }
        }
        return diagnostics
    }

    /// dlopens one library and reads its descriptor. The library stays loaded.
    public static func loadLibrary(at path: String) -> Result<Plugin, PluginLoadError> {
        guard let library = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let message = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            return .failure(.cannotLoad(dlerror: message))
        }
        guard let symbol = dlsym(library, TRAWL_PLUGIN_ENTRY_SYMBOL) else {
            dlclose(library)
            return .failure(.missingEntrySymbol)
        }
        let entry = unsafeBitCast(symbol, to: trawl_plugin_entry_fn.self)
        guard let descriptor = entry() else {
            return .failure(.invalidDescriptor("the entry function returned NULL"))
        }
        // Only the first two fields are known to exist before the version is checked.
        guard descriptor.pointee.abi_version == TRAWL_ABI_VERSION else {
            return .failure(.abiMismatch(found: descriptor.pointee.abi_version))
        }
        return PluginDescriptorReader.read(descriptor.pointee, origin: .dynamic(path: path))
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Turns a C descriptor into a `Plugin`, checking every field the core relies on.
enum PluginDescriptorReader {
    static func read(_ d: trawl_plugin, origin: PluginOrigin) -> Result<Plugin, PluginLoadError> {
        func fail(_ reason: String) -> Result<Plugin, PluginLoadError> { .failure(.invalidDescriptor(reason)) }
        guard d.struct_size >= MemoryLayout<trawl_plugin>.size else {
            return fail("struct_size \(d.struct_size) is smaller than \(MemoryLayout<trawl_plugin>.size)")
        }
        guard let name = string(d.name), !name.isEmpty else { return fail("no plugin name") }
        guard let namespace = string(d.option_namespace), OptionAssignment.isIdentifier(namespace) else {
            return fail("\(name): option_namespace must be an identifier")
        }
        var options: [OptionDeclaration] = []
        if d.option_count > 0 {
            guard let list = d.options else { return fail("\(name): option_count is \(d.option_count) but options is NULL") }
            for i in 0..<Int(d.option_count) {
                let o = list[i]
                guard let optionName = string(o.name), OptionAssignment.isIdentifier(optionName) else {
                    return fail("\(name): option \(i) has no valid name")
                }
                guard let type = OptionType(rawValue: o.type) else {
                    return fail("\(name): option \(optionName) has unknown type \(o.type)")
                }
                let choices = (string(o.choices) ?? "").split(separator: ",").map { $0.trimmingSpaces() }
                if type == .enum && choices.isEmpty { return fail("\(name): enum option \(optionName) lists no choices") }
                guard let defaultValue = OptionValue.parse(string(o.default_value) ?? "", as: type, choices: choices) else {
                    return fail("\(name): option \(optionName) default is not a valid \(type)")
                }
                options.append(OptionDeclaration(name: optionName, type: type, defaultValue: defaultValue,
                                                 documentation: string(o.doc) ?? "", choices: choices))
            }
        }
        var components: [SourceComponent] = []
        if d.component_count > 0 {
            guard let list = d.components else { return fail("\(name): component_count is \(d.component_count) but components is NULL") }
            for i in 0..<Int(d.component_count) {
                let c = list[i]
                guard let componentName = string(c.name), !componentName.isEmpty,
                      let prefix = string(c.prefix), !prefix.isEmpty, !prefix.contains("::") else {
                    return fail("\(name): component \(i) needs a name and a prefix without '::'")
                }
                guard let ops = c.ops else { return fail("\(name): component \(componentName) has no ops table") }
                // Imported C function pointers are optional; every one but interrupt is required.
                let o = ops.pointee
                guard o.open != nil, o.info != nil, o.set_filter != nil, o.next_batch != nil,
                      o.stats != nil, o.close != nil else {
                    return fail("\(name): component \(componentName) leaves a required function NULL")
                }
                let modes = SourceModes(rawValue: c.modes).intersection([.live, .offline])
                guard !modes.isEmpty else { return fail("\(name): component \(componentName) supports no mode") }
                components.append(SourceComponent(name: componentName, prefix: prefix, modes: modes,
                                                  opener: CComponentOpener(ops: ops, context: c.context)))
            }
        }
        return .success(Plugin(
            name: name, description: string(d.description) ?? "", version: string(d.version) ?? "",
            optionNamespace: namespace, options: options, components: components, origin: origin
        ))
    }

    static func string(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
