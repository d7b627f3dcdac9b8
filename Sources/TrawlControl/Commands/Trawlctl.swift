#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// trawlctl's command line: `trawlctl [--config-dir DIR] [--prefix DIR] COMMAND [ARGS]`,
/// with zeekctl's verbs.
public enum Trawlctl {
    static let usage = """
    usage: trawlctl [--config-dir DIR] [--prefix DIR] COMMAND [ARGS]
           trawlctl [--config-dir DIR] [--prefix DIR]      (the commands, one per line)

    Runs a Trawl cluster described as Zeek's zeekctl describes one: node.cfg, networks.cfg
    and trawlctl.cfg (or zeekctl.cfg) in PREFIX/etc, or --config-dir.

    commands:
      check            read the configuration and say what is wrong, with file:line
      nodes [--json]   the nodes, each process of a load-balanced worker apart
      config           the settings in effect (trawlctl.cfg and its defaults)
      metrics [--json] where Prometheus scrapes each node (--json: file service discovery)
      install          write the cluster's layout and make its directories (and keys)
      start [NODES]    start the nodes (loggers, manager, proxies, then workers)
      stop [NODES]     stop them (workers first, loggers last): SIGTERM, SIGKILL after StopTimeout
      restart [--clean] [NODES]
                       stop, then start (--clean: remove their directories and install again between)
      status [--json] [NODES]
                       Name Type Host Status Pid Started; crashed: meant to run, gone
      deploy           check, install, then restart everything (a failing check touches nothing)
      cron             restart crashed nodes (keeping a crash report), expire logs, check disk space
      diag [NODES]     crash reports and the end of the nodes' standard error
      top [NODES]      CPU and memory of the running nodes
      netstats [--json] [NODES]
                       each worker's packets received, dropped and seen on the link (via the manager)
      capstats [SECONDS]
                       packets and bits per second on the workers' interfaces (default 10 s)
      df               free space of LogDir and SpoolDir on every host
      exec CMD         a shell command on every host
      cleanup [--all] [NODES]
                       remove the directories of stopped nodes (--all: TmpDir too)
      systemd DIR      unit files for the nodes of this host (trawl-NODE.service) in DIR
      process TRACE [-- ARGS]
                       the trace through a cluster on this machine with node.cfg's workers,
                       each taking its part of the flows; the merged logs in the current directory
      help             this text

    NODES: node names, or kinds (workers, proxies, manager, loggers); all when none.
    """

    static let commands = ["check", "nodes", "config", "metrics", "install", "start", "stop", "restart", "status", "deploy", "cron", "diag",
                           "top", "df", "exec", "cleanup", "systemd", "process", "netstats", "capstats"]

    /// Runs the command in `arguments` (argv, program name first); the exit status.
    public static func main(_ arguments: [String]) -> Int32 {
        var rest = Array(arguments.dropFirst())
        var configDirectory: String?
        var prefix: String?
        // TRAWLCTL_SSH_OPTIONS: more ssh arguments (an identity, a known-hosts file), space-separated.
        let sshOptions = (getenv("TRAWLCTL_SSH_OPTIONS").map { String(cString: $0) } ?? "").split(separator: " ").map(String.init)
        while let first = rest.first, first.hasPrefix("--") {
            rest.removeFirst()
            switch first {
            case "--config-dir", "--prefix":
                guard let value = rest.first else { return fail("\(first) needs a directory") }
                rest.removeFirst()
                if first == "--config-dir" { configDirectory = value } else { prefix = value }
            case "--help":
                print(usage)
                return 0
            default:
                return fail("unknown option \(first)\n\(usage)")
            }
        }
        guard let command = rest.first else {
            return shell(globals: Array(arguments.dropFirst().prefix(arguments.count - 1 - rest.count)))
        }
        let arguments = Array(rest.dropFirst())
        let installPrefix = prefix ?? defaultPrefix()
        let directory = configDirectory ?? installPrefix + "/etc"
        if command == "help" {
            print(usage)
            return 0
        }
        guard Self.commands.contains(command) else {
            return fail("unknown command '\(command)'\n\(usage)")
        }
        let configuration: ControlConfiguration
        do {
            configuration = try ControlConfiguration(directory: directory, prefix: installPrefix)
        } catch {
            for problem in error.problems { writeStandardError("error: \(problem)\n") }
            writeStandardError("trawlctl: the configuration in \(directory) has \(error.problems.count) error\(error.problems.count == 1 ? "" : "s"); nothing was done\n")
            return 1
        }
        for warning in configuration.warnings { writeStandardError("warning: \(warning)\n") }
        var shell = HostShell(sshOptions: sshOptions)
        if let ssh = getenv("TRAWLCTL_SSH") { shell.ssh = String(cString: ssh) }
        if ["check", "install", "deploy", "start", "restart"].contains(command) {
            let problems = Commands.remoteCPUProblems(configuration, shell: shell)
            if !problems.isEmpty {
                for problem in problems { writeStandardError("error: \(problem)\n") }
                writeStandardError("trawlctl: the configuration in \(directory) has \(problems.count) error\(problems.count == 1 ? "" : "s"); nothing was done\n")
                return 1
            }
        }
        switch command {
        case "check": return Commands.check(configuration)
        case "nodes": return Commands.nodes(configuration, json: arguments.contains("--json"))
        case "config": return Commands.config(configuration)
        case "metrics": return Commands.metrics(configuration, json: arguments.contains("--json"))
        default: break
        }
        let plan = configuration.plan
        if command == "install" { return Commands.install(configuration, shell: shell) }
        if command == "df" { return HostCommands.df(plan, shell: shell) }
        if command == "process" { return ProcessCommand.run(plan, arguments: arguments) }
        if command == "capstats" {
            let seconds = arguments.first.flatMap { Int($0) } ?? 10
            guard seconds > 0 else { return fail("capstats: seconds must be above 0") }
            return HostCommands.capstats(plan, plan.nodes, seconds: seconds, shell: shell)
        }
        if command == "systemd" {
            guard let directory = arguments.first else { return fail("systemd needs a directory for the unit files") }
            return HostCommands.systemd(plan, into: directory)
        }
        if command == "exec" {
            guard !arguments.isEmpty else { return fail("exec needs a command") }
            return HostCommands.exec(plan, command: arguments.joined(separator: " "), shell: shell)
        }
        let nodes: [ClusterPlan.Node]
        do { nodes = try RunCommands.select(arguments, from: plan) } catch {
            return fail(error.description)
        }
        if ["start", "restart"].contains(command) && access(plan.layoutPath, R_OK) != 0 && !plan.isStandalone {
            return fail("\(plan.layoutPath) is missing: run 'trawlctl install' (or 'trawlctl deploy') first")
        }
        switch command {
        case "start": return RunCommands.start(plan, nodes, shell: shell)
        case "stop": return RunCommands.stop(plan, nodes, shell: shell)
        case "restart":
            let stopped = RunCommands.stop(plan, nodes, shell: shell)
            if arguments.contains("--clean") {
                // As zeekctl's: the nodes' directories (and what was left in them) go, the
                // installation is made again, then the nodes start afresh.
                _ = HostCommands.cleanup(plan, nodes, all: false, shell: shell)
                guard Commands.install(configuration, shell: shell) == 0 else { return 1 }
            }
            return max(stopped, RunCommands.start(plan, nodes, shell: shell))
        case "status": return RunCommands.status(plan, nodes, shell: shell, json: arguments.contains("--json"))
        case "cron": return CronCommands.cron(plan, shell: shell)
        case "diag": return CronCommands.diag(plan, nodes, shell: shell)
        case "top": return HostCommands.top(plan, nodes, shell: shell)
        case "netstats": return HostCommands.netstats(plan, nodes, json: arguments.contains("--json"), shell: shell)
        case "cleanup": return HostCommands.cleanup(plan, nodes, all: arguments.contains("--all"), shell: shell)
        case "deploy":
            // The check passed (the configuration was read); install, then restart all.
            guard Commands.install(configuration, shell: shell) == 0 else { return 1 }
            let stopped = RunCommands.stop(plan, plan.nodes, shell: shell)
            return max(stopped, RunCommands.start(plan, plan.nodes, shell: shell))
        default: return 2
        }
    }

    /// `trawlctl` alone: the same commands, one per line, as zeekctl's shell (`exit` or end
    /// of input to leave). The configuration is read again for each command.
    static func shell(globals: [String]) -> Int32 {
        var last: Int32 = 0
        let interactive = isatty(STDIN_FILENO) == 1
        while true {
            if interactive {
                print("[TrawlControl] > ", terminator: "")
                fflush(nil)
            }
            guard let line = readLine() else { break }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = words.first, !first.hasPrefix("#") else { continue }
            if first == "exit" || first == "quit" { break }
            last = main(["trawlctl"] + globals + words)
            fflush(nil)
        }
        return last
    }

    /// PREFIX: the directory above the one trawlctl's executable is in.
    static func defaultPrefix() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "/usr/local/trawl" }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let bin = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        let top = bin.dropLast()
        return top.isEmpty ? "/" : top.joined(separator: "/")
    }

    static func fail(_ message: String) -> Int32 {
        writeStandardError("trawlctl: \(message)\n")
        return 2
    }
}
