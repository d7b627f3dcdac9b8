#if canImport(Glibc)
import Glibc
#endif
import TrawlCluster
import TrawlCore

/// Everything trawlctl reads from its configuration directory (PREFIX/etc, or
/// `--config-dir`): trawlctl.cfg (optional: zeekctl's defaults), node.cfg, networks.cfg
/// (optional), made into the plan of the cluster. Problems name file:line; warnings too.
public struct ControlConfiguration: Sendable {
    public let directory: String
    public let plan: ClusterPlan
    public let warnings: [ConfigProblem]

    public static let settingsFile = "trawlctl.cfg"
    public static let nodesFile = "node.cfg"
    public static let networksFile = "networks.cfg"

    public init(directory: String, prefix: String, environment: NodeConfig.Environment = .machine) throws(ConfigProblems) {
        self.directory = directory
        func read(_ name: String, required: Bool) throws(ConfigProblems) -> String? {
            let path = directory + "/" + name
            do { return try readFile(path) } catch {
                if !required && error == Errno(rawValue: ENOENT) { return nil }
                throw ConfigProblems([ConfigProblem(path, 0, "cannot read: \(error)")])
            }
        }
        // trawlctl.cfg, or zeekctl.cfg for a Zeek user's directory as it is.
        var settingsText = try read(Self.settingsFile, required: false)
        var settingsName = Self.settingsFile
        if settingsText == nil, let zeek = try read("zeekctl.cfg", required: false) {
            settingsText = zeek
            settingsName = "zeekctl.cfg"
        }
        let settings = try settingsText.map { text throws(ConfigProblems) in
            try ControlSettings(parsing: text, file: directory + "/" + settingsName, prefix: prefix)
        } ?? ControlSettings(prefix: prefix)
        let nodePath = directory + "/" + Self.nodesFile
        let nodes = try NodeConfig(parsing: try read(Self.nodesFile, required: true)!, file: nodePath, settings: settings,
                                   environment: environment)
        var networks: [NetworksConfig.Network] = []
        if let text = try read(Self.networksFile, required: false) {
            networks = try NetworksConfig(parsing: text, file: directory + "/" + Self.networksFile).networks
        }
        plan = try ClusterPlan(settings: settings, nodes: nodes.nodes, networks: networks, nodeFile: nodePath)
        warnings = settings.warnings + nodes.warnings
        // The layout made from it must be one every node takes (the runtime's own check).
        if !plan.isStandalone {
            do { _ = try ClusterLayout.parse(plan.layoutJSON(), file: "the cluster layout made from \(nodePath)") } catch {
                throw ConfigProblems([ConfigProblem(nodePath, 0, "\(error)")])
            }
        }
    }
}

extension NodeConfig.Environment {
    /// This machine: host names through the resolver, and the CPUs of this host.
    public static let machine = NodeConfig.Environment(resolve: resolveHost, cpuCount: { host in
        isLocalHost(host) ? Int(sysconf(Int32(_SC_NPROCESSORS_CONF))) : nil
    })
}

/// The address `host` resolves to: its first IPv4 address, else its first (as zeekctl picks).
public func resolveHost(_ host: String) -> String? {
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var result: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
    defer { freeaddrinfo(first) }
    var addresses: [String] = []
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let entry = cursor {
        if let address = numericAddress(entry.pointee.ai_addr, entry.pointee.ai_addrlen) { addresses.append(address) }
        cursor = entry.pointee.ai_next
    }
    let chosen = addresses.first { !$0.contains(":") } ?? addresses.first
    return chosen.map { String($0.split(separator: "%")[0]) }
}

/// Whether `host` is this machine: it resolves to a loopback address or one of this
/// machine's interfaces' addresses.
public func isLocalHost(_ host: String) -> Bool {
    guard let address = resolveHost(host) else { return false }
    if address.hasPrefix("127.") || address == "::1" { return true }
    return localAddresses().contains(address)
}

/// The addresses of this machine's interfaces.
public func localAddresses() -> Set<String> {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0, let first = list else { return [] }
    defer { freeifaddrs(first) }
    var addresses: Set<String> = []
    var cursor: UnsafeMutablePointer<ifaddrs>? = first
    while let entry = cursor {
        if let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) || address.pointee.sa_family == sa_family_t(AF_INET6) {
            let length = socklen_t(address.pointee.sa_family == sa_family_t(AF_INET) ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if let text = numericAddress(address, length) { addresses.insert(String(text.split(separator: "%")[0])) }
        }
        cursor = entry.pointee.ifa_next
    }
    return addresses
}

/// A socket address as text (getnameinfo's numeric form).
private func numericAddress(_ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
    guard getnameinfo(address, length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

