import Foundation
import Testing
import TrawlCluster

/// Three hosts for trawlctl: network namespaces on a bridge, each running Debian's sshd on
/// its own address with a host key made for the test, and a client key root may log in
/// with. Hosts b and c also have a capture interface (`cap0`) whose other end, in this
/// namespace, tcpreplay feeds. Everything is removed when the value goes away.
final class SSHHosts {
    let names: [String]
    let addresses: [String]
    let bridge: String
    /// This namespace's end of each host's capture interface, by host index (b: 1, c: 2).
    let feeds: [Int: String]
    let keys: TemporaryDirectory
    private var sshdPIDFiles: [String] = []

    init() throws {
        let tag = String(getpid() % 10_000)
        let subnet = 80 + Int(getpid() % 100)
        names = ["a", "b", "c"].map { "trawl-ssh-\($0)-\(tag)" }
        addresses = (1...3).map { "10.79.\(subnet).\($0)" }
        bridge = "tsb\(tag)"
        feeds = [1: "tsfb\(tag)", 2: "tsfc\(tag)"]
        keys = try TemporaryDirectory()
        chmod(keys.path, 0o700)
        mkdir("/run/sshd", 0o755) // sshd's privilege separation directory
        for key in ["host_key", "client_key"] {
            let made = try runProcess("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keys.file(key)])
            guard made.status == 0 else { throw TestFailure("ssh-keygen: \(made.stderr)") }
        }
        try FileManager.default.copyItem(atPath: keys.file("client_key.pub"), toPath: keys.file("authorized_keys"))
        try ip(["link", "add", bridge, "type", "bridge"])
        try ip(["addr", "add", "10.79.\(subnet).254/24", "dev", bridge])
        try ip(["link", "set", bridge, "up"])
        for (index, namespace) in names.enumerated() {
            let outside = "tsh\(tag)\(index)"
            try ip(["netns", "add", namespace])
            try ip(["link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace])
            try ip(["link", "set", outside, "master", bridge, "up"])
            try ip(["-n", namespace, "addr", "add", addresses[index] + "/24", "dev", "eth0"])
            try ip(["-n", namespace, "link", "set", "eth0", "up"])
            try ip(["-n", namespace, "link", "set", "lo", "up"])
            if let feed = feeds[index] {
                try ip(["link", "add", feed, "type", "veth", "peer", "name", "cap0", "netns", namespace])
                // No IPv6 on the capture link: the kernel's own router solicitations would be
                // flows the test did not send.
                _ = try runProcess("/usr/bin/env", ["sysctl", "-qw", "net.ipv6.conf.\(feed).disable_ipv6=1"])
                _ = try runProcess("/usr/bin/env", ["ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv6.conf.cap0.disable_ipv6=1"])
                try ip(["link", "set", feed, "up"])
                try ip(["-n", namespace, "link", "set", "cap0", "up"])
            }
            let pidFile = keys.file("sshd-\(index).pid")
            let sshd = try runProcess("/usr/bin/env", ["ip", "netns", "exec", namespace, "/usr/sbin/sshd", "-f", "/dev/null",
                                                       "-o", "ListenAddress=\(addresses[index])", "-o", "HostKey=\(keys.file("host_key"))",
                                                       "-o", "AuthorizedKeysFile=\(keys.file("authorized_keys"))", "-o", "PidFile=\(pidFile)",
                                                       "-o", "StrictModes=no", "-o", "UsePAM=no", "-o", "PermitRootLogin=prohibit-password"])
            guard sshd.status == 0 else { throw TestFailure("sshd in \(namespace): \(sshd.stderr)") }
            sshdPIDFiles.append(pidFile)
        }
    }

    /// What ssh (and trawlctl, through TRAWLCTL_SSH_OPTIONS) needs to reach the hosts.
    var sshOptions: String {
        "-i \(keys.file("client_key")) -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR"
    }

    deinit {
        for file in sshdPIDFiles {
            if let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGTERM)
            }
        }
        for namespace in names { _ = try? runProcess("/usr/bin/env", ["ip", "netns", "del", namespace]) }
        _ = try? runProcess("/usr/bin/env", ["ip", "link", "del", bridge])
        for feed in feeds.values { _ = try? runProcess("/usr/bin/env", ["ip", "link", "del", feed]) }
    }

    private func ip(_ arguments: [String]) throws {
        let result = try runProcess("/usr/bin/env", ["ip"] + arguments)
        guard result.status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(result.stderr)") }
    }
}

/// trawlctl on three hosts reached over ssh: the manager and a logger on a, a proxy and two
/// workers (af_packet, lb_procs=2) on b, two workers on c; the workers capture what
/// tcpreplay sends them. deploy, status, a worker killed and restarted by cron with its
/// crash report kept, stop; the logger's conn.log holds every replayed flow, once.
@Suite(.serialized) struct TrawlctlHostsTests {
    @Test(.enabled(if: isRoot && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd")
                   && FileManager.default.isExecutableFile(atPath: "/usr/bin/tcpreplay"),
                   "needs root, sshd and tcpreplay (scripts/lib.sh installs them)"))
    func aClusterOnThreeHostsOverSSH() throws {
        let hosts = try SSHHosts()
        let prefix = try TemporaryDirectory()
        for directory in ["etc", "bin"] { try FileManager.default.createDirectory(atPath: prefix.file(directory), withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: prefix.file("bin/trawl"), withDestinationPath: Paths.trawl)
        let (a, b, c) = (hosts.addresses[0], hosts.addresses[1], hosts.addresses[2])
        try """
        [manager]
        type=manager
        host=\(a)

        [logger-1]
        type=logger
        host=\(a)

        [proxy-1]
        type=proxy
        host=\(b)

        [worker-b]
        type=worker
        host=\(b)
        interface=cap0
        lb_method=af_packet
        lb_procs=2

        [worker-c]
        type=worker
        host=\(c)
        interface=cap0
        lb_method=af_packet
        lb_procs=2
        """.write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        try "ZeekPort = 29500\nMetricsPort = 29600\nStopTimeout = 20\nLogRotationInterval = 0\n"
            .write(toFile: prefix.file("etc/trawlctl.cfg"), atomically: true, encoding: .utf8)
        let environment = ["TRAWLCTL_SSH_OPTIONS": hosts.sshOptions]
        func trawlctl(_ arguments: String...) throws -> ProcessResult {
            try runProcess(Paths.trawlctl, ["--prefix", prefix.path] + arguments, environment: environment)
        }
        defer { _ = try? trawlctl("stop") }
        func states() throws -> [String: String] {
            let json = try trawlctl("status", "--json").stdout
            let items = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
            return Dictionary(uniqueKeysWithValues: items.map { ($0["name"] as! String, $0["status"] as! String) })
        }

        // pin_cpus on a CPU host c lacks: said with its line, found over ssh, nothing done.
        let config = try String(contentsOfFile: prefix.file("etc/node.cfg"), encoding: .utf8)
        try (config + "\npin_cpus=1000\n").write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        let pinned = try trawlctl("check")
        #expect(pinned.status == 1 && pinned.stderr.contains("node.cfg:20: [worker-c] pin_cpus: \(c) has no CPU 1000"), "STDERR: \(pinned.stderr)")
        try config.write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)

        let deploy = try trawlctl("deploy")
        #expect(deploy.status == 0, "\(deploy.stdout)\n\(deploy.stderr)")
        #expect(deploy.stdout.contains("installed on \(b)") && deploy.stdout.contains("installed on \(c)"), "\(deploy.stdout)")
        let layout = try ClusterLayout.load(path: prefix.file("spool/cluster.json"))
        #expect(layout.keyDirectory != nil) // across hosts: CURVE
        let all = ["manager", "logger-1", "proxy-1", "worker-b-1", "worker-b-2", "worker-c-1", "worker-c-2"]
        #expect(try states() == Dictionary(uniqueKeysWithValues: all.map { ($0, "running") }))

        // A worker killed with SIGKILL: crashed; cron keeps its report and restarts it.
        let pid = try String(contentsOfFile: prefix.file("spool/worker-c-2/.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        kill(pid_t(pid)!, SIGKILL)
        usleep(300_000)
        #expect(try states()["worker-c-2"] == "crashed")
        let cron = try trawlctl("cron")
        #expect(cron.status == 0 && cron.stdout.contains("worker-c-2 crashed") && cron.stdout.contains("restarting"), "\(cron.stdout)\(cron.stderr)")
        #expect(try states()["worker-c-2"] == "running")
        let reports = try FileManager.default.contentsOfDirectory(atPath: prefix.file("spool/crash"))
        #expect(reports.contains { $0.hasPrefix("worker-c-2-") }, "\(reports)")
        usleep(1_000_000) // the restarted worker joins its fanout group

        // Traffic for each capturing host, as the frontend would send it.
        let traceB = prefix.file("b.pcap"), traceC = prefix.file("c.pcap")
        try writeClusterTrace(at: traceB, flows: 200, seed: 11)
        try writeClusterTrace(at: traceC, flows: 200, seed: 12)
        for (trace, feed) in [(traceB, hosts.feeds[1]!), (traceC, hosts.feeds[2]!)] {
            let replay = try runProcess("/usr/bin/tcpreplay", ["-q", "--pps=5000", "-i", feed, trace])
            #expect(replay.status == 0, "\(replay.stderr)")
        }
        usleep(1_500_000)
        // netstats: the four workers' counters, through the manager on host a; between them
        // they received every replayed packet.
        let netstats = try trawlctl("netstats").stdout.split(separator: "\n")
        #expect(netstats.count == 4 && netstats.allSatisfy { $0.contains(" recvd=") && $0.contains(" dropped=0") }, "\(netstats)")
        let received = netstats.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("recvd=") }.flatMap { Int($0.dropFirst(6)) } }
        let replayed = try [traceB, traceC].map { try runProcess(Paths.trawl, ["-r", $0, "--no-analysis"]).stdout }
            .compactMap { summaryFields($0)["packets"].flatMap { Int($0) } }.reduce(0, +)
        #expect(received.reduce(0, +) >= replayed, "received \(received), replayed \(replayed)")
        // capstats: the capture interface of each worker host, measured there.
        let capstats = try trawlctl("capstats", "1").stdout
        #expect(capstats.contains("\(b) cap0") && capstats.contains("\(c) cap0"), "\(capstats)")
        let stop = try trawlctl("stop")
        #expect(stop.status == 0, "\(stop.stdout)\(stop.stderr)")
        #expect(Set(try states().values) == ["stopped"])

        // Every replayed flow once: the flows of trawl -r on each trace, by their 5-tuple.
        func flows(_ path: String) throws -> [String] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }.map { row in
                let f = row.split(separator: "\t", omittingEmptySubsequences: false)
                return [f[2], f[3], f[4], f[5], f[6]].joined(separator: " ")
            }.sorted()
        }
        var expected: [String] = []
        for trace in [traceB, traceC] {
            let single = try TemporaryDirectory()
            #expect(try runProcess(Paths.trawl, ["-r", trace, "--logdir", single.path]).status == 0)
            expected += try flows(single.file("conn.log"))
        }
        let logged = try flows(prefix.file("spool/logger-1/conn.log"))
        let missing = expected.filter { !logged.contains($0) }, extra = logged.filter { !expected.contains($0) }
        #expect(logged == expected.sorted(), "logged \(logged.count), replayed \(expected.count); missing \(missing.prefix(8)); extra \(extra.prefix(8))")
        let clusterLog = try String(contentsOfFile: prefix.file("spool/logger-1/cluster.log"), encoding: .utf8)
        #expect(clusterLog.contains("got hello from worker-c-2"), "\(clusterLog)")
    }
}
