#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// `cron` (zeekctl's, for the crontab every five minutes) and `diag`.
enum CronCommands {
    /// Restarts the nodes meant to run whose process is gone, each after its crash report;
    /// expires archived logs and crash reports; warns when a disk is nearly full.
    static func cron(_ plan: ClusterPlan, shell: HostShell) -> Int32 {
        var status: Int32 = 0
        let reports = RunCommands.statusReports(plan, plan.nodes, shell: shell)
        let crashed = plan.nodes.filter { reports[$0.name]?.state == "crashed" }
        if !crashed.isEmpty {
            let kept = shell.runAll(RunCommands.byHost(crashed).map {
                ($0.host, NodeScripts.crashReports($0.nodes, spoolDirectory: plan.settings.spoolDir))
            })
            var where_: [String: String] = [:]
            for result in kept {
                for line in result.output.split(separator: "\n") where line.hasPrefix("CRASH ") {
                    let words = line.split(separator: " ", maxSplits: 2)
                    if words.count == 3 { where_[String(words[1])] = String(words[2]) }
                }
            }
            for node in crashed {
                let report = reports[node.name]
                print("\(node.name) crashed (pid \(report?.pid.map(String.init) ?? "?"), started \(report?.started.map(RunCommands.formatTime) ?? "?")); "
                      + "crash report in \(where_[node.name] ?? "nowhere: it could not be kept") on \(node.node.host); restarting")
            }
            status = max(status, RunCommands.start(plan, crashed, shell: shell))
        }
        // The nodes' state and use, appended to SpoolDir/stats.log (as zeekctl's cron does):
        // `SECONDS NODE STATE pid=N vsize=KiB rss=KiB cpu=PERCENT` per node.
        if plan.settings.statsLogEnable {
            let (reports, usage) = HostCommands.usage(plan, plan.nodes, shell: shell)
            let now = Int(time(nil))
            var lines = ""
            for node in plan.nodes {
                let report = reports[node.name]
                var line = "\(now) \(node.name) \(report?.state ?? "unknown")"
                if report?.state == "running", let pid = report?.pid, let u = usage[pid] {
                    line += " pid=\(pid) vsize=\(u[0]) rss=\(u[1]) cpu=\(u[2])"
                }
                lines += line + "\n"
            }
            let path = plan.settings.spoolDir + "/stats.log"
            if let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil) {
                handle.seekToEndOfFile()
                handle.write(Data(lines.utf8))
                handle.closeFile()
            } else {
                print("cannot append to \(path)")
                status = max(status, 1)
            }
        }
        // Expiry and disk space, on every host at once.
        let settings = plan.settings
        var script = ""
        if settings.logExpireDays > 0 {
            script += "find \(shellQuoted(settings.logDir)) -type f -name '*.log*' -mtime +\(settings.logExpireDays - 1) -print -delete 2>/dev/null | sed 's/^/EXPIRED /'\n"
            script += "find \(shellQuoted(settings.logDir)) -mindepth 1 -type d -empty -delete 2>/dev/null\n"
        }
        if settings.crashExpireDays > 0 {
            script += "find \(shellQuoted(settings.spoolDir + "/crash")) -mindepth 1 -maxdepth 1 -type d -mtime +\(settings.crashExpireDays - 1) -print -exec rm -rf {} + 2>/dev/null | sed 's/^/EXPIRED /'\n"
        }
        script += "for dir in \(shellQuoted(settings.logDir)) \(shellQuoted(settings.spoolDir)); do df -P \"$dir\" 2>/dev/null | awk -v d=\"$dir\" 'NR==2 { sub(\"%\", \"\", $5); print \"DISK \" d \" \" 100 - $5 }'; done\n"
        for result in shell.runAll(plan.hosts.map { ($0, script) }) {
            for line in result.output.split(separator: "\n") {
                if line.hasPrefix("EXPIRED ") { print("\(result.host): expired \(line.dropFirst(8))") }
                if line.hasPrefix("DISK "), let free = Int(line.split(separator: " ").last ?? ""), free < settings.minDiskSpace {
                    print("\(result.host): only \(free)% free on \(line.split(separator: " ")[1]) (MinDiskSpace is \(settings.minDiskSpace)%)")
                    status = max(status, 1)
                }
            }
        }
        return status
    }

    /// A node's crash reports and the end of its standard error (the latest run's).
    static func diag(_ plan: ClusterPlan, _ nodes: [ClusterPlan.Node], shell: HostShell) -> Int32 {
        let scripts = RunCommands.byHost(nodes).map { group -> (String, String) in
            var script = ""
            for node in group.nodes {
                script += """
                n=\(shellQuoted(node.name)); d=\(shellQuoted(node.directory))
                echo "[$n]"
                for r in $(ls -d \(shellQuoted(plan.settings.spoolDir + "/crash/"))"$n"-* 2>/dev/null | tail -n 3); do
                  echo "crash report $r:"; sed 's/^/  /' "$r/crash-info"; echo "  standard error:"; tail -n 40 "$r/stderr.log" 2>/dev/null | sed 's/^/    /'
                done
                echo "standard error of the latest run ($d/stderr.log):"; tail -n 20 "$d/stderr.log" 2>/dev/null | sed 's/^/  /'

                """
            }
            return (group.host, script)
        }
        for result in shell.runAll(scripts) { print(result.output, terminator: "") }
        return 0
    }
}
