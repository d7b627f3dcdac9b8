import Foundation
import Testing
import TrawlAnalysis
@testable import TrawlCluster
import TrawlCore

/// The log-batch format, the layout file, the ledger and the shard split: the parts of the
/// cluster that need no process of their own.
@Suite struct ClusterProtocolTests {
    static let schema = LogSchema(path: "test", fields: [
        ("ts", "time"), ("host", "addr"), ("port", "port"), ("name", "string"), ("kind", "enum"), ("n", "count"),
        ("d", "interval"), ("ok", "bool"), ("tags", "set[string]"), ("i", "int"), ("x", "double"),
    ])

    static func header(sequence: UInt64 = 7) -> LogBatchHeader {
        LogBatchHeader(node: "worker-1", session: 0xfeed, sequence: sequence, path: schema.path,
                       fields: schema.fields.map { ($0.name, LogFieldType(zeekName: $0.type)!) })
    }

    static let records: [[LogValue]] = [
        [.time(1_700_000_000_123_456_000), .address(IPAddress("10.1.2.3")!), .port(443), .string("tab\there"), .enum("tcp"),
         .count(42), .interval(1_500_000_000), .bool(true), .set(["a", "b,c"]), .int(-5), .double(0.25)],
        [.time(1), .address(IPAddress("2001:db8::1")!), .unset, .string(""), .unset, .count(0), .unset, .bool(false),
         .set([]), .unset, .double(-3)],
    ]

    static func encoded() -> [UInt8] {
        let encoder = LogBatchEncoder(header())
        for record in records { encoder.append(record) }
        return encoder.bytes
    }

    /// A value as text, to compare decoded records (LogValue is not Equatable).
    static func text(_ record: [LogValue]) -> String {
        record.map { value -> String in
            switch value {
            case let .time(n): return "time \(n)"
            case let .interval(n): return "interval \(n)"
            case let .string(s): return "string \(s)"
            case let .address(a): return "addr \(a)"
            case let .port(p): return "port \(p)"
            case let .count(c): return "count \(c)"
            case let .int(i): return "int \(i)"
            case let .double(d): return "double \(d)"
            case let .bool(b): return "bool \(b)"
            case let .enum(e): return "enum \(e)"
            case let .set(s): return "set \(s)"
            case .unset: return "-"
            }
        }.joined(separator: "|")
    }

    @Test func aBatchReadsBackAsItWasWritten() throws {
        let batch = try LogBatchDecoder(Self.encoded())
        #expect(batch.header == Self.header())
        #expect(batch.recordCount == 2)
        var decoded: [String] = []
        batch.forEachRecord { decoded.append(Self.text($0)) }
        #expect(decoded == Self.records.map(Self.text))
        #expect(batch.schema.fields.map(\.type) == Self.schema.fields.map(\.type))
    }

    @Test func everyTruncationIsRefusedAndNeverCrashes() throws {
        let bytes = Self.encoded()
        for length in 0..<bytes.count {
            #expect(throws: ProtocolError.self) { try LogBatchDecoder(Array(bytes[0..<length])) }
        }
        #expect(throws: ProtocolError.self) { try LogBatchDecoder(bytes + [0]) } // a byte too many
    }

    @Test func unknownVersionsGarbageAndLiesAreRefused() throws {
        var bytes = Self.encoded()
        bytes[4] = 9
        #expect(throws: ProtocolError.unsupportedVersion(9)) { try LogBatchDecoder(bytes) }
        #expect(throws: ProtocolError.badMagic) { try LogBatchDecoder(Array("GET / HTTP/1.1\r\n\r\n".utf8)) }
        // A record count far beyond the bytes: refused without reserving memory for it.
        let lying = LogBatchEncoder(Self.header())
        lying.append(Self.records[0])
        var liar = lying.bytes
        let index = try #require(Self.recordCountOffset(liar))
        liar[index + 3] = 0x7f
        #expect(throws: ProtocolError.self) { try LogBatchDecoder(liar) }
        // Random damage: decoded or refused, never a crash.
        var random = SplitMix64(seed: 3)
        for _ in 0..<2000 {
            var mutated = Self.encoded()
            for _ in 0..<3 { mutated[Int(random.next() % UInt64(mutated.count))] = UInt8(truncatingIfNeeded: random.next()) }
            if let batch = try? LogBatchDecoder(mutated) { batch.forEachRecord { _ in } } // decodes, or is refused
        }
    }

    /// Where the record count sits: after the schema.
    static func recordCountOffset(_ bytes: [UInt8]) -> Int? {
        var reader = WireReader(bytes)
        reader.position = 24
        guard (try? reader.name("node")) != nil, (try? reader.name("path")) != nil, let count = try? reader.u16("fields") else { return nil }
        for _ in 0..<count {
            guard (try? reader.name("field")) != nil, (try? reader.u8("type")) != nil else { return nil }
        }
        return reader.position
    }

    @Test func acknowledgementsRoundTrip() throws {
        let ack = LogAck(status: .duplicate, session: 1 << 60, sequence: 99)
        #expect(try LogAck(ack.bytes) == ack)
        #expect(throws: ProtocolError.self) { try LogAck(Array(ack.bytes.dropLast())) }
    }

    /// Archives as zeekctl's CompressLogs, CompressCmd and CompressExtension say: gzip by
    /// default, another command, or none (the rotated file as it is, under `.log`).
    @Test func archivesAreCompressedAsConfigured() throws {
        let directory = try TemporaryDirectory()
        let opened: UInt64 = 1_700_000_000_000_000_000, closed = opened + 3_600_000_000_000
        for (compressor, ext) in [("gzip", "gz"), (nil, "gz"), ("bzip2", "bz2")] as [(String?, String)] {
            guard compressor == nil || FileManager.default.isExecutableFile(atPath: "/usr/bin/" + compressor!) || compressor == "gzip" else { continue }
            let file = directory.file("conn.rotated.log")
            try "#fields\tts\n1\n".write(toFile: file, atomically: true, encoding: .utf8)
            let archiver = Archiver(directory: directory.file("archive"), action: .archive(suffix: nil, compressor: compressor, extension: ext),
                                    report: { Issue.record("\($0)") })
            let log = RotatedLog(stream: "conn", file: file, opened: opened, closed: closed)
            archiver.process(log, terminating: true)
            archiver.wait(timeout: 10_000_000_000)
            let target = Archiver.archivePath(directory: directory.file("archive"), log, suffix: nil, extension: compressor == nil ? nil : ext)
            #expect(target.hasSuffix(compressor == nil ? ".log" : ".log." + ext), "\(target)")
            #expect(FileManager.default.fileExists(atPath: target) && !FileManager.default.fileExists(atPath: file), "\(target)")
            if compressor == nil { #expect(try String(contentsOfFile: target, encoding: .utf8) == "#fields\tts\n1\n") }
            try? FileManager.default.removeItem(atPath: target)
        }
        let layout = try ClusterLayout.parse("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}}, \"compress_command\": \"\"}", file: "c.json")
        #expect(layout.compressor == nil)
    }

    @Test func eventsRoundTrip() throws {
        let stats = NodeStatistics(node: "worker-1", time: 1_700_000_000_123_456_789, counters: [("packets", 12), ("dropped", 0)])
        guard case let .capture(back) = try ClusterEvent(ClusterEvent.capture(stats).bytes) else {
            Issue.record("a capture event did not come back as one")
            return
        }
        #expect(back == stats)
        guard case let .statistics(again) = try ClusterEvent(ClusterEvent.statistics(stats).bytes) else {
            Issue.record("a statistics event did not come back as one")
            return
        }
        #expect(again == stats)
        let beat = ClusterEvent.Heartbeat(node: "proxy-1", role: .proxy, id: "trawl_proxy-1_h_1_2", stopping: true)
        guard case let .heartbeat(heard) = try ClusterEvent(ClusterEvent.heartbeat(beat).bytes) else {
            Issue.record("a heartbeat did not come back as one")
            return
        }
        #expect(heard == beat)
        var unknown = ClusterEvent.capture(stats).bytes
        unknown[5] = 9
        #expect(throws: ProtocolError.self) { try ClusterEvent(unknown) }
    }

    // MARK: Layout

    static let goodLayout = """
        {
          "nodes": {
            "manager": {"role": "manager", "host": "127.0.0.1"},
            "logger-1": {"role": "logger", "host": "127.0.0.1", "port": 27770},
            "worker-1": {"role": "worker", "host": "127.0.0.1"}
          },
          "batch_records": 500,
          "rotation_interval": 0
        }
        """

    @Test func aLayoutIsRead() throws {
        let layout = try ClusterLayout.parse(Self.goodLayout, file: "c.json")
        #expect(layout.nodes.map(\.name) == ["manager", "logger-1", "worker-1"])
        #expect(layout.manager.port == ClusterLayout.defaultManagerPort)
        #expect(layout.logWriters.map(\.name) == ["logger-1"])
        #expect(layout.batchRecords == 500)
        #expect(layout.rotationInterval == 0)
        #expect(!layout.spansHosts)
    }

    @Test(arguments: [
        ("{\"nodes\": {\"w\": {\"role\": \"wroker\", \"host\": \"h\"}}}", "c.json: node w: role: 'wroker' is not one of manager, logger, proxy, worker"),
        ("{\"nodes\": {\"w\": {\"role\": \"worker\", \"host\": \"h\"}}}", "c.json: nodes: no manager: a cluster has exactly one"),
        ("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}, \"l\": {\"role\": \"logger\", \"host\": \"h\"}}}",
         "c.json: node l: port: a logger needs the port it takes logs on"),
        ("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}, \"l\": {\"role\": \"logger\", \"host\": \"h\", \"port\": 27761}}}",
         "c.json: node l: port: port 27761 on h is already m's"),
        ("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\", \"colour\": 1}}}", "c.json: node m: colour: unknown field (known: role, host, port, interface, options, pin_cpus, log_dir, archive_dir, metrics_port)"),
        ("{\"nodes\": {\"m\": {\"role\": \"manager\"}}}", "c.json: node m: host: missing; the address other nodes reach this node at"),
        ("{\"nodes\": {\n  \"m\": {\"role\": \"manager\", \"host\": \"h\",}}}", "c.json: line 2, column 40: expected a quoted member name"),
        ("{\"nodes\": {}, \"batch_records\": \"many\"}", "c.json: batch_records: expected a number from 1.0 to 100000.0, got a string"),
    ])
    func badLayoutsSayWhereAndWhat(text: String, message: String) {
        #expect(throws: LayoutError.self) { try ClusterLayout.parse(text, file: "c.json") }
        do { _ = try ClusterLayout.parse(text, file: "c.json") } catch { #expect(error.description == message) }
    }

    /// What trawlctl writes for each node from node.cfg: its sources, settings, CPUs, log directory.
    @Test func aNodeCarriesItsOwnSettings() throws {
        let layout = try ClusterLayout.parse("""
            {"nodes": {"m": {"role": "manager", "host": "h", "log_dir": "/var/log/trawl"},
                       "w": {"role": "worker", "host": "h", "interface": "af_packet::eth0", "pin_cpus": "1-2",
                             "options": ["AF_Packet::fanout_id=23", "tcp_inactivity_timeout=1min"]},
                       "v": {"role": "worker", "host": "h", "interface": ["eth1", "eth2"], "pin_cpus": [3]}}}
            """, file: "c.json")
        let w = try #require(layout.node(named: "w")), v = try #require(layout.node(named: "v"))
        #expect(w.interfaces == ["af_packet::eth0"] && w.pinCPUs == [1, 2])
        #expect(w.options == ["AF_Packet::fanout_id=23", "tcp_inactivity_timeout=1min"])
        #expect(v.interfaces == ["eth1", "eth2"] && v.pinCPUs == [3])
        #expect(layout.manager.logDirectory == "/var/log/trawl")
        for (text, message) in [
            ("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\", \"interface\": \"eth0\"}}}",
             "c.json: node m: interface: only a worker reads packets"),
            ("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}, \"w\": {\"role\": \"worker\", \"host\": \"h\", \"pin_cpus\": \"x\"}}}",
             "c.json: node w: pin_cpus: expected CPU numbers: \"0,2\", \"0-3\" or [0, 2]"),
            ("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}, \"w\": {\"role\": \"worker\", \"host\": \"h\", \"options\": [\"udp_inactivity_timeout=x\"]}}}",
             "c.json: node w: options: udp_inactivity_timeout: 'x' is not an interval above 0 (300, 300sec, 5min, 1hr, 2days)"),
        ] {
            do { _ = try ClusterLayout.parse(text, file: "c.json"); Issue.record("accepted: \(text)") }
            catch { #expect(error.description == message) }
        }
    }

    @Test func nodesOnSeveralHostsNeedKeysOrAnExplicitPlaintext() throws {
        let text = """
            {"nodes": {"m": {"role": "manager", "host": "10.0.0.1"}, "w": {"role": "worker", "host": "10.0.0.2"}}}
            """
        let layout = try ClusterLayout.parse(text, file: "c.json")
        #expect(layout.spansHosts)
        #expect(throws: LayoutError.self) { try ClusterSecurity.forLayout(layout) { _ in } }
        var warned: [String] = []
        var plaintext = layout
        plaintext.allowPlaintext = true
        let security = try ClusterSecurity.forLayout(plaintext) { warned.append($0) }
        #expect(security.keys == nil)
        #expect(warned.count == 1)
    }

    @Test func generatedKeysLoadAndBelongTogether() throws {
        let dir = try TemporaryDirectory()
        let keys = try ClusterSecurity.generateKeys(into: dir.path + "/keys")
        #expect(try ClusterSecurity.loadKeys(dir.path + "/keys") == keys)
        #expect(throws: (any Error).self) { try ClusterSecurity.generateKeys(into: dir.path + "/keys") } // never overwritten
        let mode = try FileManager.default.attributesOfItem(atPath: dir.path + "/keys/server.secret")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    // MARK: Ledger and shards

    @Test func sequenceSetsFillTheirGaps() {
        var set = SequenceSet()
        for sequence: UInt64 in [1, 2, 5, 4] { set.insert(sequence) }
        #expect(set.contiguous == 2 && set.above == [4, 5])
        set.insert(3)
        #expect(set.contiguous == 5 && set.above.isEmpty)
        #expect(set.contains(1) && !set.contains(6))
        set.raise(to: 9)
        #expect(set.contiguous == 9)
    }

    /// A logger that died while writing a batch: the file is cut back to where the batch
    /// began, the batch counts as not written, and the ones before it as written.
    @Test func aBatchCutShortByACrashIsForgottenAndItsBytesRemoved() throws {
        let dir = try TemporaryDirectory()
        do {
            let logs = try LogDirectory(directory: dir.path, json: false)
            let first = LogBatchEncoder(Self.header(sequence: 1))
            first.append(Self.records[0])
            #expect(try logs.write(LogBatchDecoder(first.bytes)) == .written)
            #expect(try logs.write(LogBatchDecoder(first.bytes)) == .duplicate)
        }
        let path = dir.file("test.log")
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        // The crash: a second batch's ledger line is written, half its bytes reach the file.
        let ledger = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file(".trawl-ledger")))
        ledger.seekToEndOfFile()
        ledger.write("W worker-1 feed 2 test \(whole.count) 100\n".data(using: .utf8)!)
        try ledger.close()
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        log.seekToEndOfFile()
        log.write(Data(repeating: 0x41, count: 40))
        try log.close()

        let again = try LogDirectory(directory: dir.path, json: false)
        #expect(again.ledger.recovered.map(\.cutTo) == [UInt64(whole.count)])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == whole)
        #expect(again.ledger.contains(node: "worker-1", session: 0xfeed, sequence: 1))
        #expect(!again.ledger.contains(node: "worker-1", session: 0xfeed, sequence: 2))
    }

    @Test func shardsSplitByAddressPairTheSameBothWays() {
        let shards = (0..<4).map { Shard(index: UInt32($0), count: 4) }
        var counts = [0, 0, 0, 0]
        var random = SplitMix64(seed: 11)
        for _ in 0..<4000 {
            let a = IPAddress(high: 0, low: 0xffff_0000_0000 | random.next() & 0xffff_ffff)
            let b = IPAddress(high: random.next(), low: random.next())
            let owners = shards.filter { $0.contains(a, b) }
            #expect(owners.count == 1)
            #expect(owners.first?.contains(b, a) == true)
            counts[Int(owners.first?.index ?? 0)] += 1
        }
        #expect(counts.allSatisfy { $0 > 800 }, "uneven split: \(counts)")
        #expect(Shard("1/4") == shards[1])
        #expect(Shard("4/4") == nil && Shard("1") == nil && Shard("0/0") == nil)
    }
}
