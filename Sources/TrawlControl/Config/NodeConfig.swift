import Foundation

/// What a node is in Zeek's node.cfg.
public enum NodeType: String, CaseIterable, Sendable, Codable {
    case manager, logger, proxy, worker, standalone
}

/// One process of the cluster, as node.cfg makes it (a `lb_procs` worker section makes
/// several): what trawlctl starts, where, and with what.
public struct ControlNode: Sendable, Equatable {
    public var name: String
    public var type: NodeType
    /// The host as node.cfg names it, and the address it resolves to.
    public var host: String
    public var address: String
    /// A worker's (or standalone node's) packet source, as `trawl -i` takes it.
    public var interface: String?
    /// Options for this node's `trawl` (`AF_Packet::fanout_id=23`, ...).
    public var options: [String] = []
    public var pinCPU: Int?
    /// `NAME=value` for this node's environment (node.cfg's env_vars).
    public var environment: [String] = []
    /// The node.cfg section it came from, and its line.
    public var section: String
    public var line: Int
}

/// node.cfg read as zeekctl reads it: sections of `type`, `host`, `interface`, `lb_method`,
/// `lb_procs`, `lb_interfaces`, `pin_cpus`, `env_vars` and the AF_Packet keys
/// (`af_packet_fanout_id`, ...), a worker with `lb_procs=N` made into `NAME-1` … `NAME-N`.
/// Every problem is collected, each with its line; keys that only mean something to Zeek
/// are warnings.
public struct NodeConfig: Sendable {
    public private(set) var nodes: [ControlNode] = []
    public private(set) var warnings: [ConfigProblem] = []

    /// What the reading needs from the machine, apart so that tests can give their own.
    public struct Environment: Sendable {
        /// The address `host` resolves to (IPv4 first, as zeekctl picks), nil when it does not.
        public var resolve: @Sendable (String) -> String?
        /// How many CPUs `host` has, when it is known (this machine's; nil for others).
        public var cpuCount: @Sendable (String) -> Int?

        public init(resolve: @escaping @Sendable (String) -> String?, cpuCount: @escaping @Sendable (String) -> Int?) {
            self.resolve = resolve
            self.cpuCount = cpuCount
        }
    }

    static let afPacketKeys = ["buffer_size", "block_size", "block_timeout", "enable_fanout", "enable_defrag",
                               "enable_hw_timestamping", "checksum_validation_mode", "fanout_mode", "fanout_id", "link_type"]
    static let zeekOnlyKeys: Set<String> = ["aux_scripts", "zeekbase", "ether", "zone_id"]
    static let knownKeys = Set(["type", "host", "interface", "lb_method", "lb_procs", "lb_interfaces", "pin_cpus", "env_vars"]
        + afPacketKeys.map { "af_packet_" + $0 })

    public init(parsing text: String, file: String, settings: ControlSettings, environment: Environment) throws(ConfigProblems) {
        let ini: INIFile
        do { ini = try INIFile(parsing: text, file: file) } catch { throw ConfigProblems([error]) }
        var problems: [ConfigProblem] = []
        func fail(_ line: Int, _ message: String) { problems.append(ConfigProblem(file, line, message)) }

        for section in ini.sections {
            for entry in section.entries where !Self.knownKeys.contains(entry.key) {
                if Self.zeekOnlyKeys.contains(entry.key) {
                    warnings.append(ConfigProblem(file, entry.line, "[\(section.name)] \(entry.key): means nothing to Trawl (Zeek scripts and tags); ignored"))
                } else {
                    warnings.append(ConfigProblem(file, entry.line, "[\(section.name)] unknown key '\(entry.key)'; ignored"))
                }
            }
            guard let typeEntry = section["type"] else {
                fail(section.line, "[\(section.name)] has no type (manager, logger, proxy, worker or standalone)")
                continue
            }
            guard let type = NodeType(rawValue: typeEntry.value.lowercased()) else {
                fail(typeEntry.line, "[\(section.name)] unknown type '\(typeEntry.value)' (manager, logger, proxy, worker or standalone)")
                continue
            }
            guard let hostEntry = section["host"], !hostEntry.value.isEmpty else {
                fail(section.line, "[\(section.name)] has no host")
                continue
            }
            guard let address = environment.resolve(hostEntry.value) else {
                fail(hostEntry.line, "[\(section.name)] host '\(hostEntry.value)' does not resolve")
                continue
            }
            var base = ControlNode(name: section.name, type: type, host: hostEntry.value, address: address,
                                   interface: section["interface"]?.value, section: section.name, line: section.line)
            if let env = section["env_vars"] {
                for pair in ControlSettings.environment(env.value) where !pair.contains("=") || pair.hasPrefix("=") {
                    fail(env.line, "[\(section.name)] env_vars: '\(pair)' is not NAME=value")
                }
                base.environment = ControlSettings.environment(env.value)
            }
            // The AF_Packet keys become the plugin's options, Zeek's spellings made Trawl's.
            for key in Self.afPacketKeys {
                guard let entry = section["af_packet_" + key] else { continue }
                guard type == .worker || type == .standalone else {
                    fail(entry.line, "[\(section.name)] af_packet_\(key): only for workers")
                    continue
                }
                guard let value = Self.afPacketValue(key, entry.value) else {
                    fail(entry.line, "[\(section.name)] af_packet_\(key): '\(entry.value)' is not a value for AF_Packet::\(key)")
                    continue
                }
                base.options.append("AF_Packet::\(key)=\(value)")
            }
            // Load balancing: how many processes, and which source each reads.
            let method = section["lb_method"]
            var count = 1
            if let procs = section["lb_procs"] {
                guard type == .worker else {
                    fail(procs.line, "[\(section.name)] lb_procs: only workers are load-balanced")
                    continue
                }
                guard let n = Int(procs.value), n >= 1 else {
                    fail(procs.line, "[\(section.name)] lb_procs: '\(procs.value)' is not a number of processes (1 or more)")
                    continue
                }
                guard method != nil else {
                    fail(procs.line, "[\(section.name)] lb_procs without lb_method (af_packet, pf_ring, netmap, interfaces or custom)")
                    continue
                }
                count = n
            } else if let method {
                fail(method.line, "[\(section.name)] lb_method without lb_procs")
                continue
            }
            var cpus: [Int] = []
            if let pin = section["pin_cpus"] {
                let parts = pin.value.split(separator: ",").map { Int($0.trimmingWhitespace) }
                guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 && $0! < 4096 }) else {
                    fail(pin.line, "[\(section.name)] pin_cpus: '\(pin.value)' is not a list of CPU numbers (0,1,2; below 4096)")
                    continue
                }
                cpus = parts.map { $0! }
                if let available = environment.cpuCount(hostEntry.value), let missing = cpus.first(where: { $0 >= available }) {
                    fail(pin.line, "[\(section.name)] pin_cpus: \(hostEntry.value) has no CPU \(missing) (it has \(available): 0-\(available - 1))")
                    continue
                }
            }
            var interfaces: [String?] = Array(repeating: base.interface, count: count)
            if let method {
                switch method.value.lowercased() {
                case "af_packet":
                    guard let interface = base.interface else {
                        fail(section.line, "[\(section.name)] lb_method=af_packet needs an interface")
                        continue
                    }
                    guard !interface.contains("::") else {
                        fail(section["interface"]!.line, "[\(section.name)] interface '\(interface)': with lb_method=af_packet, give the interface alone (af_packet:: is added)")
                        continue
                    }
                    interfaces = Array(repeating: "af_packet::" + interface, count: count)
                case "pf_ring":
                    guard let interface = base.interface else {
                        fail(section.line, "[\(section.name)] lb_method=pf_ring needs an interface")
                        continue
                    }
                    interfaces = Array(repeating: interface.contains("::") ? interface : "pf_ring::" + interface, count: count)
                case "netmap":
                    // netmap's lb spreads the interface over pipes IFACE}0 … IFACE}N-1.
                    guard let interface = base.interface else {
                        fail(section.line, "[\(section.name)] lb_method=netmap needs an interface")
                        continue
                    }
                    let name = interface.hasPrefix("netmap::") ? String(interface.dropFirst(8)) : interface
                    interfaces = (0..<count).map { "netmap::\(name)}\($0)" }
                case "interfaces":
                    guard let list = section["lb_interfaces"] else {
                        fail(method.line, "[\(section.name)] lb_method=interfaces needs lb_interfaces")
                        continue
                    }
                    let names = list.value.split(separator: ",").map { String($0.trimmingWhitespace) }.filter { !$0.isEmpty }
                    guard names.count == count else {
                        fail(list.line, "[\(section.name)] lb_interfaces names \(names.count) interfaces for lb_procs=\(count)")
                        continue
                    }
                    interfaces = names
                case "custom":
                    break
                case "myricom":
                    fail(method.line, "[\(section.name)] lb_method=myricom: Trawl has no Myricom source (af_packet, pf_ring, netmap, interfaces or custom)")
                    continue
                default:
                    fail(method.line, "[\(section.name)] unknown lb_method '\(method.value)' (af_packet, pf_ring, netmap, interfaces or custom)")
                    continue
                }
            } else if section["lb_interfaces"] != nil {
                fail(section["lb_interfaces"]!.line, "[\(section.name)] lb_interfaces without lb_method=interfaces")
                continue
            }
            if (type == .worker || type == .standalone) && interfaces.contains(where: { $0 == nil || $0!.isEmpty }) {
                fail(section.line, "[\(section.name)] a \(type.rawValue) needs an interface")
                continue
            }
            if type != .worker && type != .standalone, let interface = section["interface"] {
                warnings.append(ConfigProblem(file, interface.line, "[\(section.name)] interface: a \(type.rawValue) reads no packets; ignored"))
                base.interface = nil
                interfaces = [nil]
            }
            for index in 0..<count {
                var node = base
                if section["lb_procs"] != nil { node.name = "\(section.name)-\(index + 1)" }
                node.interface = interfaces[index]
                if !cpus.isEmpty { node.pinCPU = cpus[index % cpus.count] }
                nodes.append(node)
            }
        }
        problems += checkCluster(file: file, settings: settings, sections: ini.sections)
        if !problems.isEmpty { throw ConfigProblems(problems) }
    }

    /// Zeek's value of an AF_Packet key as the Trawl option takes it: enums without their
    /// module and prefix (`AF_Packet::FANOUT_HASH` → `hash`), intervals in milliseconds.
    static func afPacketValue(_ key: String, _ value: String) -> String? {
        let bare = value.split(separator: ":").last.map(String.init) ?? value
        switch key {
        case "fanout_mode":
            let mode = bare.lowercased().replacingOccurrences(of: "fanout_", with: "")
            return ["hash", "lb", "cpu", "rollover", "random", "qm"].contains(mode) ? mode : nil
        case "checksum_validation_mode":
            let mode = bare.lowercased().replacingOccurrences(of: "checksum_", with: "")
            return ["on", "off", "kernel"].contains(mode) ? mode : nil
        case "enable_fanout", "enable_defrag", "enable_hw_timestamping":
            switch value.uppercased() {
            case "T", "TRUE", "1": return "T"
            case "F", "FALSE", "0": return "F"
            default: return nil
            }
        case "block_timeout":
            // A Zeek interval (10msec); a bare number is milliseconds here.
            if let n = UInt64(value) { return "\(n)" }
            let digits = value.prefix { $0.isNumber || $0 == "." }
            guard let n = Double(digits) else { return nil }
            switch value.dropFirst(digits.count).trimmingWhitespace.lowercased() {
            case "msec", "msecs": return "\(UInt64(n))"
            case "sec", "secs": return "\(UInt64(n * 1000))"
            case "usec", "usecs": return "\(UInt64(n / 1000))"
            default: return nil
            }
        default:
            return UInt64(value).map { "\($0)" }
        }
    }

    /// What must hold of the cluster as a whole: one manager (or one standalone node and
    /// nothing else), unique names, one fanout group per interface and host.
    private mutating func checkCluster(file: String, settings: ControlSettings, sections: [INIFile.Section]) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if sections.isEmpty {
            return [ConfigProblem(file, 0, "no nodes")]
        }
        let managers = nodes.filter { $0.type == .manager }
        let standalones = nodes.filter { $0.type == .standalone }
        if !standalones.isEmpty {
            if nodes.count > 1 {
                problems.append(ConfigProblem(file, standalones[0].line, "[\(standalones[0].section)] a standalone node must be the only node"))
            }
        } else if managers.count > 1 {
            problems.append(ConfigProblem(file, managers[1].line, "[\(managers[1].section)] a second manager (the first is [\(managers[0].section)] at line \(managers[0].line))"))
        } else if managers.isEmpty && !nodes.isEmpty {
            problems.append(ConfigProblem(file, 0, "no manager (a cluster needs one node of type manager)"))
        }
        var names: [String: ControlNode] = [:]
        for node in nodes {
            if let other = names[node.name] {
                problems.append(ConfigProblem(file, node.line, "node '\(node.name)' again (from [\(other.section)] at line \(other.line))"))
            }
            names[node.name] = node
        }
        // AF_Packet: one fanout id per interface on a host (the kernel refuses a group on two
        // interfaces). Sections that set none get their own, counting from Trawl's default.
        var idOf: [String: (id: Int, section: ControlNode)] = [:]      // "host|interface" → id
        var interfaceOf: [String: (interface: String, section: ControlNode)] = [:] // "host|id" → interface
        for node in nodes where node.interface?.hasPrefix("af_packet::") == true {
            let given = node.options.first { $0.hasPrefix("AF_Packet::fanout_id=") }.flatMap { Int($0.split(separator: "=")[1]) }
            guard let given else { continue }
            let interface = node.interface!, host = node.address
            if let other = interfaceOf["\(host)|\(given)"], other.interface != interface {
                guard !problems.contains(where: { $0.line == node.line }) else { continue } // said once per section
                problems.append(ConfigProblem(file, node.line, "[\(node.section)] AF_Packet fanout id \(given) on \(interface) is already [\(other.section.section)]'s on \(other.interface) at \(node.host) (line \(other.section.line)): one id per interface and host"))
                continue
            }
            interfaceOf["\(host)|\(given)"] = (interface, node)
            idOf["\(host)|\(interface)"] = (given, node)
        }
        for index in nodes.indices where nodes[index].interface?.hasPrefix("af_packet::") == true {
            guard !nodes[index].options.contains(where: { $0.hasPrefix("AF_Packet::fanout_id=") }) else { continue }
            let host = nodes[index].address, interface = nodes[index].interface!
            let id: Int
            if let known = idOf["\(host)|\(interface)"] {
                id = known.id
            } else {
                var candidate = 23 // the AF_Packet plugin's default
                while interfaceOf["\(host)|\(candidate)"] != nil { candidate += 1 }
                id = candidate
                idOf["\(host)|\(interface)"] = (id, nodes[index])
                interfaceOf["\(host)|\(id)"] = (interface, nodes[index])
            }
            nodes[index].options.append("AF_Packet::fanout_id=\(id)")
        }
        // PF_RING: a cluster id per interface and host, from PFRINGClusterID up.
        var clusterIDs: [String: Int] = [:]
        for index in nodes.indices where nodes[index].interface?.hasPrefix("pf_ring::") == true {
            let key = "\(nodes[index].address)|\(nodes[index].interface!)"
            let id = clusterIDs[key] ?? settings.pfRingClusterID + clusterIDs.count
            clusterIDs[key] = id
            nodes[index].options.append("PF_Ring::cluster_id=\(id)")
            nodes[index].options.append("PF_Ring::cluster_type=" + settings.pfRingClusterType.replacingAll("-", with: "_"))
        }
        return problems
    }
}
