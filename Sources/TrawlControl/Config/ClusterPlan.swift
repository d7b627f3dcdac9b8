import Foundation

/// The cluster trawlctl runs, from node.cfg, networks.cfg and trawlctl.cfg: each node with
/// its ports and directories, and the layout (docs/cluster.md) every `trawl` node reads.
public struct ClusterPlan: Sendable {
    public struct Node: Sendable, Equatable {
        public var node: ControlNode
        /// The port the node listens on for the cluster (manager: forwarder, and the next
        /// one; logger: log batches); nil for the others.
        public var port: Int?
        /// Its Prometheus metrics port (MetricsPort + its place in the cluster).
        public var metricsPort: Int
        /// Where it runs (its working directory: SpoolDir/NAME, as zeekctl's).
        public var directory: String
        public var name: String { node.name }
        public var type: NodeType { node.type }
    }

    public let settings: ControlSettings
    public let nodes: [Node]
    public let networks: [NetworksConfig.Network]

    /// Nodes in zeekctl's start order: loggers, manager, proxies, workers (stop: the reverse
    /// but loggers last, so that they take everything).
    public var startOrder: [Node] {
        let rank: [NodeType: Int] = [.logger: 0, .manager: 1, .proxy: 2, .worker: 3, .standalone: 4]
        return nodes.enumerated().sorted { (rank[$0.element.type]!, $0.offset) < (rank[$1.element.type]!, $1.offset) }.map(\.element)
    }
    public var stopOrder: [Node] {
        let rank: [NodeType: Int] = [.worker: 0, .standalone: 0, .proxy: 1, .manager: 2, .logger: 3]
        return nodes.enumerated().sorted { (rank[$0.element.type]!, $0.offset) < (rank[$1.element.type]!, $1.offset) }.map(\.element)
    }
    public var isStandalone: Bool { nodes.count == 1 && nodes[0].type == .standalone }
    /// The hosts, each once (by address: `localhost` and `127.0.0.1` are one), in node order.
    public var hosts: [String] {
        var seen: Set<String> = []
        return nodes.filter { seen.insert($0.node.address).inserted }.map(\.node.host)
    }
    public var spansHosts: Bool { Set(nodes.map(\.node.address)).count > 1 }
    public var encrypted: Bool {
        settings.curveEncryption == "1" || (settings.curveEncryption == "auto" && spansHosts)
    }
    /// Where the layout is installed on every host.
    public var layoutPath: String { settings.spoolDir + "/cluster.json" }

    public init(settings: ControlSettings, nodes: [ControlNode], networks: [NetworksConfig.Network],
                nodeFile: String = "node.cfg") throws(ConfigProblems) {
        self.settings = settings
        self.networks = networks
        var planned: [Node] = []
        var loggerPort = settings.clusterPort + 2
        for (index, node) in nodes.enumerated() {
            var port: Int?
            switch node.type {
            case .manager: port = settings.clusterPort
            case .logger:
                port = loggerPort
                loggerPort += 1
            default: break
            }
            planned.append(Node(node: node, port: port, metricsPort: settings.metricsPort + index,
                                directory: settings.spoolDir + "/" + node.name))
        }
        self.nodes = planned
        // Two listeners on one port of one host.
        var problems: [ConfigProblem] = []
        var taken: [String: String] = [:] // "address:port" → what
        func claim(_ node: Node, _ port: Int, _ what: String) {
            let key = "\(node.node.address):\(port)"
            if let other = taken[key] {
                problems.append(ConfigProblem(nodeFile, node.node.line, "[\(node.node.section)] \(node.name)'s \(what) port \(port) on \(node.node.host) is already \(other)'s"))
            }
            taken[key] = "\(node.name) (\(what))"
        }
        for node in planned {
            if let port = node.port {
                claim(node, port, "cluster")
                if node.type == .manager { claim(node, port + 1, "cluster") }
            }
            if isValidPort(node.metricsPort) { claim(node, node.metricsPort, "metrics") }
        }
        if !problems.isEmpty { throw ConfigProblems(problems) }
    }

    private func isValidPort(_ value: Int) -> Bool { value > 0 && value <= 65_535 }

    /// The layout every node reads (docs/cluster.md), as JSON.
    public func layoutJSON() -> String {
        var members: [String] = []
        let logWriters = nodes.contains { $0.type == .logger } ? nodes.filter { $0.type == .logger } : nodes.filter { $0.type == .manager }
        for node in nodes where node.type != .standalone {
            var fields = ["\"role\": \(quoted(node.type.rawValue))", "\"host\": \(quoted(node.node.address))"]
            if let port = node.port { fields.append("\"port\": \(port)") }
            if let interface = node.node.interface { fields.append("\"interface\": \(quoted(interface))") }
            if !node.node.options.isEmpty { fields.append("\"options\": [\(node.node.options.map(quoted).joined(separator: ", "))]") }
            if let cpu = node.node.pinCPU { fields.append("\"pin_cpus\": [\(cpu)]") }
            fields.append("\"metrics_port\": \(node.metricsPort)")
            if logWriters.contains(node) {
                fields.append("\"log_dir\": \(quoted(node.directory))")
                fields.append("\"archive_dir\": \(quoted(settings.logDir))")
            }
            members.append("    \(quoted(node.name)): {\(fields.joined(separator: ", "))}")
        }
        var top = ["  \"nodes\": {\n" + members.joined(separator: ",\n") + "\n  }"]
        top.append("  \"rotation_interval\": \(settings.logRotationInterval)")
        top.append("  \"metrics_address\": \(quoted(settings.metricsAddress))")
        top.append("  \"compress_command\": \(quoted(settings.compressLogs ? settings.compressCmd : ""))")
        top.append("  \"compress_extension\": \(quoted(settings.compressExtension))")
        top.append("  \"spool_dir\": \(quoted(settings.spoolDir + "/outbox"))")
        if !networks.isEmpty { top.append("  \"local_networks\": [\(networks.map { quoted($0.cidr) }.joined(separator: ", "))]") }
        if !settings.privateAddressSpaceIsLocal { top.append("  \"options\": [\"Site::private_address_space_is_local=F\"]") }
        if encrypted {
            top.append("  \"keys\": \(quoted(settings.curveDir))")
        } else if spansHosts {
            top.append("  \"plaintext\": true")
        }
        return "{\n" + top.joined(separator: ",\n") + "\n}\n"
    }
}
