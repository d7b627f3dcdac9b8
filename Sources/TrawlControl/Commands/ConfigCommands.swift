#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrawlAnalysis
import TrawlCluster
import TrawlCore

/// The commands that only read the configuration, and `install`.
enum Commands {
    static func check(_ configuration: ControlConfiguration) -> Int32 {
        let plan = configuration.plan
        let hosts = plan.hosts
        let kinds = NodeType.allCases.compactMap { type -> String? in
            let count = plan.nodes.filter { $0.type == type }.count
            return count == 0 ? nil : "\(count) \(type.rawValue)\(count == 1 ? "" : "s")"
        }
        print("configuration ok: \(plan.nodes.count) node\(plan.nodes.count == 1 ? "" : "s") (\(kinds.joined(separator: ", "))) on \(hosts.count) host\(hosts.count == 1 ? "" : "s") (\(hosts.joined(separator: ", ")))"
              + (configuration.warnings.isEmpty ? "" : "; \(configuration.warnings.count) warning\(configuration.warnings.count == 1 ? "" : "s")"))
        if plan.spansHosts {
            print(plan.encrypted ? "links between hosts: CURVE-encrypted, keys in \(plan.settings.curveDir)"
                                 : "links between hosts: NOT encrypted (trawlctl.cfg: CurveEncryption = 0)")
        }
        return 0
    }

    /// pin_cpus on other hosts, checked against their CPUs (this host's were checked when
    /// node.cfg was read): one round trip per host with pinned nodes.
    static func remoteCPUProblems(_ configuration: ControlConfiguration, shell: HostShell) -> [ConfigProblem] {
        let pinned = configuration.plan.nodes.filter { $0.node.pinCPU != nil && !isLocalHost($0.node.host) }
        let groups = RunCommands.byHost(pinned)
        guard !groups.isEmpty else { return [] }
        var problems: [ConfigProblem] = []
        let file = configuration.directory + "/" + ControlConfiguration.nodesFile
        for (group, result) in zip(groups, shell.runAll(groups.map { ($0.host, "getconf _NPROCESSORS_CONF\n") })) {
            guard let count = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue } // unreachable: said by the command
            var said: Set<String> = []
            for node in group.nodes where node.node.pinCPU! >= count && said.insert(node.node.section).inserted {
                problems.append(ConfigProblem(file, node.node.line, "[\(node.node.section)] pin_cpus: \(node.node.host) has no CPU \(node.node.pinCPU!) (it has \(count): 0-\(count - 1))"))
            }
        }
        return problems
    }

    static func nodes(_ configuration: ControlConfiguration, json: Bool) -> Int32 {
        let plan = configuration.plan
        if json {
            let items = plan.nodes.map { node -> String in
                var fields = ["\"name\": \(quoted(node.name))", "\"type\": \(quoted(node.type.rawValue))",
                              "\"host\": \(quoted(node.node.host))", "\"address\": \(quoted(node.node.address))"]
                if let interface = node.node.interface { fields.append("\"interface\": \(quoted(interface))") }
                if let port = node.port { fields.append("\"port\": \(port)") }
                fields.append("\"metrics_port\": \(node.metricsPort)")
                if let cpu = node.node.pinCPU { fields.append("\"pin_cpu\": \(cpu)") }
                fields.append("\"options\": [\(node.node.options.map(quoted).joined(separator: ", "))]")
                fields.append("\"env\": [\(node.node.environment.map(quoted).joined(separator: ", "))]")
                return "  {" + fields.joined(separator: ", ") + "}"
            }
            print("[\n" + items.joined(separator: ",\n") + "\n]")
            return 0
        }
        var rows = [["Name", "Type", "Host", "Interface", "Port", "Metrics", "CPU", "Options"]]
        for node in plan.nodes {
            rows.append([node.name, node.type.rawValue, node.node.host, node.node.interface ?? "-", node.port.map(String.init) ?? "-",
                         String(node.metricsPort), node.node.pinCPU.map(String.init) ?? "-",
                         node.node.options.isEmpty ? "-" : node.node.options.joined(separator: " ")])
        }
        print(table(rows), terminator: "")
        return 0
    }

    /// Where Prometheus scrapes each node: `NAME TARGET`, or --json as Prometheus's file
    /// service discovery takes it. With MetricsAddress 0.0.0.0 a target is the node's host;
    /// otherwise the nodes listen on that address of their own host (127.0.0.1: scraped there).
    static func metrics(_ configuration: ControlConfiguration, json: Bool) -> Int32 {
        let plan = configuration.plan
        let address = plan.settings.metricsAddress
        let targets = plan.nodes.map { node -> (ClusterPlan.Node, String) in
            (node, (address == "0.0.0.0" ? node.node.address : address) + ":\(node.metricsPort)")
        }
        if json {
            let items = targets.map { node, target in
                "  {\"targets\": [\(quoted(target))], \"labels\": {\"node\": \(quoted(node.name)), \"role\": \(quoted(node.type.rawValue)), \"host\": \(quoted(node.node.host))}}"
            }
            print("[\n" + items.joined(separator: ",\n") + "\n]")
        } else {
            var rows = [["Name", "Host", "Target"]]
            rows += targets.map { [$0.0.name, $0.0.node.host, $0.1] }
            print(table(rows), terminator: "")
        }
        return 0
    }

    static func config(_ configuration: ControlConfiguration) -> Int32 {
        let s = configuration.plan.settings
        let pairs: [(String, String)] = [
            ("configdir", configuration.directory), ("prefix", s.prefix), ("logdir", s.logDir), ("spooldir", s.spoolDir),
            ("tmpdir", s.tmpDir), ("logrotationinterval", "\(s.logRotationInterval)"), ("logexpireinterval", "\(s.logExpireDays)"),
            ("compresslogs", s.compressLogs ? "1" : "0"), ("compresscmd", s.compressCmd), ("compressextension", s.compressExtension),
            ("mindiskspace", "\(s.minDiskSpace)"), ("stoptimeout", "\(s.stopTimeout)"), ("zeekport", "\(s.clusterPort)"),
            ("metricsport", "\(s.metricsPort)"), ("metricsaddress", s.metricsAddress),
            ("env_vars", s.environment.joined(separator: ",")), ("crashexpireinterval", "\(s.crashExpireDays)"),
            ("statslogenable", s.statsLogEnable ? "1" : "0"), ("privateaddressspaceislocal", s.privateAddressSpaceIsLocal ? "1" : "0"),
            ("pfringclusterid", "\(s.pfRingClusterID)"), ("pfringclustertype", s.pfRingClusterType),
            ("curveencryption", s.curveEncryption), ("curvedir", s.curveDir), ("trawlargs", s.trawlArgs.joined(separator: " ")),
        ]
        for (key, value) in pairs { print("\(key) = \(value)") }
        return 0
    }

    /// Writes the layout and makes the directories on this host, then copies the prefix
    /// (bin, lib, etc), the layout and the keys to every other host (rsync over ssh, the
    /// hosts at once) and makes the nodes' directories there.
    static func install(_ configuration: ControlConfiguration, shell: HostShell) -> Int32 {
        let local = install(configuration)
        guard local == 0 else { return local }
        let plan = configuration.plan
        let remote = RunCommands.byHost(plan.nodes).filter { !isLocalHost($0.host) }
        guard !remote.isEmpty else { return 0 }
        let settings = plan.settings
        let directories = [settings.prefix, settings.spoolDir, settings.logDir, settings.tmpDir]
        var failed = 0
        let made = shell.runAll(remote.map { group in
            (group.host, "mkdir -p " + (directories + group.nodes.map(\.directory)).map(shellQuoted).joined(separator: " ") + "\n")
        })
        for result in made where result.status != 0 {
            print("  \(result.host): cannot make the directories: \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))")
            failed += 1
        }
        guard failed == 0 else { return 1 }
        // What each host gets: the prefix's programs and configuration, the layout, the keys.
        var copies = ["bin", "lib", "etc"].map { settings.prefix + "/" + $0 }.filter { access($0, F_OK) == 0 }.map { ($0, settings.prefix + "/") }
        copies.append((plan.layoutPath, settings.spoolDir + "/"))
        if plan.encrypted { copies.append((settings.curveDir, (settings.curveDir as NSString).deletingLastPathComponent + "/")) }
        let toCopy = copies
        let results = parallel(remote.map(\.host)) { host -> String? in
            for (source, target) in toCopy {
                let result = ChildProcess.run("/usr/bin/rsync", ["-a", "-e", ([shell.ssh, "-o", "BatchMode=yes"] + shell.sshOptions).joined(separator: " "),
                                                                 source, "\(host):\(target)"])
                if result.status != 0 {
                    return "rsync of \(source) failed (exit \(result.status)): " + String(decoding: result.errors, as: UTF8.self)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
            return nil
        }
        for (host, problem) in zip(remote.map(\.host), results) {
            if let problem {
                print("  \(host): \(problem)")
                failed += 1
            } else {
                print("installed on \(host)")
            }
        }
        return failed == 0 ? 0 : 1
    }

    /// Writes the layout and makes the directories on this host.
    static func install(_ configuration: ControlConfiguration) -> Int32 {
        let plan = configuration.plan
        do {
            for directory in [plan.settings.spoolDir, plan.settings.logDir, plan.settings.tmpDir] + plan.nodes.map(\.directory) {
                try makeDirectories(directory)
            }
            if plan.encrypted && !keysExist(plan.settings.curveDir) {
                _ = try ClusterSecurity.generateKeys(into: plan.settings.curveDir)
                print("made the cluster's CURVE keys in \(plan.settings.curveDir)")
            }
            try writeFileAtomically(plan.layoutPath, plan.layoutJSON())
        } catch {
            writeStandardError("trawlctl: install: \(error)\n")
            return 1
        }
        print("installed the layout of \(plan.nodes.count) nodes in \(plan.layoutPath)")
        return 0
    }

    private static func keysExist(_ directory: String) -> Bool {
        access(directory + "/server.secret", R_OK) == 0
    }
}

/// A JSON string, escaped as the JSON logs escape theirs.
func quoted(_ text: String) -> String { JSONLinesWriter.quote(text) }

/// Rows as columns padded to their widest cell, as zeekctl prints its tables.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = first.map(\.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count) }
            .joined(separator: " ")
    }.joined(separator: "\n") + "\n"
}

/// `body` for each item, all at once (a thread each: they mostly wait); the results in order.
func parallel<Item: Sendable, T: Sendable>(_ items: [Item], _ body: @escaping @Sendable (Item) -> T) -> [T] {
    let results = ParallelResults<T>(items.count)
    let group = DispatchGroup()
    for (index, item) in items.enumerated() {
        group.enter()
        Thread.detachNewThread {
            results.set(index, body(item))
            group.leave()
        }
    }
    group.wait()
    return results.values
}

private final class ParallelResults<T>: @unchecked Sendable {
    private var items: [T?]
    private let lock = NSLock()
    init(_ count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ value: T) {
        lock.lock()
        items[index] = value
        lock.unlock()
    }
    var values: [T] { items.map { $0! } }
}
