#if canImport(Glibc)
import Glibc
#endif
import TrawlPluginSDK

/// libpfring, loaded with dlopen when a PF_RING source is first opened, so that the plugin
/// builds, loads and is listed on machines without PF_RING. `TRAWL_PFRING_LIBRARY` names
/// the library to load instead of searching for libpfring (a test double, or an install
/// outside the loader's path).
struct PFRingLibrary {
    typealias Ring = OpaquePointer

    // The C functions used, by their libpfring names.
    let open: @convention(c) (UnsafePointer<CChar>, UInt32, UInt32) -> Ring?
    let close: @convention(c) (Ring) -> Void
    let enable: @convention(c) (Ring) -> Int32
    let receive: @convention(c) (Ring, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UInt32, UnsafeMutableRawPointer, UInt8) -> Int32
    let stats: @convention(c) (Ring, UnsafeMutableRawPointer) -> Int32
    let breakLoop: @convention(c) (Ring) -> Void
    let setCluster: @convention(c) (Ring, UInt32, UInt32) -> Int32
    let setFilter: @convention(c) (Ring, UnsafeMutablePointer<CChar>) -> Int32
    // Optional: older or trimmed builds may lack them.
    let poll: (@convention(c) (Ring, UInt32) -> Int32)?
    let setApplicationName: (@convention(c) (Ring, UnsafeMutablePointer<CChar>) -> Int32)?
    let setSocketMode: (@convention(c) (Ring, UInt32) -> Int32)?
    let selectableFD: (@convention(c) (Ring) -> Int32)?

    let path: String

    static let environmentVariable = "TRAWL_PFRING_LIBRARY"
    static let candidates = ["libpfring.so", "libpfring.so.1", "/usr/local/lib/libpfring.so", "/usr/lib/libpfring.so"]

    /// pfring_open flags.
    static let longHeader: UInt32 = 1 << 2, promiscuous: UInt32 = 1 << 3, timestamp: UInt32 = 1 << 4
    /// pfring_pkthdr: struct timeval ts, caplen and len (u_int32_t), then the extended header,
    /// whose first field is the nanosecond timestamp. Room is left for all of it.
    static let headerSize = 1024
    static let capturedOffset = 16, wireOffset = 20, nanosecondsOffset = 24
    /// pfring_stat: recv, drop (u_int64_t), and more the plugin does not read.
    static let statsSize = 64

    /// Loads the library once per process (a failure is remembered, with its reason).
    static func shared() throws(PluginError) -> PFRingLibrary {
        switch loaded {
        case let .success(library): return library
        case let .failure(error): throw error
        }
    }

    private static let loaded: Result<PFRingLibrary, PluginError> = {
        do throws(PluginError) { return .success(try load()) } catch { return .failure(error) }
    }()

    private static func load() throws(PluginError) -> PFRingLibrary {
        var handle: UnsafeMutableRawPointer?
        var path = ""
        if let explicit = getenv(environmentVariable).map({ String(cString: $0) }), !explicit.isEmpty {
            guard let opened = dlopen(explicit, RTLD_NOW | RTLD_LOCAL) else {
                throw PluginError("PF_RING is not available: cannot load \(explicit) (\(environmentVariable)): \(dlerror().map { String(cString: $0) } ?? "unknown error")", code: .unavailable)
            }
            handle = opened
            path = explicit
        } else {
            for candidate in candidates {
                if let opened = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) {
                    handle = opened
                    path = candidate
                    break
                }
            }
        }
        guard let handle else {
            throw PluginError("PF_RING is not available: libpfring.so not found; install PF_RING (its library and pf_ring kernel module), or set \(environmentVariable) to the library's path", code: .unavailable)
        }
        func symbol<T>(_ name: String, as type: T.Type) throws(PluginError) -> T {
            guard let address = dlsym(handle, name) else { throw PluginError("\(path) is not a usable libpfring: it lacks \(name)", code: .unavailable) }
            return unsafeBitCast(address, to: type)
        }
        func optional<T>(_ name: String, as type: T.Type) -> T? { dlsym(handle, name).map { unsafeBitCast($0, to: type) } }
        return PFRingLibrary(
            open: try symbol("pfring_open", as: (@convention(c) (UnsafePointer<CChar>, UInt32, UInt32) -> Ring?).self),
            close: try symbol("pfring_close", as: (@convention(c) (Ring) -> Void).self),
            enable: try symbol("pfring_enable_ring", as: (@convention(c) (Ring) -> Int32).self),
            receive: try symbol("pfring_recv", as: (@convention(c) (Ring, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UInt32, UnsafeMutableRawPointer, UInt8) -> Int32).self),
            stats: try symbol("pfring_stats", as: (@convention(c) (Ring, UnsafeMutableRawPointer) -> Int32).self),
            breakLoop: try symbol("pfring_breakloop", as: (@convention(c) (Ring) -> Void).self),
            setCluster: try symbol("pfring_set_cluster", as: (@convention(c) (Ring, UInt32, UInt32) -> Int32).self),
            setFilter: try symbol("pfring_set_bpf_filter", as: (@convention(c) (Ring, UnsafeMutablePointer<CChar>) -> Int32).self),
            poll: optional("pfring_poll", as: (@convention(c) (Ring, UInt32) -> Int32).self),
            setApplicationName: optional("pfring_set_application_name", as: (@convention(c) (Ring, UnsafeMutablePointer<CChar>) -> Int32).self),
            setSocketMode: optional("pfring_set_socket_mode", as: (@convention(c) (Ring, UInt32) -> Int32).self),
            selectableFD: optional("pfring_get_selectable_fd", as: (@convention(c) (Ring) -> Int32).self),
            path: path
        )
    }
}
