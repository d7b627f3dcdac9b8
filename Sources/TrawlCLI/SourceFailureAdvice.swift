import TrawlCore

/// What trawl adds when a source fails, by the kind of failure the source gave: a hint that
/// names what is missing, and an exit status trawlctl (and scripts) can tell apart.
enum SourceFailureAdvice {
    /// Exit statuses after sysexits.h: no privileges, no such input, a service unavailable.
    static let noPermission: Int32 = 77
    static let noInput: Int32 = 66
    static let unavailable: Int32 = 69

    static func exitStatus(_ code: SourceErrorCode) -> Int32 {
        switch code {
        case .permission: return noPermission
        case .noSuchDevice, .noSuchFile: return noInput
        case .busy, .unavailable: return unavailable
        default: return 1
        }
    }

    /// A line (or none) to print under the error.
    static func hint(_ error: PacketSourceError, executable: String? = PluginLoader.currentExecutablePath()) -> String? {
        switch (error.code, error) {
        case (.permission, _):
            return "hint: capturing needs root, or the capabilities CAP_NET_RAW and CAP_NET_ADMIN; grant them with: "
                + "sudo setcap cap_net_raw,cap_net_admin=eip \(executable ?? "PATH/TO/trawl")"
        case (.noSuchDevice, .interface):
            let interfaces = interfaceNames()
            guard !interfaces.isEmpty else { return nil }
            return "hint: the interfaces of this host are \(interfaces.joined(separator: ", "))"
        case (.busy, _):
            return "hint: another process holds it (a second trawl, or another capture program); trawlctl status, or ps, shows which"
        default:
            return nil
        }
    }

    /// The network interfaces of this host (and network namespace), sorted.
    static func interfaceNames() -> [String] { directoryEntries("/sys/class/net") }
}
