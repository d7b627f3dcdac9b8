#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCore

/// What a node does in the cluster (Zeek's Cluster::NodeType).
public enum NodeRole: String, CaseIterable, Sendable {
    case manager, logger, proxy, worker
}

/// One node of the layout.
public struct ClusterNode: Equatable, Sendable {
    public var name: String
    public var role: NodeRole
    /// The address other nodes reach it at.
    public var host: String
    /// The port it listens on: the manager's event forwarder (and the next port), a
    /// logger's log intake. Nil for nodes that only connect.
    public var port: UInt16?
    /// What the node runs with when its command line does not say: a worker's packet
    /// sources (`af_packet::eth0`), settings (`AF_Packet::fanout_id=23`), the CPUs it is
    /// pinned to, a log writer's directory. trawlctl fills these from node.cfg.
    public var interfaces: [String] = []
    public var options: [String] = []
    public var pinCPUs: [Int]?
    public var logDirectory: String?
    /// Where a log writer archives its rotated logs (zeekctl's LogDir, while the logs being
    /// written stay in its spool directory); its log directory when not given.
    public var archiveDirectory: String?
    /// Where the node serves its Prometheus metrics (on the layout's `metrics_address`).
    public var metricsPort: UInt16?

    public init(name: String, role: NodeRole, host: String, port: UInt16?) {
        self.name = name
        self.role = role
        self.host = host
        self.port = port
    }

    /// `tcp://host:port` for the node's port plus `offset`.
    public func endpoint(offset: UInt16 = 0) -> String? {
        guard let port else { return nil }
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "tcp://\(host):\(port + offset)"
    }
}

/// The cluster's description: every node with its role, host and ports, and the settings
/// every node shares. Read from the JSON file given with `--cluster-layout` (see
/// docs/cluster.md); `trawlctl` writes one from node.cfg.
public struct ClusterLayout: Equatable, Sendable {
    public var nodes: [ClusterNode]
    /// Records per log batch, and the longest a record waits before its batch is sent.
    public var batchRecords = 1000
    public var flushInterval: UInt64 = 1_000_000_000
    /// How often nodes say they are alive, and after how long without a word one is down.
    public var heartbeatInterval: UInt64 = 1_000_000_000
    public var nodeTimeout: UInt64 = 3_000_000_000
    /// Unacknowledged log batches a node keeps in memory; beyond it they go to its spool
    /// directory on disk, up to `spoolLimit` bytes.
    public var memoryLimit = 64 << 20
    public var spoolLimit = 4 << 30
    /// Where nodes keep their spools (each in a directory named after it).
    public var spoolDirectory = "spool"
    /// How often workers report their statistics (stats.log, capture_loss.log); Zeek's
    /// Stats::report_interval.
    public var statsInterval: UInt64 = 300_000_000_000
    /// How long a stopping node waits for the loggers to acknowledge its last batches
    /// before it keeps them in its spool for its next run.
    public var shutdownTimeout: UInt64 = 10_000_000_000
    /// Log rotation on loggers (Zeek's Log::default_rotation_interval), 0 for none.
    public var rotationInterval: UInt64 = 3_600_000_000_000
    /// The command rotated logs are handed to; nil for the built-in archiving (gzip into
    /// LOGDIR/YYYY-MM-DD/). See Archiver.Action.command.
    public var postProcessor: String?
    /// Settings every node applies as if given on its command line (`Site::local_nets=...`,
    /// `tcp_inactivity_timeout=...`, plugin options): the cluster's analysis in one place.
    public var options: [String] = []
    /// Directory of CURVE keys (`trawl --generate-cluster-keys`); nil without encryption.
    public var keyDirectory: String?
    /// Plaintext between hosts, asked for explicitly.
    public var allowPlaintext = false
    /// The address the nodes serve their metrics on (trawlctl's MetricsAddress).
    public var metricsAddress = "127.0.0.1"
    /// How archives are compressed (zeekctl's CompressCmd and CompressExtension); nil: not.
    public var compressor: String? = "gzip"
    public var compressExtension = "gz"

    public func node(named name: String) -> ClusterNode? { nodes.first { $0.name == name } }
    public func nodes(_ role: NodeRole) -> [ClusterNode] { nodes.filter { $0.role == role } }
    public var manager: ClusterNode { nodes(.manager)[0] }

    /// The nodes that write logs: the loggers, or the manager when there is none (as in Zeek).
    public var logWriters: [ClusterNode] {
        let loggers = nodes(.logger)
        return loggers.isEmpty ? [manager] : loggers
    }

    /// True when some nodes are on different hosts: links leave the machine.
    public var spansHosts: Bool { Set(nodes.map(\.host)).count > 1 }
}

/// A layout that cannot be used, with where: the file, the node and the field.
public struct LayoutError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let node: String?
    public let field: String?
    public let message: String

    public var description: String {
        var text = file
        if let node { text += ": node \(node)" }
        if let field { text += ": \(field)" }
        return text + ": " + message
    }
}

extension ClusterLayout {
    public static let defaultManagerPort: UInt16 = 27760

    /// Reads and checks a layout file.
    public static func load(path: String) throws(LayoutError) -> ClusterLayout {
        let text: String
        do { text = try readFile(path) } catch {
            throw LayoutError(file: path, node: nil, field: nil, message: "cannot read: \(error)")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(LayoutError) -> ClusterLayout {
        func fail(_ message: String, node: String? = nil, field: String? = nil) -> LayoutError {
            LayoutError(file: file, node: node, field: field, message: message)
        }
        let root: JSONValue
        do { root = try JSONReader.parse(text) } catch { throw fail(error.description) }
        guard case let .object(members) = root else { throw fail("the layout is \(root.kind), not an object") }
        var layout = ClusterLayout(nodes: [])
        let known = ["nodes", "batch_records", "flush_interval", "heartbeat_interval", "node_timeout", "memory_limit",
                     "spool_limit", "spool_dir", "rotation_interval", "shutdown_timeout", "stats_interval", "post_processor", "local_networks", "options", "keys", "plaintext", "metrics_address",
                     "compress_command", "compress_extension"]
        for member in members where !known.contains(member.key) {
            throw fail("unknown setting (known: \(known.joined(separator: ", ")))", field: member.key)
        }
        func number(_ key: String, _ range: ClosedRange<Double>) throws(LayoutError) -> Double? {
            guard let value = root[key] else { return nil }
            guard case let .number(number) = value, range.contains(number) else {
                throw fail("expected a number from \(range.lowerBound) to \(range.upperBound), got \(value.kind)", field: key)
            }
            return number
        }
        func seconds(_ key: String, _ range: ClosedRange<Double>) throws(LayoutError) -> UInt64? {
            try number(key, range).map { UInt64($0 * 1e9) }
        }
        if let n = try number("batch_records", 1...100_000) { layout.batchRecords = Int(n) }
        if let s = try seconds("flush_interval", 0.001...60) { layout.flushInterval = s }
        if let s = try seconds("heartbeat_interval", 0.01...60) { layout.heartbeatInterval = s }
        if let s = try seconds("node_timeout", 0.05...600) { layout.nodeTimeout = s }
        if let s = try seconds("rotation_interval", 0...86_400 * 7) { layout.rotationInterval = s }
        if let s = try seconds("shutdown_timeout", 0...3600) { layout.shutdownTimeout = s }
        if let s = try seconds("stats_interval", 0.1...86_400) { layout.statsInterval = s }
        if let n = try number("memory_limit", 65_536...Double(1 << 40)) { layout.memoryLimit = Int(n) }
        if let n = try number("spool_limit", 0...Double(1 << 50)) { layout.spoolLimit = Int(n) }
        guard layout.nodeTimeout > layout.heartbeatInterval else {
            throw fail("must be longer than heartbeat_interval", field: "node_timeout")
        }
        if let value = root["spool_dir"] {
            guard case let .string(dir) = value, !dir.isEmpty else { throw fail("expected a directory name", field: "spool_dir") }
            layout.spoolDirectory = dir
        }
        if let value = root["post_processor"] {
            guard case let .string(command) = value, !command.isEmpty else { throw fail("expected a shell command", field: "post_processor") }
            layout.postProcessor = command
        }
        if let value = root["local_networks"] {
            guard case let .array(items) = value else { throw fail("expected an array of subnets", field: "local_networks") }
            var subnets: [String] = []
            for item in items {
                guard case let .string(text) = item, Subnet(text) != nil else {
                    throw fail("\(item) is not a subnet (CIDR such as 10.0.0.0/8)", field: "local_networks")
                }
                subnets.append(text)
            }
            if !subnets.isEmpty { layout.options.append("Site::local_nets=" + subnets.joined(separator: ",")) }
        }
        if let value = root["options"] {
            guard case let .array(items) = value else { throw fail("expected an array of settings such as \"tcp_inactivity_timeout=10min\"", field: "options") }
            for item in items {
                guard case let .string(word) = item, word.contains("=") else {
                    throw fail("\(item) is not a setting (NAME=VALUE)", field: "options")
                }
                var check = AnalysisSettings()
                do { _ = try check.take(word) } catch { throw fail(error.description, field: "options") }
                layout.options.append(word)
            }
        }
        if let value = root["keys"] {
            guard case let .string(dir) = value, !dir.isEmpty else { throw fail("expected the directory of the cluster's keys", field: "keys") }
            layout.keyDirectory = dir
        }
        if let value = root["plaintext"] {
            guard case let .bool(flag) = value else { throw fail("expected true or false", field: "plaintext") }
            layout.allowPlaintext = flag
        }
        if let value = root["compress_command"] {
            guard case let .string(command) = value else { throw fail("expected a command (\"\" for none)", field: "compress_command") }
            layout.compressor = command.isEmpty ? nil : command
        }
        if let value = root["compress_extension"] {
            guard case let .string(text) = value, !text.isEmpty, !text.contains("/") else {
                throw fail("expected a file name extension", field: "compress_extension")
            }
            layout.compressExtension = text
        }
        if let value = root["metrics_address"] {
            guard case let .string(address) = value, address.split(separator: ".").count == 4 else {
                throw fail("expected an IPv4 address", field: "metrics_address")
            }
            layout.metricsAddress = address
        }

        guard case let .object(nodeMembers)? = root["nodes"] else {
            throw fail("expected an object naming every node", field: "nodes")
        }
        for (name, description) in nodeMembers {
            guard !name.isEmpty, name.utf8.count <= 200, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw fail("a node name is letters, digits, '-', '_' and '.'", node: name.isEmpty ? "\"\"" : name)
            }
            guard case let .object(fields) = description else { throw fail("expected an object, got \(description.kind)", node: name) }
            let nodeFields = ["role", "host", "port", "interface", "options", "pin_cpus", "log_dir", "archive_dir", "metrics_port"]
            for field in fields where !nodeFields.contains(field.key) {
                throw fail("unknown field (known: \(nodeFields.joined(separator: ", ")))", node: name, field: field.key)
            }
            guard case let .string(roleName)? = description["role"] else { throw fail("missing; one of manager, logger, proxy, worker", node: name, field: "role") }
            guard let role = NodeRole(rawValue: roleName) else {
                throw fail("'\(roleName)' is not one of manager, logger, proxy, worker", node: name, field: "role")
            }
            guard case let .string(host)? = description["host"], !host.isEmpty else {
                throw fail("missing; the address other nodes reach this node at", node: name, field: "host")
            }
            var port: UInt16?
            if let value = description["port"] {
                guard case let .number(number) = value, number >= 1, number <= 65535, number == number.rounded() else {
                    throw fail("expected a port number from 1 to 65535", node: name, field: "port")
                }
                port = UInt16(number)
            }
            switch role {
            case .manager: port = port ?? defaultManagerPort
            case .logger: guard port != nil else { throw fail("a logger needs the port it takes logs on", node: name, field: "port") }
            case .proxy, .worker: break
            }
            var node = ClusterNode(name: name, role: role, host: host, port: port)
            func strings(_ key: String, _ what: String) throws(LayoutError) -> [String] {
                switch description[key] {
                case nil: return []
                case let .string(text)?: return [text]
                case let .array(items)?:
                    var texts: [String] = []
                    for item in items {
                        guard case let .string(text) = item, !text.isEmpty else { throw fail("expected \(what)", node: name, field: key) }
                        texts.append(text)
                    }
                    return texts
                default: throw fail("expected \(what)", node: name, field: key)
                }
            }
            node.interfaces = try strings("interface", "a packet source such as \"af_packet::eth0\", or a list of them")
            if !node.interfaces.isEmpty && role != .worker {
                throw fail("only a worker reads packets", node: name, field: "interface")
            }
            node.options = try strings("options", "a list of settings such as \"AF_Packet::fanout_id=23\"")
            for word in node.options {
                guard word.contains("=") else { throw fail("'\(word)' is not a setting (NAME=VALUE)", node: name, field: "options") }
                var check = AnalysisSettings()
                do { _ = try check.take(word) } catch { throw fail(error.description, node: name, field: "options") }
            }
            if let value = description["pin_cpus"] {
                var cpus: [Int]?
                if case let .string(text) = value { cpus = CPUAffinity.parse(text) }
                if case let .array(items) = value {
                    cpus = items.compactMap { if case let .number(n) = $0, n >= 0, n == n.rounded(), n < 4096 { return Int(n) } else { return nil } }
                    if cpus?.count != items.count || cpus?.isEmpty == true { cpus = nil }
                }
                guard let cpus else { throw fail("expected CPU numbers: \"0,2\", \"0-3\" or [0, 2]", node: name, field: "pin_cpus") }
                node.pinCPUs = cpus
            }
            if let value = description["log_dir"] {
                guard case let .string(dir) = value, !dir.isEmpty else { throw fail("expected a directory", node: name, field: "log_dir") }
                node.logDirectory = dir
            }
            if let value = description["metrics_port"] {
                guard case let .number(number) = value, number >= 1, number <= 65535, number == number.rounded() else {
                    throw fail("expected a port number from 1 to 65535", node: name, field: "metrics_port")
                }
                node.metricsPort = UInt16(number)
            }
            if let value = description["archive_dir"] {
                guard case let .string(dir) = value, !dir.isEmpty else { throw fail("expected a directory", node: name, field: "archive_dir") }
                node.archiveDirectory = dir
            }
            layout.nodes.append(node)
        }
        let managers = layout.nodes(.manager)
        guard managers.count == 1 else {
            throw fail(managers.isEmpty ? "no manager: a cluster has exactly one" : "\(managers.count) managers (\(managers.map(\.name).joined(separator: ", "))): a cluster has exactly one", field: "nodes")
        }
        // The manager's forwarder takes two ports; no two listeners may share one on a host.
        var taken: [String: String] = [:]
        for node in layout.nodes {
            guard let port = node.port else { continue }
            let ports = node.role == .manager ? [port, port &+ 1] : [port]
            for p in ports {
                let key = "\(node.host):\(p)"
                if let other = taken[key] { throw fail("port \(p) on \(node.host) is already \(other)'s", node: node.name, field: "port") }
                taken[key] = node.name
            }
        }
        return layout
    }
}
