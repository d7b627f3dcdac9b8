/// The shell scripts that start, stop and look at the nodes of one host, and what they say
/// back: a line `NODE <name> <word>=<value> ...` per node, parsed by `NodeReport`. Each node
/// runs in its directory (SpoolDir/NAME) with its pid in `.pid`, its start time in
/// `.started`, and whether it is meant to run in `.expected` (`running` or `stopped`): what
/// `status` and `cron` go by to tell a crash from a stop.
enum NodeScripts {
    /// What a node's process runs: its environment (`NAME=value`) and its command line.
    static func command(_ node: ClusterPlan.Node, plan: ClusterPlan) -> (environment: [String], words: [String]) {
        let settings = plan.settings
        let trawl = settings.prefix + "/bin/trawl"
        var words: [String]
        if node.type == .standalone {
            words = [trawl, "-i", node.node.interface ?? "", "--logdir", node.directory] + node.node.options
            if !plan.networks.isEmpty { words.append("Site::local_nets=" + plan.networks.map(\.cidr).joined(separator: ",")) }
            if let cpu = node.node.pinCPU { words += ["--pin-cpu", String(cpu)] }
        } else {
            words = [trawl, "--cluster-layout", plan.layoutPath, "--node", node.name]
        }
        words += ["--no-progress"] + settings.trawlArgs
        // A crash prints its backtrace to standard error (kept in crash reports).
        let environment = ["SWIFT_BACKTRACE=enable=yes,interactive=no"] + settings.environment + node.node.environment
            + ["CLUSTER_NODE=\(node.name)"]
        return (environment, words)
    }

    /// The same, as one shell command.
    static func commandLine(_ node: ClusterPlan.Node, plan: ClusterPlan) -> String {
        let (environment, words) = command(node, plan: plan)
        return (["env"] + environment.map(shellQuoted) + words.map(shellQuoted)).joined(separator: " ")
    }

    /// Starts the nodes (of one host) that are not running, each detached in its directory,
    /// then says which of them died at once (with the end of their standard error).
    static func start(_ nodes: [ClusterPlan.Node], plan: ClusterPlan) -> String {
        var script = prelude + "started=''\n"
        for node in nodes {
            script += """
            d=\(shellQuoted(node.directory)); n=\(shellQuoted(node.name))
            if ! mkdir -p "$d"; then echo "NODE $n state=failed reason=directory"
            elif alive "$d"; then echo "NODE $n state=running pid=$(cat "$d/.pid") started=$(cat "$d/.started" 2>/dev/null) already=1"
            else
              (cd "$d" && exec setsid \(commandLine(node, plan: plan)) >"$d/stdout.log" 2>"$d/stderr.log" </dev/null) &
              echo $! >"$d/.pid"; date +%s >"$d/.started"; echo running >"$d/.expected"
              started="$started $n:$d"
            fi

            """
        }
        script += """
        [ -n "$started" ] && sleep 1
        for entry in $started; do
          n=${entry%%:*}; d=${entry#*:}
          if alive "$d"; then echo "NODE $n state=started pid=$(cat "$d/.pid") started=$(cat "$d/.started")"
          else wait "$(cat "$d/.pid")" 2>/dev/null; echo "NODE $n state=failed status=$?"
            tail -n 5 "$d/stderr.log" 2>/dev/null | sed "s/^/LOG $n /"; fi
        done

        """
        return script
    }

    /// Stops the nodes (of one host): SIGTERM, then SIGKILL after `timeout` seconds.
    static func stop(_ nodes: [ClusterPlan.Node], timeout: Int) -> String {
        var script = prelude
        script += "pids=''\n"
        for node in nodes {
            script += """
            d=\(shellQuoted(node.directory)); n=\(shellQuoted(node.name))
            if [ -d "$d" ]; then echo stopped >"$d/.expected"; fi
            if alive "$d"; then p=$(cat "$d/.pid"); kill -TERM "$p"; pids="$pids $n:$p"; else echo "NODE $n state=stopped"; fi

            """
        }
        script += """
        waited=0
        while [ -n "$pids" ]; do
          left=''
          for entry in $pids; do
            n=${entry%%:*}; p=${entry##*:}
            if kill -0 "$p" 2>/dev/null; then left="$left $entry"; else echo "NODE $n state=stopped"; fi
          done
          pids=$left
          [ -z "$pids" ] && break
          if [ "$waited" -ge \(timeout * 10) ]; then
            for entry in $pids; do n=${entry%%:*}; p=${entry##*:}; kill -KILL "$p" 2>/dev/null; echo "NODE $n state=killed"; done
            break
          fi
          sleep 0.1; waited=$((waited + 1))
        done

        """
        return script
    }

    /// Says how each node (of one host) is: running, stopped, or crashed (meant to run, gone).
    static func status(_ nodes: [ClusterPlan.Node]) -> String {
        var script = prelude
        for node in nodes {
            script += """
            d=\(shellQuoted(node.directory)); n=\(shellQuoted(node.name))
            e=$(cat "$d/.expected" 2>/dev/null); s=$(cat "$d/.started" 2>/dev/null); p=$(cat "$d/.pid" 2>/dev/null)
            if alive "$d"; then echo "NODE $n state=running pid=$p started=$s"
            elif [ "$e" = running ]; then echo "NODE $n state=crashed pid=$p started=$s"
            else echo "NODE $n state=stopped"; fi

            """
        }
        return script
    }

    /// Keeps what a crashed node left (its standard output and error, where a Swift crash
    /// prints its backtrace, and when it ran) in `SpoolDir/crash/NAME-WHEN/`, as zeekctl keeps
    /// a crash report; prints `CRASH <name> <directory>`.
    static func crashReports(_ nodes: [ClusterPlan.Node], spoolDirectory: String) -> String {
        var script = ""
        for node in nodes {
            script += """
            d=\(shellQuoted(node.directory)); n=\(shellQuoted(node.name))
            r=\(shellQuoted(spoolDirectory + "/crash/"))"$n-$(date +%Y%m%d-%H%M%S)"
            mkdir -p "$r" && cp "$d/stderr.log" "$d/stdout.log" "$r/" 2>/dev/null
            { echo "node $n"; echo "pid $(cat "$d/.pid" 2>/dev/null)"; echo "started $(cat "$d/.started" 2>/dev/null)"; echo "found $(date +%s)"; } >"$r/crash-info"
            echo "CRASH $n $r"

            """
        }
        return script
    }

    /// `alive DIR`: the node's pid is a live trawl process (not a pid reused by another).
    static let prelude = """
    alive() {
      [ -f "$1/.pid" ] || return 1
      p=$(cat "$1/.pid")
      [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
      tr '\\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q trawl
    }

    """
}

/// What a node script said about one node.
struct NodeReport: Equatable {
    var name: String
    var state: String
    var pid: Int?
    var started: Int?
    var fields: [String: String]

    /// The `NODE` lines of a script's output.
    static func parse(_ output: String) -> [NodeReport] {
        output.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count >= 2, words[0] == "NODE" else { return nil }
            var fields: [String: String] = [:]
            for word in words.dropFirst(2) {
                let parts = word.split(separator: "=", maxSplits: 1)
                fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            return NodeReport(name: String(words[1]), state: fields["state"] ?? "unknown", pid: fields["pid"].flatMap { Int($0) },
                              started: fields["started"].flatMap { Int($0) }, fields: fields)
        }
    }
}
