#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrawlCore

/// start, stop, restart, status, deploy: the nodes' processes on their hosts, a phase per
/// kind of node in zeekctl's order, each phase one script per host, the hosts at once.
enum RunCommands {
    static let startPhases: [[NodeType]] = [[.logger], [.manager], [.proxy], [.worker, .standalone]]
    static let stopPhases: [[NodeType]] = [[.worker, .standalone], [.proxy], [.manager], [.logger]]

    /// The nodes the command's arguments name: node names, or kinds (`workers`, `worker`,
    /// `manager`, ...); all of them when there are none.
    static func select(_ arguments: [String], from plan: ClusterPlan) throws(ConfigProblems) -> [ClusterPlan.Node] {
        let words = arguments.filter { !$0.hasPrefix("--") }
        guard !words.isEmpty else { return plan.nodes }
        var chosen: [String] = []
        for word in words {
            let kind = word.hasSuffix("s") ? String(word.dropLast()) : word
            if let type = NodeType(rawValue: kind) {
                chosen += plan.nodes.filter { $0.type == type }.map(\.name)
            } else if plan.nodes.contains(where: { $0.name == word }) {
                chosen.append(word)
            } else {
                throw ConfigProblems([ConfigProblem("trawlctl", 0, "no node or kind of node named '\(word)' (nodes: \(plan.nodes.map(\.name).joined(separator: ", ")))")])
            }
        }
        return plan.nodes.filter { chosen.contains($0.name) }
    }

    /// Runs the `what` script that `script` makes for the nodes of each phase in turn (every
    /// host of a phase at once), saying "VERB NODE ..." first; a host whose script could not
    /// run counts as a failure, and `check` reads each host's result and says how many nodes
    /// failed.
    static func inPhases(_ phases: [[NodeType]], _ nodes: [ClusterPlan.Node], what: String, verb: String, shell: HostShell,
                         script: ([ClusterPlan.Node]) -> String, check: (HostShell.Result) -> Int) -> Int32 {
        var failed = 0
        for phase in phases {
            let members = nodes.filter { phase.contains($0.type) }
            guard !members.isEmpty else { continue }
            for node in members { print("\(verb) \(node.name) ...") }
            for result in shell.runAll(byHost(members).map { ($0.host, script($0.nodes)) }) {
                if let problem = unreachable(result, what) {
                    print("  " + problem)
                    failed += 1
                }
                failed += check(result)
            }
        }
        return failed == 0 ? 0 : 1
    }

    static func start(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell) -> Int32 {
        inPhases(startPhases, nodes, what: "start", verb: "starting", shell: shell, script: { NodeScripts.start($0, plan: plan) }) { result in
            var failed = 0
            for report in NodeReport.parse(result.output) {
                switch report.state {
                case "started":
                    break
                case "running" where report.fields["already"] == nil:
                    break
                case "running":
                    print("  \(report.name) is running already (pid \(report.pid.map(String.init) ?? "?"))")
                default:
                    failed += 1
                    let meaning = report.fields["status"].flatMap { Int32($0) }.flatMap(Self.exitMeaning)
                    print("  \(report.name) did not start" + (meaning.map { " (\($0))" } ?? "") + ":")
                    for line in result.output.split(separator: "\n") where line.hasPrefix("LOG \(report.name) ") {
                        print("    " + line.dropFirst(5 + report.name.count))
                    }
                }
            }
            return failed
        }
    }

    /// What trawl's exit status says, when it is one of the statuses a failed source gives.
    static func exitMeaning(_ status: Int32) -> String? {
        switch status {
        case 77: return "not permitted to capture there: run the node as root, or give trawl CAP_NET_RAW and CAP_NET_ADMIN with setcap"
        case 66: return "its interface or trace file is not there"
        case 69: return "its interface is busy, or something the capture needs is missing"
        default: return nil
        }
    }

    static func stop(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell) -> Int32 {
        inPhases(stopPhases, nodes, what: "stop", verb: "stopping", shell: shell,
                 script: { NodeScripts.stop($0, timeout: plan.settings.stopTimeout) }) { result in
            for report in NodeReport.parse(result.output) where report.state == "killed" {
                print("  \(report.name) did not stop within StopTimeout (\(plan.settings.stopTimeout) s): killed")
            }
            return 0
        }
    }

    /// Name Type Host Status Pid Started, as zeekctl prints it (or JSON).
    static func status(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell, json: Bool) -> Int32 {
        let reports = statusReports(plan, nodes, shell: shell)
        if json {
            let items = nodes.map { node -> String in
                let report = reports[node.name]
                var fields = ["\"name\": \(quoted(node.name))", "\"type\": \(quoted(node.type.rawValue))",
                              "\"host\": \(quoted(node.node.host))", "\"status\": \(quoted(report?.state ?? "unknown"))"]
                if let pid = report?.pid, report?.state == "running" || report?.state == "crashed" { fields.append("\"pid\": \(pid)") }
                if let started = report?.started, report?.state == "running" { fields.append("\"started\": \(started)") }
                return "  {" + fields.joined(separator: ", ") + "}"
            }
            print("[\n" + items.joined(separator: ",\n") + "\n]")
            return 0
        }
        var rows = [["Name", "Type", "Host", "Status", "Pid", "Started"]]
        for node in nodes {
            let report = reports[node.name]
            let running = report?.state == "running"
            rows.append([node.name, node.type.rawValue, node.node.host, report?.state ?? "unknown",
                         running || report?.state == "crashed" ? report?.pid.map(String.init) ?? "" : "",
                         running ? report?.started.map(formatTime) ?? "" : ""])
        }
        print(table(rows), terminator: "")
        return 0
    }

    static func statusReports(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell) -> [String: NodeReport] {
        var reports: [String: NodeReport] = [:]
        for result in shell.runAll(byHost(nodes).map { ($0.host, NodeScripts.status($0.nodes)) }) {
            for report in NodeReport.parse(result.output) { reports[report.name] = report }
            if let problem = unreachable(result, "status") { writeStandardError("trawlctl: \(problem)\n") }
        }
        return reports
    }

    /// What to say when a host's script did not run at all (ssh failed, say): nothing
    /// reported and a non-zero exit; nil when it ran.
    static func unreachable(_ result: HostShell.Result, _ what: String) -> String? {
        guard result.status != 0 && NodeReport.parse(result.output).isEmpty else { return nil }
        return "\(result.host): cannot run the \(what) script (exit \(result.status)): \(result.errors.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// The nodes grouped by host (by address: one script per machine), in first-seen order.
    static func byHost(_ nodes: [ClusterPlan.Node]) -> [(host: String, nodes: [ClusterPlan.Node])] {
        var order: [String] = []
        var groups: [String: (host: String, nodes: [ClusterPlan.Node])] = [:]
        for node in nodes {
            if groups[node.node.address] == nil {
                order.append(node.node.address)
                groups[node.node.address] = (node.node.host, [])
            }
            groups[node.node.address]!.nodes.append(node)
        }
        return order.map { groups[$0]! }
    }

    /// zeekctl's TimeFmt, "%d %b %H:%M:%S", in local time.
    static func formatTime(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        localtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%d %b %H:%M:%S", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
