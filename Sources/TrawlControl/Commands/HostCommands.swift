#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrawlCore
import TrawlCluster

/// top, df, exec, cleanup: what trawlctl asks of the hosts beyond the nodes' processes.
enum HostCommands {
    /// What `ps` says of each running node: its pid and [vsize KiB, rss KiB, %cpu, seconds].
    static func usage(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell)
        -> (reports: [String: NodeReport], usage: [Int: [String]]) {
        let reports = RunCommands.statusReports(plan, nodes, shell: shell)
        var byHost: [(String, String)] = []
        for group in RunCommands.byHost(nodes) {
            let pids = group.nodes.compactMap { node in reports[node.name].flatMap { $0.state == "running" ? $0.pid : nil } }
            guard !pids.isEmpty else { continue }
            byHost.append((group.host, "ps -o pid=,vsz=,rss=,pcpu=,etimes= -p \(pids.map(String.init).joined(separator: ","))\n"))
        }
        var usage: [Int: [String]] = [:]
        for result in shell.runAll(byHost) {
            for line in result.output.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                if words.count == 5, let pid = Int(words[0]) { usage[pid] = Array(words.dropFirst()) }
            }
        }
        return (reports, usage)
    }

    /// CPU and memory of each running node (ps on each host).
    static func top(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell) -> Int32 {
        let (reports, usage) = self.usage(plan, nodes, shell: shell)
        var rows = [["Name", "Type", "Host", "Pid", "VSize", "RSS", "CPU", "Running"]]
        for node in nodes {
            guard let report = reports[node.name], report.state == "running", let pid = report.pid, let u = usage[pid] else {
                rows.append([node.name, node.type.rawValue, node.node.host, "-", "-", "-", "-", reports[node.name]?.state ?? "unknown"])
                continue
            }
            rows.append([node.name, node.type.rawValue, node.node.host, String(pid), kibibytes(u[0]), kibibytes(u[1]), u[2] + "%", u[3] + " s"])
        }
        print(table(rows), terminator: "")
        return 0
    }

    /// Each worker's capture counters as the manager last heard them (every heartbeat):
    /// `NAME: SECONDS recvd=N dropped=N link=N`, as zeekctl prints them (or JSON).
    static func netstats(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], json: Bool, shell: HostShell) -> Int32 {
        guard let manager = plan.nodes.first(where: { $0.type == .manager }) else {
            writeStandardError("trawlctl: netstats: no manager (a standalone node: see its summary)\n")
            return 1
        }
        let workers = nodes.filter { $0.type == .worker }
        let reports = RunCommands.statusReports(plan, workers, shell: shell)
        let result = shell.run("cat \(shellQuoted(manager.directory + "/netstats")) 2>/dev/null\n", on: manager.node.host)
        var lines: [String: [String]] = [:]
        for line in result.output.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if words.count >= 2 { lines[words[0]] = Array(words.dropFirst()) }
        }
        var items: [String] = []
        for worker in workers {
            let running = reports[worker.name]?.state == "running"
            guard running, let words = lines[worker.name] else {
                if json {
                    items.append("  {\"name\": \(quoted(worker.name)), \"status\": \(quoted(reports[worker.name]?.state ?? "unknown"))}")
                } else {
                    print("\(worker.name): \(running ? "no counters from it yet" : reports[worker.name]?.state ?? "unknown")")
                }
                continue
            }
            if json {
                var fields = ["\"name\": \(quoted(worker.name))", "\"status\": \"running\"", "\"time\": \(words[0])"]
                for word in words.dropFirst() {
                    let pair = word.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2 else { continue }
                    fields.append("\(quoted(String(pair[0]))): \(pair[1] == "-" ? "null" : String(pair[1]))")
                }
                items.append("  {" + fields.joined(separator: ", ") + "}")
            } else {
                print("\(worker.name): \(words.filter { !$0.hasPrefix("bytes=") }.joined(separator: " "))")
            }
        }
        if json { print("[\n" + items.joined(separator: ",\n") + "\n]") }
        return 0
    }

    /// zeekctl's capstats: packets and bits per second on each worker's interface over
    /// `seconds`, from the interface's own counters (/sys/class/net/IFACE/statistics).
    static func capstats(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], seconds: Int, shell: HostShell) -> Int32 {
        // One measurement per interface and host, however many workers share it.
        var interfaces: [(host: String, interface: String)] = []
        for node in nodes where node.type == .worker || node.type == .standalone {
            guard let source = node.node.interface else { continue }
            let bare = String(source.split(separator: "::").last ?? Substring(source)).split(separator: "}")[0]
            if !interfaces.contains(where: { $0.host == node.node.host && $0.interface == String(bare) }) {
                interfaces.append((node.node.host, String(bare)))
            }
        }
        guard !interfaces.isEmpty else {
            print("no worker interfaces")
            return 0
        }
        let scripts = RunCommands.byHost(nodes).compactMap { group -> (String, String)? in
            let mine = interfaces.filter { $0.host == group.host }.map(\.interface)
            guard !mine.isEmpty else { return nil }
            let list = mine.map(shellQuoted).joined(separator: " ")
            return (group.host, """
            read_all() { for i in \(list); do s=/sys/class/net/$i/statistics; echo "$i $(cat $s/rx_packets 2>/dev/null || echo -) $(cat $s/rx_bytes 2>/dev/null || echo -)"; done; }
            read_all | sed 's/^/A /'; sleep \(seconds); read_all | sed 's/^/B /'

            """)
        }
        var rows = [["Host", "Interface", "kpps", "mbps", "(\(seconds) s)"]]
        for result in shell.runAll(scripts) {
            var before: [String: (Double, Double)] = [:]
            for line in result.output.split(separator: "\n") {
                let w = line.split(separator: " ").map(String.init)
                guard w.count == 4 else { continue }
                guard let packets = Double(w[2]), let bytes = Double(w[3]) else {
                    if w[0] == "B" { rows.append([result.host, w[1], "-", "-", "no such interface"]) }
                    continue
                }
                if w[0] == "A" {
                    before[w[1]] = (packets, bytes)
                } else if let (p0, b0) = before[w[1]] {
                    let kpps = (packets - p0) / Double(seconds) / 1000, mbps = (bytes - b0) * 8 / Double(seconds) / 1_000_000
                    rows.append([result.host, w[1], String(format: "%.1f", kpps), String(format: "%.1f", mbps), ""])
                }
            }
        }
        print(table(rows), terminator: "")
        return 0
    }

    /// Free space where the logs and the spool are, on each host.
    static func df(_ plan: ClusterPlan, shell: HostShell) -> Int32 {
        let settings = plan.settings
        let script = "for d in \(shellQuoted(settings.logDir)) \(shellQuoted(settings.spoolDir)); do df -P -k \"$d\" 2>/dev/null | awk -v d=\"$d\" 'NR==2 { print d, $2, $4, $5 }'; done\n"
        var rows = [["Host", "Directory", "Size", "Free", "Used"]]
        var status: Int32 = 0
        for result in shell.runAll(plan.hosts.map { ($0, script) }) {
            for line in result.output.split(separator: "\n") {
                let w = line.split(separator: " ").map(String.init)
                guard w.count == 4 else { continue }
                rows.append([result.host, w[0], kibibytes(w[1]), kibibytes(w[2]), w[3]])
                if let used = Int(w[3].dropLast()), 100 - used < settings.minDiskSpace { status = 1 }
            }
            if result.status != 0 && result.output.isEmpty { rows.append([result.host, "-", "-", "-", "unreachable"]) }
        }
        print(table(rows), terminator: "")
        return status
    }

    /// A shell command on every host, its output prefixed with the host.
    static func exec(_ plan: ClusterPlan, command: String, shell: HostShell) -> Int32 {
        var status: Int32 = 0
        for result in shell.runAll(plan.hosts.map { ($0, command + "\n") }) {
            for line in (result.output + result.errors).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                print("\(result.host): \(line)")
            }
            if result.status != 0 {
                print("\(result.host): exit \(result.status)")
                status = 1
            }
        }
        return status
    }

    /// Removes the directories of the stopped nodes (their logs not yet archived, spooled
    /// batches not yet sent); with --all, TmpDir too. A running node's is kept, and said.
    static func cleanup(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], all: Bool, shell: HostShell) -> Int32 {
        let reports = RunCommands.statusReports(plan, nodes, shell: shell)
        let running = nodes.filter { reports[$0.name]?.state == "running" }
        for node in running { print("\(node.name) is running: its directory is kept") }
        let stopped = nodes.filter { reports[$0.name]?.state != "running" }
        var scripts: [(String, String)] = RunCommands.byHost(stopped).map { group in
            (group.host, group.nodes.map { "rm -rf \(shellQuoted($0.directory)) && echo CLEANED \(shellQuoted($0.name))\n" }.joined())
        }
        if all { scripts += plan.hosts.map { ($0, "rm -rf \(shellQuoted(plan.settings.tmpDir)) && mkdir -p \(shellQuoted(plan.settings.tmpDir))\n") } }
        for result in shell.runAll(scripts) {
            for line in result.output.split(separator: "\n") where line.hasPrefix("CLEANED ") { print("cleaned \(line.dropFirst(8))") }
        }
        return 0
    }

    /// A systemd unit per node of this host, for sites that run nodes under systemd: the
    /// node's command line, directory and environment, restarted when it fails; loggers
    /// before the manager before the rest, as trawlctl starts them.
    static func systemd(_ plan: ClusterPlan, into directory: String) -> Int32 {
        let local = plan.nodes.filter { isLocalHost($0.node.host) }
        guard !local.isEmpty else {
            writeStandardError("trawlctl: systemd: no node runs on this host\n")
            return 1
        }
        let unit = { (node: ClusterPlan.Node) in "trawl-\(node.name).service" }
        let loggers = plan.nodes.filter { $0.type == .logger && isLocalHost($0.node.host) }.map(unit)
        let manager = plan.nodes.filter { $0.type == .manager && isLocalHost($0.node.host) }.map(unit)
        do {
            try makeDirectories(directory)
            for node in local {
                var after = ["network-online.target"]
                if node.type != .logger { after += loggers }
                if node.type == .proxy || node.type == .worker { after += manager }
                let (environment, words) = NodeScripts.command(node, plan: plan)
                // systemd's own quoting: each word in double quotes, % and $ doubled.
                func unitWord(_ word: String) -> String {
                    "\"" + word.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                        .replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: "$", with: "$$") + "\""
                }
                let command = (["/usr/bin/env"] + environment + words).map(unitWord).joined(separator: " ")
                let text = """
                # Made by trawlctl systemd from \(plan.settings.prefix); made again after a change to node.cfg.
                [Unit]
                Description=Trawl \(node.type.rawValue) \(node.name)
                Wants=network-online.target
                After=\(after.joined(separator: " "))

                [Service]
                WorkingDirectory=\(node.directory)
                ExecStartPre=/bin/mkdir -p \(node.directory)
                ExecStart=\(command)
                KillSignal=SIGTERM
                TimeoutStopSec=\(plan.settings.stopTimeout)
                Restart=on-failure
                RestartSec=5

                [Install]
                WantedBy=multi-user.target

                """
                try writeFileAtomically(directory + "/" + unit(node), text)
                print("wrote \(directory)/\(unit(node))")
            }
        } catch {
            writeStandardError("trawlctl: systemd: \(error)\n")
            return 1
        }
        return 0
    }

    /// ps's KiB, readably.
    static func kibibytes(_ text: String) -> String {
        guard let k = Double(text) else { return text }
        if k >= 1_048_576 { return String(format: "%.1fG", k / 1_048_576) }
        if k >= 1024 { return String(format: "%.0fM", k / 1024) }
        return String(format: "%.0fK", k)
    }
}
