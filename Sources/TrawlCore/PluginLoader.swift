import CTrawlABI
#if canImport(Glibc)
import Glibc
#endif

/// Why one library was not loaded as a plugin.
public enum PluginLoadError: Error, Equatable, CustomStringConvertible {
    case cannotLoad(dlerror: String)
    case missingEntrySymbol
    /// Built for an ABI this trawl does not load: another major, or a newer minor.
    case abiVersion(found: PluginABIVersion)
    /// A Swift plugin built by another Swift toolchain than this trawl's.
    case swiftToolchain(plugin: String)
    /// Needs a runtime beside the C ABI that this trawl does not know.
    case unknownRuntime(String)
    case invalidDescriptor(String)
    /// Running as root, the file or a directory on its way can be written by others.
    case insecure(String)

    public var description: String {
        let host = PluginABIVersion.host
        switch self {
        case let .cannotLoad(message):
            guard Self.looksLikeSwift(message) else { return "cannot load: \(message)" }
            return "cannot load: \(message); this looks like a Swift plugin built with another toolchain: "
                + "a Swift plugin must be built with the Swift toolchain that built trawl (\(SwiftToolchain.runtime)), "
                + "as Swift has no stable ABI on Linux"
        case .missingEntrySymbol: return "not a Trawl plugin: no \(TRAWL_PLUGIN_ENTRY_SYMBOL) symbol"
        case let .abiVersion(found) where found.major == host.major:
            return "needs plugin ABI \(found), this trawl speaks \(host): use a newer trawl, or build the plugin for \(host)"
        case let .abiVersion(found):
            return "speaks plugin ABI \(found), this trawl speaks \(host): rebuild the plugin against this trawl's trawl_plugin.h"
        case let .swiftToolchain(plugin):
            return "a Swift plugin built with \(plugin), but this trawl was built with \(SwiftToolchain.runtime): "
                + "Swift has no stable ABI on Linux, so a Swift plugin must be built with the same toolchain as trawl "
                + "(a plugin written in C loads into any trawl of its ABI)"
        case let .unknownRuntime(runtime):
            return "needs the runtime '\(runtime)', which this trawl does not know"
        case let .invalidDescriptor(reason): return "invalid plugin descriptor: \(reason)"
        case let .insecure(reason): return "refused: \(reason)"
        }
    }

    /// Whether a dlopen failure names the Swift runtime or a Swift symbol ($s...).
    static func looksLikeSwift(_ message: String) -> Bool {
        message.contains("libswiftCore") || message.contains("libswift_") || message.contains("symbol: $s") || message.contains("symbol: _swift")
            || message.contains("symbol: swift_")
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
    /// Refuse libraries others could have written (PluginFileSecurity); on when running as root.
    public var secure: Bool

    public init(entries: [PluginDirectory], secure: Bool = geteuid() == 0) {
        self.entries = entries
        self.secure = secure
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
    public func candidateFiles() -> [String] { candidates().map(\.path) }

    /// The files to try, and whether each was found by listing a directory.
    func candidates() -> [(path: String, scanned: Bool)] {
        var seen = Set<String>()
        var files: [(path: String, scanned: Bool)] = []
        for entry in entries {
            var status = stat()
            guard stat(entry.path, &status) == 0 else { continue } // a missing directory is no error
            let paths: [String]
            if status.st_mode & S_IFMT == S_IFDIR {
                paths = directoryEntries(entry.path)
                    .filter { $0.hasSuffix(".so") }
                    .filter { name in entry.namePrefix.map { name.lowercased().hasPrefix($0) } ?? true }
                    .map { entry.path + "/" + $0 }
            } else {
                paths = [entry.path]
            }
            let scanned = status.st_mode & S_IFMT == S_IFDIR
            for path in paths {
                let key = Self.realPath(path) ?? path
                if seen.insert(key).inserted { files.append((path, scanned)) }
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
        for (path, scanned) in candidates() {
            if secure, let problem = PluginFileSecurity.problem(with: path, scanned: scanned) {
                diagnostics.append(PluginDiagnostic(path: path, message: PluginLoadError.insecure(problem).description))
                continue
            }
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
        return PluginDescriptorReader.read(descriptor, origin: .dynamic(path: path))
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
