import Foundation
import Testing
import TrawlCluster
@testable import TrawlControl

/// Host names for the tests: a few known names, everything else unknown; 4 CPUs on "a".
private let testMachine = NodeConfig.Environment(
    resolve: { ["a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3", "localhost": "127.0.0.1", "127.0.0.1": "127.0.0.1"][$0] },
    cpuCount: { $0 == "a" ? 4 : nil })

private func nodes(_ text: String, settings: ControlSettings = ControlSettings(prefix: "/opt/trawl")) throws(ConfigProblems) -> NodeConfig {
    try NodeConfig(parsing: text, file: "node.cfg", settings: settings, environment: testMachine)
}

/// The problems `text` has, as "LINE: message" strings.
private func problems(_ text: String) -> [String] {
    do {
        _ = try nodes(text)
        return []
    } catch {
        return error.problems.map { "\($0.line): \($0.message)" }
    }
}

private let cluster = """
[manager]
type=manager
host=a

[logger-1]
type = logger
host = a

[proxy-1]
type=proxy
host=b

"""

@Suite struct ControlConfigTests {
    @Test func aZeekNodeCfgIsReadAsZeekctlReadsIt() throws {
        let config = try nodes(cluster + """
        # workers on two hosts
        [worker-1]
        type=worker
        host=b
        interface=eth0
        lb_method=af_packet
        lb_procs=3
        pin_cpus=2,3
        af_packet_fanout_mode=AF_Packet::FANOUT_LB
        af_packet_buffer_size=134217728
        env_vars=LD_PRELOAD=x.so, TZ=UTC

        [worker-2]
        TYPE=Worker
        host=c
        interface=eth1
        """)
        #expect(config.nodes.map(\.name) == ["manager", "logger-1", "proxy-1", "worker-1-1", "worker-1-2", "worker-1-3", "worker-2"])
        let first = config.nodes[3]
        #expect(first.type == .worker && first.host == "b" && first.address == "10.0.0.2")
        #expect(first.interface == "af_packet::eth0")
        #expect(first.options == ["AF_Packet::buffer_size=134217728", "AF_Packet::fanout_mode=lb", "AF_Packet::fanout_id=23"])
        #expect(first.environment == ["LD_PRELOAD=x.so", "TZ=UTC"])
        // pin_cpus cycles over the processes when it is shorter, as zeekctl's.
        #expect(config.nodes[3...5].map(\.pinCPU) == [2, 3, 2])
        #expect(config.nodes[6].interface == "eth1" && config.nodes[6].options.isEmpty)
        #expect(config.warnings.isEmpty)
    }

    @Test func zeekOnlyAndUnknownKeysAreWarningsWithTheirLine() throws {
        let config = try nodes(cluster + """
        [worker-1]
        type=worker
        host=b
        interface=eth0
        aux_scripts=site/worker.zeek
        colour=blue
        """)
        #expect(config.warnings.map(\.description) == [
            "node.cfg:16: [worker-1] aux_scripts: means nothing to Trawl (Zeek scripts and tags); ignored",
            "node.cfg:17: [worker-1] unknown key 'colour'; ignored",
        ])
    }

    @Test func everyProblemIsSaidWithItsLine() {
        #expect(problems("[m]\ntype=manager\nhost=a\n[x]\ntype=wroker\nhost=a\n")
                == ["5: [x] unknown type 'wroker' (manager, logger, proxy, worker or standalone)"])
        #expect(problems("[m]\ntype=manager\nhost=a\n[m2]\ntype=manager\nhost=b\n")
                == ["4: [m2] a second manager (the first is [m] at line 1)"])
        #expect(problems("[w]\ntype=worker\nhost=a\ninterface=eth0\n") == ["0: no manager (a cluster needs one node of type manager)"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=b\n") == ["12: [w] a worker needs an interface"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=b\ninterface=eth0\nlb_method=af_packet\nlb_procs=many\n")
                == ["17: [w] lb_procs: 'many' is not a number of processes (1 or more)"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=a\ninterface=eth0\npin_cpus=3,4\n")
                == ["16: [w] pin_cpus: a has no CPU 4 (it has 4: 0-3)"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=nowhere.invalid\ninterface=eth0\n")
                == ["14: [w] host 'nowhere.invalid' does not resolve"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=b\ninterface=eth0\nlb_method=myricom\nlb_procs=2\n")
                == ["16: [w] lb_method=myricom: Trawl has no Myricom source (af_packet, pf_ring, netmap, interfaces or custom)"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=b\ninterface=eth0\nlb_procs=2\n")
                == ["16: [w] lb_procs without lb_method (af_packet, pf_ring, netmap, interfaces or custom)"])
        #expect(problems(cluster + "[w]\ntype=worker\nhost=b\ninterface=eth0\n[w]\ntype=worker\nhost=c\ninterface=eth0\n")
                == ["16: section [w] again (first at line 12)"])
        #expect(problems("[m]\ntype=manager\nhost\n") == ["3: expected 'key = value' or a [section], not 'host'"])
        #expect(problems("type=manager\n") == ["1: 'type' comes before any [section]"])
        #expect(problems("") == ["0: no nodes"])
        // All of them at once, not only the first.
        #expect(problems("[m]\ntype=manager\nhost=a\n[x]\ntype=wroker\nhost=a\n[y]\ntype=worker\nhost=b\n").count == 2)
    }

    @Test func fanoutIdsAreOnePerInterfaceAndHost() throws {
        // Given the same id for two interfaces of one host: the kernel would refuse the second.
        let clash = problems(cluster + """
        [w1]
        type=worker
        host=b
        interface=eth0
        lb_method=af_packet
        lb_procs=2
        af_packet_fanout_id=30

        [w2]
        type=worker
        host=b
        interface=eth1
        lb_method=af_packet
        lb_procs=2
        af_packet_fanout_id=30
        """)
        #expect(clash == ["20: [w2] AF_Packet fanout id 30 on af_packet::eth1 is already [w1]'s on af_packet::eth0 at b (line 12): one id per interface and host"])
        // Not given: each interface of a host gets its own, an interface on another host may reuse it.
        let config = try nodes(cluster + """
        [w1]
        type=worker
        host=b
        interface=eth0
        lb_method=af_packet
        lb_procs=2
        af_packet_fanout_id=23

        [w2]
        type=worker
        host=b
        interface=eth1
        lb_method=af_packet
        lb_procs=2

        [w3]
        type=worker
        host=c
        interface=eth1
        lb_method=af_packet
        lb_procs=1
        """)
        let ids = config.nodes.filter { $0.type == .worker }.map { $0.options.first { $0.hasPrefix("AF_Packet::fanout_id=") } ?? "-" }
        #expect(ids == ["AF_Packet::fanout_id=23", "AF_Packet::fanout_id=23", "AF_Packet::fanout_id=24", "AF_Packet::fanout_id=24",
                        "AF_Packet::fanout_id=23"])
    }

    @Test func theOtherLoadBalancingMethods() throws {
        let config = try nodes(cluster + """
        [pf]
        type=worker
        host=b
        interface=eth0
        lb_method=pf_ring
        lb_procs=2

        [nm]
        type=worker
        host=b
        interface=eth2
        lb_method=netmap
        lb_procs=2

        [ifs]
        type=worker
        host=c
        lb_method=interfaces
        lb_procs=2
        lb_interfaces=eth3,eth4

        [cu]
        type=worker
        host=c
        interface=af_packet::eth5
        lb_method=custom
        lb_procs=2
        """)
        let workers = config.nodes.filter { $0.type == .worker }
        #expect(workers.map { $0.interface ?? "-" } == ["pf_ring::eth0", "pf_ring::eth0", "netmap::eth2}0", "netmap::eth2}1",
                                                         "eth3", "eth4", "af_packet::eth5", "af_packet::eth5"])
        #expect(workers[0].options == ["PF_Ring::cluster_id=21", "PF_Ring::cluster_type=4_tuple"])
        #expect(problems(cluster + "[ifs]\ntype=worker\nhost=c\nlb_method=interfaces\nlb_procs=3\nlb_interfaces=eth3,eth4\n")
                == ["17: [ifs] lb_interfaces names 2 interfaces for lb_procs=3"])
    }

    @Test func configparserDetailsAsZeekctlHasThem() throws {
        // Comments with # or ;, key: value, keys in any case, [DEFAULT], continuation lines.
        let config = try nodes("""
        [DEFAULT]
        host = a
        ; a comment
        [manager]
        Type: manager
        [w]
        type = worker
        interface = eth0
        env_vars = A=1,
          B=2
        """)
        #expect(config.nodes.map(\.host) == ["a", "a"])
        #expect(config.nodes[1].environment == ["A=1", "B=2"])
    }

    @Test func settingsReadAsZeekctlCfgWithZeeksDefaults() throws {
        let defaults = ControlSettings(prefix: "/opt/trawl")
        #expect(defaults.clusterPort == 27760 && defaults.metricsPort == 9991 && defaults.stopTimeout == 60)
        #expect(defaults.logDir == "/opt/trawl/logs" && defaults.spoolDir == "/opt/trawl/spool" && defaults.logRotationInterval == 3600)
        let settings = try ControlSettings(parsing: """
        # zeekctl.cfg
        MailTo = root@localhost
        SpoolDir = /var/spool/trawl
        LogDir = ${SpoolDir}/../logs
        LogExpireInterval = 30 day
        StopTimeout = 10
        ZeekPort = 47760
        Env_Vars = TZ=UTC
        Frobnicate = 1
        """, file: "zeekctl.cfg", prefix: "/opt/trawl")
        #expect(settings.spoolDir == "/var/spool/trawl" && settings.tmpDir == "/var/spool/trawl/tmp")
        #expect(settings.logDir == "/var/spool/trawl/../logs")
        #expect(settings.logExpireDays == 30 && settings.stopTimeout == 10 && settings.clusterPort == 47760)
        #expect(settings.environment == ["TZ=UTC"])
        #expect(settings.warnings.map(\.description) == ["zeekctl.cfg:2: 'mailto' means nothing to Trawl (a setting of Zeek's); ignored",
                                                         "zeekctl.cfg:9: unknown setting 'frobnicate'; ignored"])
        #expect(throws: ConfigProblems.self) { try ControlSettings(parsing: "StopTimeout = soon\n", file: "x", prefix: "/p") }
        #expect(throws: ConfigProblems.self) { try ControlSettings(parsing: "LogDir\n", file: "x", prefix: "/p") }
    }

    @Test func networksCfg() throws {
        let networks = try NetworksConfig(parsing: """
        # List of local networks
        10.0.0.0/8          Private IP space
        2001:db8::/32
        192.168.0.0/16      # commented
        """, file: "networks.cfg").networks
        #expect(networks.map(\.cidr) == ["10.0.0.0/8", "2001:db8::/32", "192.168.0.0/16"])
        #expect(networks[0].tag == "Private IP space" && networks[1].tag == nil)
        do {
            _ = try NetworksConfig(parsing: "10.0.0.0/8\n10.0.0.300/8 oops\n", file: "networks.cfg")
            Issue.record("a bad network was taken")
        } catch {
            #expect(error.description == "networks.cfg:2: '10.0.0.300/8' is not a network (CIDR such as 10.0.0.0/8 or 2001:db8::/32)")
        }
    }

    @Test func thePlanMakesALayoutTheNodesTake() throws {
        let config = try nodes(cluster + "[w]\ntype=worker\nhost=b\ninterface=eth0\nlb_method=af_packet\nlb_procs=2\n")
        let networks = try NetworksConfig(parsing: "10.0.0.0/8\n", file: "networks.cfg").networks
        let plan = try ClusterPlan(settings: ControlSettings(prefix: "/opt/trawl"), nodes: config.nodes, networks: networks)
        #expect(plan.startOrder.map(\.name) == ["logger-1", "manager", "proxy-1", "w-1", "w-2"])
        #expect(plan.stopOrder.map(\.name) == ["w-1", "w-2", "proxy-1", "manager", "logger-1"])
        #expect(plan.encrypted) // two hosts, CurveEncryption auto
        let layout = try ClusterLayout.parse(plan.layoutJSON(), file: "cluster.json")
        #expect(layout.manager.port == 27760 && layout.manager.host == "10.0.0.1")
        let logger = try #require(layout.nodes.first { $0.name == "logger-1" })
        #expect(logger.port == 27762 && logger.logDirectory == "/opt/trawl/spool/logger-1" && logger.archiveDirectory == "/opt/trawl/logs")
        let worker = try #require(layout.nodes.first { $0.name == "w-2" })
        #expect(worker.interfaces == ["af_packet::eth0"] && worker.options == ["AF_Packet::fanout_id=23"])
        #expect(layout.keyDirectory == "/opt/trawl/spool/keys")
        // A metrics port on a cluster port of the same host is a clash, said with its line.
        var settings = ControlSettings(prefix: "/opt/trawl")
        settings.metricsPort = 27761
        do {
            _ = try ClusterPlan(settings: settings, nodes: config.nodes, networks: [])
            Issue.record("a port clash was taken")
        } catch {
            #expect(error.problems.first?.description == "node.cfg:1: [manager] manager's metrics port 27761 on a is already manager (cluster)'s")
        }
    }
}

@Suite(.serialized) struct TrawlctlCommandTests {
    @Test func checkNodesAndInstallOnAZeekConfigDirectory() throws {
        let prefix = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: prefix.file("etc"), withIntermediateDirectories: true)
        try (cluster.replacingOccurrences(of: "host=a", with: "host=localhost").replacingOccurrences(of: "host = a", with: "host = localhost")
             .replacingOccurrences(of: "host=b", with: "host=127.0.0.1")
             + "[worker-1]\ntype=worker\nhost=localhost\ninterface=lo\nlb_method=af_packet\nlb_procs=2\naux_scripts=x.zeek\n")
            .write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        try "MailTo = me\n".write(toFile: prefix.file("etc/zeekctl.cfg"), atomically: true, encoding: .utf8)
        let check = try runProcess(Paths.trawlctl, ["--prefix", prefix.path, "check"])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.contains("configuration ok: 5 nodes (1 manager, 1 logger, 1 proxy, 2 workers) on 1 host"), "\(check.stdout)")
        #expect(check.stderr.contains("zeekctl.cfg:1: 'mailto' means nothing to Trawl"))
        #expect(check.stderr.contains("node.cfg:18: [worker-1] aux_scripts: means nothing to Trawl"))
        let nodes = try runProcess(Paths.trawlctl, ["--prefix", prefix.path, "nodes", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [[String: Any]]
        #expect(parsed?.map { $0["name"] as? String } == ["manager", "logger-1", "proxy-1", "worker-1-1", "worker-1-2"])
        let install = try runProcess(Paths.trawlctl, ["--prefix", prefix.path, "install"])
        #expect(install.status == 0, "\(install.stderr)")
        let layout = try ClusterLayout.load(path: prefix.file("spool/cluster.json"))
        #expect(layout.nodes.count == 5 && layout.keyDirectory == nil) // one host: no keys needed
        // A broken node.cfg: every error with its line, a non-zero exit, nothing touched.
        try "[manager]\ntype=manager\nhost=localhost\n[w]\ntype=worker\nhost=localhost\n[x]\ntype=wroker\nhost=localhost\n"
            .write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        let before = try String(contentsOfFile: prefix.file("spool/cluster.json"), encoding: .utf8)
        let broken = try runProcess(Paths.trawlctl, ["--prefix", prefix.path, "install"])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("error: \(prefix.file("etc/node.cfg")):4: [w] a worker needs an interface"), "\(broken.stderr)")
        #expect(broken.stderr.contains("error: \(prefix.file("etc/node.cfg")):8: [x] unknown type 'wroker'"))
        #expect(broken.stderr.contains("has 2 errors; nothing was done"))
        #expect(try String(contentsOfFile: prefix.file("spool/cluster.json"), encoding: .utf8) == before)
    }

    /// `process TRACE`: a cluster on this machine with node.cfg's workers writes the same
    /// rows as `trawl -r` into the current directory.
    @Test func processATraceThroughTheConfiguredWorkers() throws {
        let prefix = try TemporaryDirectory()
        for directory in ["etc", "bin", "out"] { try FileManager.default.createDirectory(atPath: prefix.file(directory), withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: prefix.file("bin/trawl"), withDestinationPath: Paths.trawl)
        try (cluster + "[w]\ntype=worker\nhost=127.0.0.1\ninterface=eth0\nlb_method=af_packet\nlb_procs=3\n")
            .replacingOccurrences(of: "host=a", with: "host=127.0.0.1").replacingOccurrences(of: "host = a", with: "host = 127.0.0.1")
            .replacingOccurrences(of: "host=b", with: "host=127.0.0.1")
            .write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        let trace = prefix.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 1000)
        let result = try runProcess(Paths.trawlctl, ["--prefix", prefix.path, "process", trace], directory: prefix.file("out"))
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("with 3 workers and 1 proxy"), "\(result.stdout)")
        let single = try TemporaryDirectory()
        #expect(try runProcess(Paths.trawl, ["-r", trace, "--logdir", single.path]).status == 0)
        expectSameRows(try connRows(prefix.file("out/conn.log")).rows, try connRows(single.file("conn.log")).rows)
        #expect(FileManager.default.fileExists(atPath: prefix.file("out/known_hosts.log")))
        // No trace: said, and a non-zero exit.
        let missing = try runProcess(Paths.trawlctl, ["--prefix", prefix.path, "process", prefix.file("nope.pcap")])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read \(prefix.file("nope.pcap"))"), "\(missing.stderr)")
    }

    /// A one-host cluster run by trawlctl: deploy, status, a worker killed shows as crashed,
    /// stop (loggers last), and the flows sent while it ran are in the logger's conn.log.
    @Test func aWorkerThatCannotCaptureIsExplainedByItsExitStatus() throws {
        let prefix = try TemporaryDirectory()
        for directory in ["etc", "bin"] { try FileManager.default.createDirectory(atPath: prefix.file(directory), withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: prefix.file("bin/trawl"), withDestinationPath: Paths.trawl)
        try "[manager]\ntype=manager\nhost=localhost\n[worker-1]\ntype=worker\nhost=localhost\ninterface=af_packet::trawl-nope0\n"
            .write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        try "ZeekPort = 29700\nMetricsPort = 0\nStopTimeout = 5\n".write(toFile: prefix.file("etc/trawlctl.cfg"), atomically: true, encoding: .utf8)
        func trawlctl(_ arguments: String...) throws -> ProcessResult {
            try runProcess(Paths.trawlctl, ["--prefix", prefix.path] + arguments)
        }
        defer { _ = try? trawlctl("stop") }
        #expect(try trawlctl("install").status == 0)
        let start = try trawlctl("start")
        #expect(start.status == 1)
        // trawl's exit status (66: no such input) is said in words, then the end of its stderr.
        #expect(start.stdout.contains("worker-1 did not start (its interface or trace file is not there):"), "\(start.stdout)")
        #expect(start.stdout.contains("problem with interface af_packet::trawl-nope0 (No such device)"), "\(start.stdout)")
        #expect(start.stdout.contains("hint: the interfaces of this host are "), "\(start.stdout)")
    }

    @Test(.enabled(if: isRoot, "the workers capture on lo, which needs root"))
    func deployStatusStopOnOneHost() throws {
        let prefix = try TemporaryDirectory()
        for directory in ["etc", "bin"] { try FileManager.default.createDirectory(atPath: prefix.file(directory), withIntermediateDirectories: true) }
        try FileManager.default.createSymbolicLink(atPath: prefix.file("bin/trawl"), withDestinationPath: Paths.trawl)
        try """
        [logger-1]
        type=logger
        host=localhost
        [manager]
        type=manager
        host=localhost
        [proxy-1]
        type=proxy
        host=localhost
        [worker-1]
        type=worker
        host=localhost
        interface=lo
        lb_method=af_packet
        lb_procs=2
        af_packet_fanout_id=77
        """.write(toFile: prefix.file("etc/node.cfg"), atomically: true, encoding: .utf8)
        try "ZeekPort = 29300\nMetricsPort = 29400\nStopTimeout = 5\nLogRotationInterval = 0\n"
            .write(toFile: prefix.file("etc/trawlctl.cfg"), atomically: true, encoding: .utf8)
        func trawlctl(_ arguments: String...) throws -> ProcessResult {
            try runProcess(Paths.trawlctl, ["--prefix", prefix.path] + arguments)
        }
        defer { _ = try? trawlctl("stop") }
        let deploy = try trawlctl("deploy")
        #expect(deploy.status == 0, "\(deploy.stdout)\(deploy.stderr)")
        func states() throws -> [String: String] {
            let json = try trawlctl("status", "--json").stdout
            let items = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
            return Dictionary(uniqueKeysWithValues: items.map { ($0["name"] as! String, $0["status"] as! String) })
        }
        #expect(try states() == ["logger-1": "running", "manager": "running", "proxy-1": "running", "worker-1-1": "running",
                                 "worker-1-2": "running"])
        let text = try trawlctl("status").stdout
        #expect(text.hasPrefix("Name"), "\(text)")
        #expect(text.contains("Type") && text.contains("Status") && text.contains("Pid") && text.contains("Started"))
        // top: each running node with its pid and memory; df; exec on every host; the shell.
        let top = try trawlctl("top").stdout
        for name in ["logger-1", "manager", "proxy-1", "worker-1-1", "worker-1-2"] {
            #expect(top.split(separator: "\n").contains { $0.hasPrefix(name + " ") && $0.contains("%") }, "\(top)")
        }
        #expect(try trawlctl("df").stdout.contains(prefix.file("spool")))
        #expect(try trawlctl("exec", "echo", "hello").stdout == "localhost: hello\n")
        let shell = try runProcess(Paths.trawlctl, ["--prefix", prefix.path], input: Data("nodes\n\nstatus worker-1-1\nexit\n".utf8))
        #expect(shell.stdout.contains("Metrics"), "\(shell.stdout)")
        #expect(shell.stdout.split(separator: "\n").contains { $0.hasPrefix("worker-1-1 ") && $0.contains(" running ") }, "\(shell.stdout)")
        // systemd: a unit per node of this host, with its command line.
        #expect(try trawlctl("systemd", prefix.file("units")).status == 0)
        let unit = try String(contentsOfFile: prefix.file("units/trawl-worker-1-1.service"), encoding: .utf8)
        #expect(unit.contains("\"--node\" \"worker-1-1\"") && unit.contains("After=network-online.target trawl-logger-1.service trawl-manager.service"), "\(unit)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: prefix.file("units")).count == 5)
        // Prometheus metrics: each node on MetricsPort + its place; trawlctl metrics says where.
        let targets = try JSONSerialization.jsonObject(with: Data(try trawlctl("metrics", "--json").stdout.utf8)) as? [[String: Any]] ?? []
        #expect(targets.count == 5 && (targets[3]["targets"] as? [String]) == ["127.0.0.1:29403"], "\(targets)")
        let scraped = try httpGet(port: 29403, path: "/metrics")
        #expect(scraped.hasPrefix("HTTP/1.1 200 OK"), "\(scraped)")
        #expect(scraped.contains("trawl_packets_total{node=\"worker-1-1\",role=\"worker\"}") && scraped.contains("trawl_up{"), "\(scraped)")
        #expect(scraped.contains("# TYPE trawl_active_udp_conns gauge") && scraped.contains("trawl_records_sent_total"))
        #expect(try httpGet(port: 29400, path: "/metrics").contains("trawl_mem_bytes{node=\"logger-1\",role=\"logger\"}"))
        #expect(try httpGet(port: 29403, path: "/other").hasPrefix("HTTP/1.1 404"))
        // Flows on lo while it runs: the workers share them (one fanout group).
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(socket) }
        for port in 41_000..<41_020 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, "trawl", 5, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        usleep(1_500_000) // a heartbeat interval and more: the capture counters reach the manager
        // netstats: each worker's counters, through the manager, as zeekctl prints them.
        let netstats = try trawlctl("netstats").stdout.split(separator: "\n")
        #expect(netstats.count == 2 && netstats.allSatisfy { $0.contains(" recvd=") && $0.contains(" dropped=") && $0.contains(" link=") },
                "\(netstats)")
        let counted = try JSONSerialization.jsonObject(with: Data(try trawlctl("netstats", "--json").stdout.utf8)) as? [[String: Any]] ?? []
        #expect(counted.count == 2 && counted.reduce(0) { $0 + (($1["recvd"] as? Int) ?? 0) } >= 20, "\(counted)")
        // A worker killed: crashed, as zeekctl says of a node meant to run that is gone.
        let pid = try String(contentsOfFile: prefix.file("spool/worker-1-2/.pid"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        kill(pid_t(pid)!, SIGKILL)
        usleep(200_000)
        #expect(try states()["worker-1-2"] == "crashed")
        // cron restarts it and appends every node's state and use to SpoolDir/stats.log.
        let cron = try trawlctl("cron")
        #expect(cron.stdout.contains("worker-1-2 crashed") && cron.stdout.contains("restarting"), "\(cron.stdout)")
        let stats = try String(contentsOfFile: prefix.file("spool/stats.log"), encoding: .utf8).split(separator: "\n")
        #expect(stats.count == 5 && stats.allSatisfy { $0.contains(" running pid=") && $0.contains(" rss=") }, "\(stats)")
        // restart --clean: its directory made afresh (the old stderr.log gone), then started.
        try "old".write(toFile: prefix.file("spool/worker-1-2/old-file"), atomically: true, encoding: .utf8)
        let clean = try trawlctl("restart", "--clean", "worker-1-2")
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(!FileManager.default.fileExists(atPath: prefix.file("spool/worker-1-2/old-file")))
        #expect(try states()["worker-1-2"] == "running")
        let stop = try trawlctl("stop")
        #expect(stop.status == 0, "\(stop.stdout)\(stop.stderr)")
        // Workers first, the logger last.
        let order = stop.stdout.split(separator: "\n").filter { $0.hasPrefix("stopping ") }.map { String($0.dropFirst(9).dropLast(4)) }
        #expect(order == ["worker-1-1", "worker-1-2", "proxy-1", "manager", "logger-1"])
        #expect(Set(try states().values) == ["stopped"])
        #expect(try trawlctl("cleanup", "worker-1-2").stdout == "cleaned worker-1-2\n")
        #expect(!FileManager.default.fileExists(atPath: prefix.file("spool/worker-1-2")))
        let conn = try String(contentsOfFile: prefix.file("spool/logger-1/conn.log"), encoding: .utf8)
        let ports = Set(conn.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { row -> Int? in
            let fields = row.split(separator: "\t")
            return fields.count > 6 && fields[6] == "udp" ? Int(fields[5]) : nil
        }).intersection(41_000..<41_020)
        // worker-1-2 was killed: its share of the flows may be lost with it, not the rest's
        // (besides them, conn.log has the cluster's own connections on lo).
        #expect(ports.count >= 5, "\(ports.sorted())")
    }
}

/// GET `path` from 127.0.0.1:`port`; the whole response.
func httpGet(port: UInt16, path: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(port.bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("cannot connect to 127.0.0.1:\(port)") }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { break }
        response += buffer[0..<n]
    }
    return String(decoding: response, as: UTF8.self)
}

