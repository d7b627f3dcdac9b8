import Foundation
import Testing
import TrawlAnalysis
import TrawlCluster
import TrawlCore
import TrawlSynth

/// A `trawl` node of a test cluster, run in the cluster's directory (a BackgroundTrawl
/// with the node's name); killed if the test ends while it runs.
final class NodeProcess: @unchecked Sendable {
    let name: String
    private let trawl: BackgroundTrawl

    /// Runs node `name` in `directory`, in network namespace `namespace` when given (a "host").
    init(_ name: String, directory: String, arguments: [String], namespace: String? = nil) throws {
        self.name = name
        trawl = try BackgroundTrawl(namespace: namespace, arguments: ["--cluster-layout", "layout.json", "--node", name] + arguments,
                                    workingDirectory: directory)
    }

    var stderr: String { trawl.stderr }
    var pid: Int32 { trawl.process.processIdentifier }
    func waitFor(_ text: String, seconds: Double = 10) -> Bool { trawl.wait(for: text, seconds: seconds) }
    /// Waits for the process to end by itself, at most `seconds`; then its status and stdout.
    func finish(seconds: Double = 60) -> (status: Int32, stdout: String) { trawl.finish(seconds: seconds) }
    func stop(signal: Int32 = SIGTERM) -> (status: Int32, stdout: String) { trawl.stop(signal: signal, seconds: 20) }

    deinit { if trawl.process.isRunning { kill(pid, SIGKILL) } }
}

/// A cluster on loopback in a directory of its own, on ports no other test uses.
final class TestCluster {
    let directory: TemporaryDirectory
    let basePort: UInt16
    private(set) var nodes: [String: NodeProcess] = [:]

    /// `extra` adds settings to the layout (JSON members, without braces).
    init(basePort: UInt16, workers: Int, loggers: Int = 1, proxies: Int = 0, extra: String = "\"rotation_interval\": 0",
         loggerFields: String = "") throws {
        directory = try TemporaryDirectory()
        self.basePort = basePort
        var members = ["\"manager\": {\"role\": \"manager\", \"host\": \"127.0.0.1\", \"port\": \(basePort)}"]
        for index in 1...max(loggers, 1) where loggers > 0 {
            members.append("\"logger-\(index)\": {\"role\": \"logger\", \"host\": \"127.0.0.1\", \"port\": \(basePort + 1 + UInt16(index))\(loggerFields)}")
        }
        for index in 0..<proxies { members.append("\"proxy-\(index + 1)\": {\"role\": \"proxy\", \"host\": \"127.0.0.1\"}") }
        for index in 1...workers { members.append("\"worker-\(index)\": {\"role\": \"worker\", \"host\": \"127.0.0.1\"}") }
        let layout = "{\n  \"nodes\": {\n    " + members.joined(separator: ",\n    ") + "\n  }" + (extra.isEmpty ? "" : ",\n  " + extra) + "\n}\n"
        try layout.write(toFile: directory.file("layout.json"), atomically: true, encoding: .utf8)
    }

    @discardableResult
    func start(_ name: String, _ arguments: [String] = []) throws -> NodeProcess {
        let node = try NodeProcess(name, directory: directory.path, arguments: arguments)
        nodes[name] = node
        return node
    }

    /// A logger writing into `logs-NAME`, once it listens.
    @discardableResult
    func startLogger(_ name: String = "logger-1") throws -> NodeProcess {
        let logger = try start(name, ["--logdir", "logs-\(name)"])
        guard logger.waitFor("taking logs on") else { throw TestFailure("\(name) did not start: \(logger.stderr)") }
        return logger
    }

    /// The conn.log rows a logger wrote, uids aside, sorted; and the uids.
    func rows(logger: String = "logger-1") throws -> (rows: [String], uids: [String]) {
        try connRows(directory.file("logs-\(logger)/conn.log"))
    }
}

/// The rows of a conn.log without their uid, sorted, and the uids.
func connRows(_ path: String) throws -> (rows: [String], uids: [String]) {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var rows: [String] = [], uids: [String] = []
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        var fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        uids.append(fields[1])
        // Uids differ between runs, in tunnel_parents too: only how many parents counts.
        if fields.count > 20 { fields[20] = fields[20] == "-" ? "-" : "parents:\(fields[20].split(separator: ",").count)" }
        fields.remove(at: 1)
        rows.append(fields.joined(separator: "\t"))
    }
    return (rows.sorted(), uids)
}

/// Where two sorted row lists first differ, for a failure message that fits on a screen.
func difference(_ got: [String], _ expected: [String]) -> String {
    let missing = Set(expected).subtracting(got), extra = Set(got).subtracting(expected)
    return "\(got.count) rows, \(expected.count) expected; \(missing.count) missing (e.g. \(missing.first ?? "-")), "
        + "\(extra.count) unexpected (e.g. \(extra.first ?? "-"))"
}

/// Checks rows against the expected ones without printing thousands of them.
func expectSameRows(_ got: [String], _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    let same = got == expected
    #expect(same, "\(difference(got, expected))", sourceLocation: sourceLocation)
}

/// A trace with TCP and UDP conversations, ICMP echoes, and TCP carried in VXLAN, GRE and
/// IP-in-IP tunnels, for the cluster to split.
/// `gap` spreads the packets in time, so that connections end (and their records leave)
/// all along the run rather than at its end.
func writeClusterTrace(at path: String, flows: Int, seed: UInt64 = 5, gap: UInt64 = 10_000) throws {
    var synthesizer = TrafficSynthesizer(.init(flows: flows, maxPayload: 256, seed: seed, gapNanoseconds: gap))
    let writer = try TraceWriter(path: path, format: .pcapNanosecond, linkType: 1)
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: TrafficSynthesizer.maximumFrameLength, alignment: 8)
    defer { frame.deallocate() }
    var last: UInt64 = 0
    while let (length, timestamp) = synthesizer.next(into: frame) {
        try writer.write(timestampNanoseconds: timestamp, wireLength: length, bytes: UnsafeRawBufferPointer(rebasing: frame[..<length]))
        last = timestamp
    }
    var time = last
    func put(_ ip: [UInt8]) throws {
        time += 1_000_000
        let bytes = Craft.ethernet(Craft.etherType(ip), ip)
        try bytes.withUnsafeBytes { try writer.write(timestampNanoseconds: time, wireLength: bytes.count, bytes: $0) }
    }
    for index in 0..<40 {
        let host = Craft.address("192.168.7.\(index + 1)"), server = Craft.address("172.20.\(index).9")
        // ICMP echo and reply.
        try put(Craft.ipv4(host, server, proto: 1, Craft.icmpEcho(request: true)))
        try put(Craft.ipv4(server, host, proto: 1, Craft.icmpEcho(request: false)))
        // A TCP handshake inside a tunnel of each kind, between inner hosts of their own.
        let inner = Craft.address("10.99.\(index).1"), innerServer = Craft.address("10.98.\(index).2")
        func tunnelled(_ segment: [UInt8], reverse: Bool) -> [UInt8] {
            let (s, d) = reverse ? (innerServer, inner) : (inner, innerServer)
            let ip = Craft.ipv4(s, d, proto: 6, segment)
            let (os, od) = reverse ? (server, host) : (host, server)
            switch index % 3 {
            case 0: return Craft.ipv4(os, od, proto: 17, Craft.udp(40000 + UInt16(index), 4789, payload: Craft.vxlan(Craft.ethernet(0x0800, ip)), from: os, to: od))
            case 1: return Craft.ipv4(os, od, proto: 47, Craft.gre(0x0800, ip))
            default: return Craft.ipv4(os, od, proto: 4, ip)
            }
        }
        try put(tunnelled(Craft.tcp(5000, 80, flags: 0x02, seq: 100, from: inner, to: innerServer), reverse: false))
        try put(tunnelled(Craft.tcp(80, 5000, flags: 0x12, seq: 900, ack: 101, from: innerServer, to: inner), reverse: true))
        try put(tunnelled(Craft.tcp(5000, 80, flags: 0x10, seq: 101, ack: 901, from: inner, to: innerServer), reverse: false))
    }
    // SYNs with a bad checksum from a few hosts: a weird.log row each (once per originator).
    for index in 0..<6 {
        let host = Craft.address("192.168.9.\(index + 1)"), server = Craft.address("172.21.\(index).9")
        var segment = Craft.tcp(6000, 443, flags: 0x02, seq: 7, from: host, to: server)
        segment[16] ^= 0xff
        try put(Craft.ipv4(host, server, proto: 6, segment))
    }
    try writer.finish()
}

/// Clusters of real `trawl` processes on loopback: the merged logs equal a single process's,
/// and no record is lost or written twice when a logger dies or stalls.
@Suite(.serialized) struct ClusterTests {
    /// What `trawl -r` alone writes for the trace.
    static func singleRun(_ trace: String, in directory: TemporaryDirectory) throws -> (rows: [String], uids: [String]) {
        let single = directory.file("single")
        try FileManager.default.createDirectory(atPath: single, withIntermediateDirectories: true)
        let result = try runProcess(Paths.trawl, ["-r", trace, "--logdir", single])
        guard result.status == 0 else { throw TestFailure("trawl -r failed: \(result.stderr)") }
        return try connRows(single + "/conn.log")
    }

    @Test(arguments: [2, 3])
    func shardedWorkersWriteTheSameRowsAsOneProcess(workers: Int) throws {
        let cluster = try TestCluster(basePort: 28100 + UInt16(workers) * 10, workers: workers)
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 3000)
        let expected = try Self.singleRun(trace, in: cluster.directory)
        let logger = try cluster.startLogger()
        let runs = try (1...workers).map { index in
            try cluster.start("worker-\(index)", ["-r", trace, "Cluster::shard=\(index - 1)/\(workers)"])
        }
        for run in runs {
            let result = run.finish()
            #expect(result.status == 0, "\(run.name): \(run.stderr)")
            #expect(result.stdout.contains("0 dropped"), "\(result.stdout)")
        }
        let stopped = logger.stop()
        #expect(stopped.status == 0, "\(logger.stderr)")
        let merged = try cluster.rows()
        expectSameRows(merged.rows, expected.rows)
        #expect(Set(merged.uids).count == merged.uids.count, "uids are not unique")
        #expect(merged.uids.allSatisfy { $0.hasPrefix("C") && $0.count >= 2 && $0.count <= 12 })
        // The tunnels are in the merged log, with their parents.
        #expect(merged.rows.filter { $0.contains("10.99.") }.count == 40)
        let log = try String(contentsOfFile: cluster.directory.file("logs-logger-1/conn.log"), encoding: .utf8)
        #expect(log.hasPrefix("#separator") && log.contains("\n#close\t"))
        // weird.log too: the single run's rows (uids aside), each from the worker that saw it.
        func weirds(_ path: String) throws -> [[String]] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
                .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        }
        let single = try weirds(cluster.directory.file("single/weird.log"))
        let clustered = try weirds(cluster.directory.file("logs-logger-1/weird.log"))
        #expect(single.filter { $0[6] == "bad_TCP_checksum" }.count == 6)
        func withoutUidAndPeer(_ rows: [[String]]) -> [String] {
            rows.map { row in row.enumerated().filter { $0.offset != 1 && $0.offset != 9 }.map(\.element).joined(separator: " ") }.sorted()
        }
        #expect(withoutUidAndPeer(clustered) == withoutUidAndPeer(single))
        #expect(clustered.allSatisfy { $0[9].hasPrefix("worker-") } && single.allSatisfy { $0[9] == "zeek" })
    }

    /// The whole cluster: manager, logger, two proxies, workers. The manager logs who came
    /// and went (a worker killed with SIGKILL within the heartbeat bound), the workers'
    /// statistics become stats.log and capture_loss.log, and known_hosts.log has each local
    /// host that completed a handshake once, across the proxies.
    @Test(.enabled(if: isRoot, "the killed worker captures live on lo, which needs root"))
    func managerProxiesAndWorkersKeepTheirLogs() throws {
        let cluster = try TestCluster(basePort: 28700, workers: 3, proxies: 2,
                                      extra: "\"rotation_interval\": 0, \"stats_interval\": 0.5, \"heartbeat_interval\": 0.2, \"node_timeout\": 1")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 3000)
        let single = try Self.singleRun(trace, in: cluster.directory)
        let logger = try cluster.startLogger()
        let manager = try cluster.start("manager")
        #expect(manager.waitFor("forwarding events"), "\(manager.stderr)")
        let proxies = try (1...2).map { try cluster.start("proxy-\($0)") }
        for proxy in proxies { #expect(proxy.waitFor("serving as a proxy"), "\(proxy.stderr)") }
        // A live worker on the loopback interface, to be killed.
        let victim = try cluster.start("worker-3", ["-i", "lo", "-f", "udp port 9"])
        usleep(1_500_000) // every node heard from
        let clusterLog = cluster.directory.file("logs-logger-1/cluster.log")
        // A proxy killed (before the traffic: what a killed node has not yet had acknowledged
        // is lost with it) and started again at once: its restart is reported, with its new id.
        kill(proxies[1].pid, SIGKILL)
        _ = proxies[1].finish()
        let again = try cluster.start("proxy-2")
        var restartSeen = false
        let restartDeadline = Date().addingTimeInterval(10)
        while !restartSeen && Date() < restartDeadline {
            let text = (try? String(contentsOfFile: clusterLog, encoding: .utf8)) ?? ""
            restartSeen = text.components(separatedBy: "got hello from proxy-2 (").count == 3
            usleep(50_000)
        }
        #expect(restartSeen, "proxy-2's restart was not reported")
        let workers = try (1...2).map { try cluster.start("worker-\($0)", ["-r", trace, "Cluster::shard=\($0 - 1)/2"]) }
        for worker in workers { #expect(worker.finish().status == 0, "\(worker.stderr)") }
        let killedAt = Date()
        kill(victim.pid, SIGKILL)
        _ = victim.finish()
        var noticed: Date?
        while Date().timeIntervalSince(killedAt) < 10 {
            if let text = try? String(contentsOfFile: clusterLog, encoding: .utf8), text.contains("node down: worker-3 (no heartbeat") {
                noticed = Date()
                break
            }
            usleep(50_000)
        }
        let delay = noticed.map { $0.timeIntervalSince(killedAt) }
        #expect(delay != nil && delay! < 4, "worker-3's death noticed after \(delay.map { String($0) } ?? "never") s")
        for proxy in [proxies[0], again] { #expect(proxy.stop().status == 0, "\(proxy.stderr)") }
        #expect(manager.stop().status == 0, "\(manager.stderr)")
        #expect(logger.stop().status == 0, "\(logger.stderr)")

        let logs = cluster.directory.file("logs-logger-1/")
        let cluster_ = try String(contentsOfFile: clusterLog, encoding: .utf8)
        for name in ["logger-1", "proxy-1", "proxy-2", "worker-1", "worker-2", "worker-3"] {
            #expect(cluster_.contains("got hello from \(name) (trawl_\(name)_"), "no hello from \(name)")
        }
        #expect(cluster_.contains("node down: worker-1 (stopped)"))
        // stats.log: a row per worker per interval, with Zeek's fields.
        let stats = try String(contentsOfFile: logs + "stats.log", encoding: .utf8)
        #expect(stats.contains("#fields\tts\tpeer\tmem\tpkts_proc\tbytes_recv\tpkts_dropped"))
        let statsRows = stats.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: "\t") }
        #expect(Set(statsRows.map { String($0[1]) }).isSuperset(of: ["worker-1", "worker-2", "logger-1", "proxy-1"]),
                "\(Set(statsRows.map { String($0[1]) }))")
        let processed = statsRows.filter { $0[1] == "worker-1" }.reduce(0) { $0 + (Int($1[3]) ?? 0) }
        #expect(processed > 0)
        let loss = try String(contentsOfFile: logs + "capture_loss.log", encoding: .utf8)
        #expect(loss.contains("#fields\tts\tts_delta\tpeer\tgaps\tacks\tpercent_lost"))
        #expect(loss.split(separator: "\n").contains { $0.hasPrefix("1") && $0.contains("\tworker-") })
        // known_hosts.log: every local host of a completed handshake, once.
        let known = try String(contentsOfFile: logs + "known_hosts.log", encoding: .utf8)
        let hosts = known.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0.split(separator: "\t")[1]) }
        #expect(Set(hosts).count == hosts.count, "\(hosts.count - Set(hosts).count) hosts logged twice")
        var expected = Set<String>()
        for row in single.rows {
            let fields = row.split(separator: "\t", omittingEmptySubsequences: false)
            if fields[5] == "tcp" && fields[14].hasPrefix("ShA") { expected.insert(String(fields[1])); expected.insert(String(fields[3])) }
        }
        #expect(Set(hosts) == expected, "\(Set(hosts).symmetricDifference(expected).count) hosts differ of \(expected.count)")
        expectSameRows(try cluster.rows().rows, single.rows)
    }

    /// Zeek lost 70 037 of 100 000 rows this way: the logger killed 1.5 s in, restarted.
    @Test func aLoggerKilledAndRestartedLosesNothingAndWritesNothingTwice() throws {
        let cluster = try TestCluster(basePort: 28200, workers: 2, extra: "\"rotation_interval\": 0, \"batch_records\": 200")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 30000, gap: 1_000_000)
        let expected = try Self.singleRun(trace, in: cluster.directory)
        var logger = try cluster.startLogger()
        let workers = try (1...2).map { try cluster.start("worker-\($0)", ["-r", trace, "Cluster::shard=\($0 - 1)/2"]) }
        // Killed once it has written something, while batches are on their way.
        let log = cluster.directory.file("logs-logger-1/conn.log")
        let deadline = Date().addingTimeInterval(20)
        func logSize() -> Int { (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0 }
        while Date() < deadline, logSize() < 100_000 { usleep(5_000) }
        #expect(logSize() >= 100_000, "the first logger wrote nothing before it was killed")
        kill(logger.pid, SIGKILL)
        _ = logger.finish()
        usleep(1_000_000)
        logger = try cluster.startLogger()
        for worker in workers {
            let result = worker.finish()
            #expect(result.status == 0, "\(worker.name): \(worker.stderr)")
            #expect(result.stdout.contains(" 0 dropped"), "\(result.stdout)")
        }
        // Killed mid-run: the first logger wrote some, and the restarted one took the rest
        // (whether any batch was in flight at the kill, and so resent, depends on timing).
        let second = logger.stop()
        #expect(second.status == 0, "\(logger.stderr)")
        #expect(summaryNumber(second.stdout, before: " records in ") > 0, "the workers were done before the kill: \(second.stdout)")
        let merged = try cluster.rows()
        expectSameRows(merged.rows, expected.rows)
        #expect(Set(merged.uids).count == merged.uids.count, "a row was written twice")
    }

    /// Zeek lost 43 819 rows to a logger stopped for 10 s. Here the worker's memory bound
    /// sends the overflow to its spool, and everything arrives after SIGCONT.
    @Test func aStalledLoggerFillsTheSpoolNotMemoryAndGetsEverythingAfterwards() throws {
        let cluster = try TestCluster(basePort: 28300, workers: 1,
                                      extra: "\"rotation_interval\": 0, \"batch_records\": 100, \"memory_limit\": 65536")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 6000)
        let expected = try Self.singleRun(trace, in: cluster.directory)
        let logger = try cluster.startLogger()
        kill(logger.pid, SIGSTOP)
        let worker = try cluster.start("worker-1", ["-r", trace])
        let spool = cluster.directory.file("spool/worker-1")
        var spooled = 0
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline && spooled < 10 {
            spooled = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".batch") }.count
            usleep(100_000)
        }
        #expect(spooled >= 10, "the spool holds \(spooled) batches")
        kill(logger.pid, SIGCONT)
        let result = worker.finish()
        #expect(result.status == 0, "\(worker.stderr)")
        #expect(result.stdout.contains(" 0 dropped"), "\(result.stdout)")
        #expect(logger.stop().status == 0)
        let merged = try cluster.rows()
        expectSameRows(merged.rows, expected.rows)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasSuffix(".batch") }.isEmpty)
    }

    /// With two loggers and one of them down, the nodes that send to it move to the other
    /// after the acknowledgement timeout, and everything arrives there.
    @Test func aLoggerThatStaysDownHandsItsShareToAnother() throws {
        let cluster = try TestCluster(basePort: 29000, workers: 2, loggers: 2,
                                      extra: "\"rotation_interval\": 0, \"heartbeat_interval\": 0.2, \"node_timeout\": 1")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 2000)
        let expected = try Self.singleRun(trace, in: cluster.directory)
        let logger = try cluster.startLogger("logger-2") // logger-1 never comes
        let workers = try (1...2).map { try cluster.start("worker-\($0)", ["-r", trace, "Cluster::shard=\($0 - 1)/2"]) }
        for worker in workers { #expect(worker.finish().status == 0, "\(worker.stderr)") }
        #expect(workers.contains { $0.stderr.contains("logger logger-1 has not acknowledged anything for 2 s; sending to logger-2") },
                "\(workers.map(\.stderr))")
        #expect(logger.stop().status == 0)
        expectSameRows(try cluster.rows(logger: "logger-2").rows, expected.rows)
    }

    /// A worker whose logger never answers keeps its batches in the spool, and its next run
    /// sends them first.
    @Test func batchesLeftInTheSpoolAreSentByTheNextRun() throws {
        let cluster = try TestCluster(basePort: 28400, workers: 1,
                                      extra: "\"rotation_interval\": 0, \"batch_records\": 100, \"shutdown_timeout\": 1")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 500)
        let expected = try Self.singleRun(trace, in: cluster.directory)
        // No logger: the worker gives up waiting and keeps everything.
        let first = try cluster.start("worker-1", ["-r", trace])
        let firstResult = first.finish()
        #expect(firstResult.status == 0)
        #expect(first.stderr.contains("kept in spool/worker-1"), "\(first.stderr)")
        let empty = try TemporaryDirectory()
        let emptyTrace = empty.file("empty.pcap")
        let writer = try TraceWriter(path: emptyTrace, format: .pcapNanosecond, linkType: 1)
        try writer.finish()
        let logger = try cluster.startLogger()
        let second = try cluster.start("worker-1", ["-r", emptyTrace])
        #expect(second.finish().status == 0, "\(second.stderr)")
        #expect(logger.stop().status == 0)
        expectSameRows(try cluster.rows().rows, expected.rows)
    }

    /// Rotation every second: each file is closed with #close, renamed after its opening
    /// time and archived as LOGDIR/YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS.log.gz; at shutdown the
    /// last one too. Together the archives hold every row once.
    @Test func rotatedLogsAreCompleteAndArchivedUnderZeeksNames() throws {
        // archive_dir (as trawlctl sets it): the archives go there, the current logs stay.
        let cluster = try TestCluster(basePort: 28800, workers: 1, extra: "\"rotation_interval\": 1",
                                      loggerFields: ", \"archive_dir\": \"archive\"")
        let first = cluster.directory.file("first.pcap"), second = cluster.directory.file("second.pcap")
        try writeClusterTrace(at: first, flows: 300, seed: 1)
        try writeClusterTrace(at: second, flows: 300, seed: 2)
        let expected = try (Self.singleRun(first, in: cluster.directory).rows
            + Self.singleRun(second, in: try TemporaryDirectory()).rows).sorted()
        let logger = try cluster.startLogger()
        for trace in [first, second] {
            let worker = try cluster.start("worker-1", ["-r", trace])
            #expect(worker.finish().status == 0, "\(worker.stderr)")
            usleep(1_300_000) // past a rotation
        }
        #expect(logger.stop().status == 0, "\(logger.stderr)")
        let logs = cluster.directory.file("logs-logger-1")
        let left = try FileManager.default.contentsOfDirectory(atPath: logs).filter { $0.hasSuffix(".log") }
        #expect(left.isEmpty, "not archived: \(left)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: logs).allSatisfy { !$0.hasPrefix("20") }, "an archive in the log directory")
        let archive = cluster.directory.file("archive")
        let days = try FileManager.default.contentsOfDirectory(atPath: archive).filter { $0.range(of: #"^\d{4}-\d\d-\d\d$"#, options: .regularExpression) != nil }
        var rows: [String] = []
        var archives = 0
        for day in days {
            for name in try FileManager.default.contentsOfDirectory(atPath: archive + "/" + day) where name.hasPrefix("conn.") {
                #expect(name.range(of: #"^conn\.\d\d:\d\d:\d\d-\d\d:\d\d:\d\d\.log\.gz$"#, options: .regularExpression) != nil, "\(name)")
                let text = try runProcess("/bin/gzip", ["-dc", archive + "/" + day + "/" + name]).stdout
                #expect(text.hasPrefix("#separator") && text.contains("\n#close\t"), "\(name) is not a whole log")
                let file = cluster.directory.file("unpacked.log")
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                rows += try connRows(file).rows
                archives += 1
            }
        }
        #expect(archives >= 2, "\(archives) archives")
        expectSameRows(rows.sorted(), expected)
    }

    /// An operator's post-processor that fails is said, and the rotated file is kept.
    @Test func aFailingPostProcessorIsSaidAndTheFileKept() throws {
        let cluster = try TestCluster(basePort: 28900, workers: 1, extra: "\"rotation_interval\": 3600, \"post_processor\": \"exit 3;\"")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 50)
        let logger = try cluster.startLogger()
        let worker = try cluster.start("worker-1", ["-r", trace])
        #expect(worker.finish().status == 0)
        #expect(logger.stop().status == 0)
        #expect(logger.stderr.contains("failed (exit status 3); the rotated file stays there"), "\(logger.stderr)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: cluster.directory.file("logs-logger-1"))
        #expect(kept.contains { $0.range(of: #"^conn\.\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.log$"#, options: .regularExpression) != nil }, "\(kept)")
    }

    /// Garbage to every port that listens — the logger's, and the manager's forwarder's two —
    /// raw bytes and well-formed ZeroMQ messages that are not Trawl's: refused, counted and
    /// said; no node falls over, and the cluster goes on working.
    /// The one way records are lost: the spool's disk limit. Every lost batch is counted and
    /// said, on stderr and in the summary.
    @Test func aFullSpoolIsTheOnlyLossAndItIsSaid() throws {
        let cluster = try TestCluster(basePort: 29050, workers: 1, extra: "\"rotation_interval\": 0, \"batch_records\": 50, "
                                      + "\"memory_limit\": 65536, \"spool_limit\": 100000, \"shutdown_timeout\": 0.5")
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 3000)
        let worker = try cluster.start("worker-1", ["-r", trace]) // no logger at all
        let result = worker.finish()
        #expect(result.status == 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("dropped a batch of 50 records: the spool spool/worker-1 is full (100000 bytes)"), "\(worker.stderr)")
        let lost = summaryNumber(result.stdout, before: " records lost)")
        // Every lost record was in a batch said to be dropped (conn.log's of 50, weird.log's smaller).
        let said = worker.stderr.split(separator: "\n").compactMap { line -> Int? in
            guard let range = line.range(of: "dropped a batch of ") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(lost > 0 && said.reduce(0, +) == lost, "\(result.stdout)\n\(worker.stderr)")
        let made = summaryNumber(result.stdout, before: " records in ")
        let spooledBytes = try FileManager.default.contentsOfDirectory(atPath: cluster.directory.file("spool/worker-1"))
            .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: cluster.directory.file("spool/worker-1/") + $1)[.size] as? Int) ?? 0) }
        #expect(spooledBytes <= 100_000)
        #expect(lost < made)
    }

    @Test func garbageOnEveryListeningPortIsCountedAndDropped() throws {
        let cluster = try TestCluster(basePort: 28500, workers: 1,
                                      extra: "\"rotation_interval\": 0, \"heartbeat_interval\": 0.2, \"node_timeout\": 1")
        let logger = try cluster.startLogger()
        let manager = try cluster.start("manager")
        #expect(manager.waitFor("forwarding events"), "\(manager.stderr)")
        let ports = [cluster.basePort, cluster.basePort + 1, cluster.basePort + 2]
        for port in ports {
            for payload in [Data("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), Data(repeating: 0xff, count: 4096),
                            Data([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0] + [UInt8](repeating: 0x41, count: 100))] {
                try sendTCP(payload, port: port)
            }
        }
        // Well-formed ZeroMQ messages that are not batches: refused, counted and said.
        let context = ZMQContext()
        let peer = try ZMQSocket(context, .dealer)
        try peer.connect("tcp://127.0.0.1:\(cluster.basePort + 2)")
        try peer.send([[], Array("not a batch".utf8)], wait: true)
        try peer.send([Array("three".utf8), [], [1, 2, 3]], wait: true)
        let truncated = LogBatchEncoder(LogBatchHeader(node: "x", session: 1, sequence: 1, path: "conn", fields: [("ts", .time)]))
        truncated.append([.time(1)])
        try peer.send([[], Array(truncated.bytes.dropLast())], wait: true)
        #expect(logger.waitFor("refused truncated message", seconds: 10), "\(logger.stderr)")
        peer.close()
        // Events that are not Trawl's, published through the forwarder on the heartbeat topic.
        let publisher = try ZMQSocket(context, .pub)
        try publisher.connect("tcp://127.0.0.1:\(cluster.basePort + 1)")
        for _ in 0..<20 {
            try publisher.send([Array("trawl.cluster.heartbeat".utf8), Array("garbage".utf8)])
            try publisher.send([Array("trawl.cluster.heartbeat".utf8)])
            usleep(50_000)
        }
        #expect(manager.waitFor("refused an event message", seconds: 10), "\(manager.stderr)")
        publisher.close()
        // Still a cluster: a worker is heard, its records written.
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 50)
        let worker = try cluster.start("worker-1", ["-r", trace])
        #expect(worker.finish().status == 0, "\(worker.stderr)")
        #expect(manager.stop().status == 0, "\(manager.stderr)")
        let result = logger.stop()
        #expect(result.status == 0, "\(logger.stderr)")
        #expect(result.stdout.contains("3 messages refused"), "\(result.stdout)")
        let clusterLog = try String(contentsOfFile: cluster.directory.file("logs-logger-1/cluster.log"), encoding: .utf8)
        #expect(clusterLog.contains("got hello from worker-1"), "\(clusterLog)")
        expectSameRows(try cluster.rows().rows, try Self.singleRun(trace, in: cluster.directory).rows)
    }

    /// Two hosts (network namespaces joined by a veth pair): manager and logger on one, a
    /// worker on the other, every link between them encrypted with the cluster's keys. A
    /// layout across hosts without keys is refused unless it asks for plaintext, and then
    /// warned about.
    @Test(.enabled(if: isRoot, "network namespaces need root"))
    func nodesOnTwoHostsTalkThroughCURVE() throws {
        let hosts = try VethPair()
        let directory = try TemporaryDirectory()
        let layout = { (security: String) in """
            {"nodes": {"manager": {"role": "manager", "host": "\(hosts.addressA)", "port": 29200},
                       "logger-1": {"role": "logger", "host": "\(hosts.addressA)", "port": 29202, "log_dir": "logs"},
                       "worker-1": {"role": "worker", "host": "\(hosts.addressB)"}},
             "rotation_interval": 0\(security)}
            """ }
        try layout("").write(toFile: directory.file("layout.json"), atomically: true, encoding: .utf8)
        let trace = directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 300)
        let refused = try NodeProcess("worker-1", directory: directory.path, arguments: ["-r", trace])
        #expect(refused.finish().status == 1)
        #expect(refused.stderr.contains("the nodes are on different hosts: give the cluster's keys"), "\(refused.stderr)")
        try layout(", \"plaintext\": true").write(toFile: directory.file("layout.json"), atomically: true, encoding: .utf8)
        let warned = try NodeProcess("manager", directory: directory.path, arguments: [], namespace: hosts.namespaceA)
        #expect(warned.waitFor("links between hosts are not encrypted"), "\(warned.stderr)")
        _ = warned.stop()

        #expect(try runProcess(Paths.trawl, ["--generate-cluster-keys", directory.file("keys")]).status == 0)
        try layout(", \"keys\": \"keys\"").write(toFile: directory.file("layout.json"), atomically: true, encoding: .utf8)
        let logger = try NodeProcess("logger-1", directory: directory.path, arguments: [], namespace: hosts.namespaceA)
        #expect(logger.waitFor("taking logs on"), "\(logger.stderr)")
        let manager = try NodeProcess("manager", directory: directory.path, arguments: [], namespace: hosts.namespaceA)
        #expect(manager.waitFor("forwarding events"), "\(manager.stderr)")
        let worker = try NodeProcess("worker-1", directory: directory.path, arguments: ["-r", trace], namespace: hosts.namespaceB)
        let result = worker.finish()
        #expect(result.status == 0 && result.stdout.contains(" 0 dropped"), "\(worker.stderr) \(result.stdout)")
        #expect(manager.stop().status == 0, "\(manager.stderr)")
        #expect(logger.stop().status == 0, "\(logger.stderr)")
        let single = try Self.singleRun(trace, in: directory)
        expectSameRows(try connRows(directory.file("logs/conn.log")).rows, single.rows)
        let clusterLog = try String(contentsOfFile: directory.file("logs/cluster.log"), encoding: .utf8)
        #expect(clusterLog.contains("got hello from worker-1"), "\(clusterLog)")
    }

    /// A node started with only its name takes its sources and log directory from the layout.
    @Test func aNodeRunsWithWhatTheLayoutSaysOfIt() throws {
        let cluster = try TestCluster(basePort: 29070, workers: 1, extra: "\"rotation_interval\": 0")
        var text = try String(contentsOfFile: cluster.directory.file("layout.json"), encoding: .utf8)
        text = text.replacingOccurrences(of: "\"port\": 29072}", with: "\"port\": 29072, \"log_dir\": \"from-layout\"}")
        text = text.replacingOccurrences(of: "\"worker-1\": {\"role\": \"worker\", \"host\": \"127.0.0.1\"}",
                                         with: "\"worker-1\": {\"role\": \"worker\", \"host\": \"127.0.0.1\", \"interface\": \"trawl-no-such-if0\"}")
        try text.write(toFile: cluster.directory.file("layout.json"), atomically: true, encoding: .utf8)
        let logger = try cluster.start("logger-1")
        #expect(logger.waitFor("writing into from-layout"), "\(logger.stderr)")
        let worker = try cluster.start("worker-1")
        let result = worker.finish()
        #expect(result.status == 66 && worker.stderr.contains("trawl-no-such-if0"), "\(worker.stderr)")
        #expect(logger.stop().status == 0)
        #expect(FileManager.default.fileExists(atPath: cluster.directory.file("from-layout/.trawl-ledger")))
    }

    @Test func aNodeWithoutTheClustersKeyIsRefused() throws {
        let cluster = try TestCluster(basePort: 28600, workers: 1, extra: "\"rotation_interval\": 0, \"keys\": \"keys\"")
        let keys = try runProcess(Paths.trawl, ["--generate-cluster-keys", cluster.directory.file("keys")])
        #expect(keys.status == 0, "\(keys.stderr)")
        // The impostor has keys of its own under the same names.
        let impostor = try TemporaryDirectory()
        _ = try runProcess(Paths.trawl, ["--generate-cluster-keys", impostor.file("keys")])
        try FileManager.default.copyItem(atPath: cluster.directory.file("layout.json"), toPath: impostor.file("layout.json"))
        let trace = cluster.directory.file("trace.pcap")
        try writeClusterTrace(at: trace, flows: 100)
        let logger = try cluster.startLogger()
        let manager = try cluster.start("manager")
        #expect(manager.waitFor("forwarding events"), "\(manager.stderr)")
        let intruder = try NodeProcess("worker-1", directory: impostor.path, arguments: ["-r", trace])
        #expect(logger.waitFor("refused a connection", seconds: 10), "\(logger.stderr)")
        #expect(manager.waitFor("refused a connection", seconds: 10), "\(manager.stderr)")
        kill(intruder.pid, SIGKILL)
        _ = intruder.finish()
        // A peer that knows the server's public key but has a client key of its own gets
        // past the encryption and is refused by the key check, by its address.
        let serverPublic = try String(contentsOfFile: cluster.directory.file("keys/server.public"), encoding: .utf8)
        let own = try ZMQContext.curveKeyPair()
        let context = ZMQContext()
        let peer = try ZMQSocket(context, .dealer)
        try peer.set(CURVE_SERVERKEY_OPTION, text: serverPublic.trimmingCharacters(in: .whitespacesAndNewlines))
        try peer.set(CURVE_PUBLICKEY_OPTION, text: own.publicKey)
        try peer.set(CURVE_SECRETKEY_OPTION, text: own.secretKey)
        try peer.connect("tcp://127.0.0.1:\(cluster.basePort + 2)")
        #expect(logger.waitFor("refused a connection from 127.0.0.1", seconds: 10), "\(logger.stderr)")
        peer.close()
        // The real worker gets through, encrypted, and is heard by the manager.
        let worker = try cluster.start("worker-1", ["-r", trace])
        #expect(worker.finish().status == 0, "\(worker.stderr)")
        #expect(manager.stop().status == 0, "\(manager.stderr)")
        #expect(logger.stop().status == 0)
        expectSameRows(try cluster.rows().rows, try Self.singleRun(trace, in: cluster.directory).rows)
        // The manager's refusals are in cluster.log, where an operator looks for who could not join.
        let clusterLog = try String(contentsOfFile: cluster.directory.file("logs-logger-1/cluster.log"), encoding: .utf8)
        #expect(clusterLog.contains("\tmanager\trefused a connection on tcp://127.0.0.1:"), "\(clusterLog)")
        #expect(clusterLog.contains("got hello from worker-1"), "\(clusterLog)")
    }
}

/// The number just before `marker` in a summary ("... 12 resent, ...").
func summaryNumber(_ text: String, before marker: String) -> Int {
    guard let range = text.range(of: marker) else { return 0 }
    let digits = text[..<range.lowerBound].reversed().prefix { $0.isNumber }
    return Int(String(digits.reversed())) ?? 0
}

// libzmq's CURVE client options, for the test's own peer.
let CURVE_SERVERKEY_OPTION: Int32 = 50
let CURVE_PUBLICKEY_OPTION: Int32 = 48
let CURVE_SECRETKEY_OPTION: Int32 = 49

/// Connects to 127.0.0.1:`port`, sends `payload` and closes.
func sendTCP(_ payload: Data, port: UInt16) throws {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect to \(port): \(errno)") }
    _ = payload.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    usleep(100_000)
}
