#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrawlCluster
import TrawlCore

/// `process TRACE [-- TRAWL ARGS]`: the trace through a cluster on this machine with as many
/// workers as node.cfg has (and its proxies), each taking its part of the flows
/// (`Cluster::shard=I/N`, as a frontend would give them), one logger writing the merged logs
/// into the current directory. Rotation is off; the nodes run in a temporary directory.
enum ProcessCommand {
    static func run(_ plan: ClusterPlan, arguments: [String]) -> Int32 {
        guard let trace = arguments.first, !trace.hasPrefix("-") else {
            writeStandardError("trawlctl: process needs a trace: trawlctl process TRACE [-- TRAWL ARGUMENTS]\n")
            return 2
        }
        guard access(trace, R_OK) == 0 else {
            writeStandardError("trawlctl: process: cannot read \(trace): \(Errno.current)\n")
            return 1
        }
        var extra: [String] = []
        if let dash = arguments.firstIndex(of: "--") { extra = Array(arguments[(dash + 1)...]) }
        let workers = max(1, plan.nodes.filter { $0.type == .worker }.count)
        let proxies = plan.nodes.filter { $0.type == .proxy }.count
        let output = FileManager.default.currentDirectoryPath
        let scratch = plan.settings.tmpDir + "/process-\(getpid())"
        guard let base = freePorts(count: 3) else {
            writeStandardError("trawlctl: process: no free ports on 127.0.0.1\n")
            return 1
        }
        var nodes = ["\"manager\": {\"role\": \"manager\", \"host\": \"127.0.0.1\", \"port\": \(base)}",
                     "\"logger\": {\"role\": \"logger\", \"host\": \"127.0.0.1\", \"port\": \(base + 2), \"log_dir\": \(quoted(output))}"]
        nodes += (0..<proxies).map { "\"proxy-\($0 + 1)\": {\"role\": \"proxy\", \"host\": \"127.0.0.1\"}" }
        nodes += (0..<workers).map { "\"worker-\($0 + 1)\": {\"role\": \"worker\", \"host\": \"127.0.0.1\"}" }
        var layout = "{\"nodes\": {" + nodes.joined(separator: ", ") + "}, \"rotation_interval\": 0, \"spool_dir\": \"spool\""
        if !plan.networks.isEmpty { layout += ", \"local_networks\": [" + plan.networks.map { quoted($0.cidr) }.joined(separator: ", ") + "]" }
        layout += "}\n"
        let trawl = plan.settings.prefix + "/bin/trawl"
        do {
            try makeDirectories(scratch)
            try writeFileAtomically(scratch + "/cluster.json", layout)
        } catch {
            writeStandardError("trawlctl: process: cannot prepare \(scratch): \(error)\n")
            return 1
        }
        defer { removeTree(scratch) }
        func start(_ name: String, _ more: [String]) -> pid_t? {
            ChildProcess.start(trawl, ["--cluster-layout", scratch + "/cluster.json", "--node", name, "--no-progress"] + more,
                               directory: scratch, output: scratch + "/\(name).out", errors: scratch + "/\(name).err")
        }
        // The logger and manager, then the proxies, each once it listens (its banner).
        var services: [(String, pid_t)] = []
        for name in ["logger", "manager"] + (0..<proxies).map({ "proxy-\($0 + 1)" }) {
            guard let pid = start(name, []) else { return failStart(name, scratch, services) }
            services.append((name, pid))
            if name == "logger" || name == "manager" {
                guard waitForBanner(scratch + "/\(name).err", name == "logger" ? "taking logs on" : "forwarding events", pid: pid) else {
                    return failStart(name, scratch, services)
                }
            }
        }
        print("processing \(trace) with \(workers) worker\(workers == 1 ? "" : "s")\(proxies > 0 ? " and \(proxies) prox\(proxies == 1 ? "y" : "ies")" : "") ...")
        var workerPIDs: [(String, pid_t)] = []
        for index in 0..<workers {
            let name = "worker-\(index + 1)"
            guard let pid = start(name, ["-r", trace, "Cluster::shard=\(index)/\(workers)"] + extra) else {
                return failStart(name, scratch, services + workerPIDs)
            }
            workerPIDs.append((name, pid))
        }
        var failed = false
        for (name, pid) in workerPIDs where ChildProcess.wait(pid) != 0 {
            failed = true
            writeStandardError("trawlctl: process: \(name) failed:\n" + ((try? readFile(scratch + "/\(name).err")) ?? ""))
        }
        // Loggers last, so that they take everything.
        for (name, pid) in services.reversed() {
            kill(pid, SIGTERM)
            if ChildProcess.wait(pid) != 0 {
                failed = true
                writeStandardError("trawlctl: process: \(name) failed:\n" + ((try? readFile(scratch + "/\(name).err")) ?? ""))
            }
        }
        let written = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        print("logs in \(output): \(written.joined(separator: ", "))")
        return failed ? 1 : 0
    }

    private static func failStart(_ name: String, _ scratch: String, _ started: [(String, pid_t)]) -> Int32 {
        writeStandardError("trawlctl: process: \(name) did not start:\n" + ((try? readFile(scratch + "/\(name).err")) ?? ""))
        for (_, pid) in started.reversed() {
            kill(pid, SIGTERM)
            _ = ChildProcess.wait(pid)
        }
        return 1
    }

    /// Waits (up to 10 s) for `text` in a node's standard error; false if it died first.
    private static func waitForBanner(_ path: String, _ text: String, pid: pid_t) -> Bool {
        for _ in 0..<200 {
            if let content = try? readFile(path), content.contains(text) { return true }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return false }
            usleep(50_000)
        }
        return false
    }

    /// The first of `count` consecutive ports free on 127.0.0.1 (from 40000 up).
    private static func freePorts(count: Int) -> Int? {
        func free(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        var port = 40_000 + Int(getpid() % 1000) * 10
        for _ in 0..<500 {
            if (port..<(port + count)).allSatisfy(free) { return port }
            port += count
            if port > 64_000 { port = 40_000 }
        }
        return nil
    }

    private static func removeTree(_ path: String) {
        _ = try? FileManager.default.removeItem(atPath: path)
    }
}
