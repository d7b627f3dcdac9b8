import Foundation
import Testing
@testable import TrawlAnalysis
import TrawlCore

/// Feeds frames through a tracker, `spacing` apart from `start`, and returns its records and weird.log rows.
private func weirdRows(_ frames: [[UInt8]], linkType: UInt32 = 1, spacing: UInt64 = 10_000_000,
                       start: UInt64 = 1_000_000_000_000, times: [UInt64]? = nil,
                       configure: (inout AnalysisConfiguration) -> Void = { _ in })
    -> (records: [ConnectionRecord], weirds: [WeirdRecord], tracker: ConnectionTracker) {
    var configuration = AnalysisConfiguration()
    configuration.bareMode = true
    configure(&configuration)
    let sink = CollectingSink()
    let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 7)
    for (index, frame) in frames.enumerated() {
        frame.withUnsafeBytes { bytes in
            tracker.process(Packet(timestampNanoseconds: times?[index] ?? start + UInt64(index) * spacing,
                                   capturedLength: bytes.count, wireLength: bytes.count, bytes: bytes), linkType: linkType)
        }
    }
    tracker.finish()
    return (sink.records, sink.weirds, tracker)
}

@Suite struct WeirdLogTests {
    let b = PacketBuilder()

    @Test func connectionWeirdNamesTheConnectionAndItsAnalyzer() throws {
        let (records, weirds, _) = weirdRows([
            b.tcp(fromClient: true, flags: TCPFlag.syn, seq: 100),
            b.tcp(fromClient: false, flags: TCPFlag.syn | TCPFlag.ack, seq: 900, ack: 101, badChecksum: true),
        ])
        let record = try #require(records.first)
        let weird = try #require(weirds.first)
        #expect(weirds.count == 1)
        #expect(weird.name == "bad_TCP_checksum")
        #expect(weird.uid == record.uid)
        #expect(weird.source == "TCP")
        #expect(weird.peer == "zeek")
        #expect(weird.notice == false)
        let id = try #require(weird.id)
        // The connection's orientation, not the packet's (the bad packet came from the server).
        #expect(id.origAddress == b.client && id.origPort == b.clientPort)
        #expect(id.respAddress == b.server && id.respPort == b.serverPort)
        #expect(weird.time == 1_000_000_000_000 + 10_000_000)
    }

    @Test func checksumWeirdsAreLoggedOncePerOriginator() {
        // bad_TCP_checksum is ACTION_LOG_PER_ORIG: a second connection from the same client
        // logs nothing more; another client logs again.
        var other = b
        other.client = IPAddress("10.9.9.9")!
        var second = b
        second.clientPort = 40001
        let (_, weirds, tracker) = weirdRows([
            b.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1, badChecksum: true),
            second.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1, badChecksum: true),
            other.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1, badChecksum: true),
        ])
        #expect(weirds.map(\.name) == ["bad_TCP_checksum", "bad_TCP_checksum"])
        #expect(weirds.map { $0.id?.origAddress } == [b.client, other.client])
        #expect(tracker.weirds["bad_TCP_checksum"] == 3) // all counted all the same
    }

    @Test func netWeirdIsAboutNothingAndRepeatsAfterTenMinutes() throws {
        let cut: [UInt8] = Array(b.udp(fromClient: true, payload: 4).prefix(12)) // no whole Ethernet header
        let minute: UInt64 = 60_000_000_000
        let (_, weirds, _) = weirdRows([cut, cut, cut], times: [minute, 2 * minute, 12 * minute])
        #expect(weirds.count == 2) // the second is within ten minutes of the first (Weird::weird_ignore)
        let weird = try #require(weirds.first)
        #expect(weird.name == "truncated_ethernet_frame" && weird.source == "ETHERNET")
        #expect(weird.uid == nil && weird.id == nil)
        #expect(weirds.map(\.time) == [minute, 12 * minute])
    }

    @Test func flowWeirdHasTheAddressesAndPortsZero() throws {
        let s = Craft.address("10.0.0.1"), d = Craft.address("10.0.0.2")
        // A first fragment with DF set: fragment_with_DF, raised by reassembly about the flow.
        let segment = Craft.udp(1000, 2000, payload: [UInt8](repeating: 1, count: 64), from: s, to: d)
        let fragment = Craft.ipv4(s, d, proto: 17, Array(segment.prefix(48)), fragment: 0x6000)
        let (_, weirds, _) = weirdRows([Craft.ethernet(0x0800, fragment)])
        let weird = try #require(weirds.first { $0.name == "fragment_with_DF" })
        let id = try #require(weird.id)
        #expect(id.origAddress == s && id.respAddress == d && id.origPort == 0 && id.respPort == 0)
        #expect(weird.uid == nil && weird.source == nil)
    }

    @Test func weirdOfAPacketInsideATunnelSaysSo() throws {
        // VXLAN carrying a cut Ethernet frame: the inner packet's weird, about nothing, "_in_tunnel".
        let outer = Craft.udpPacket("10.0.0.1", 50000, "10.0.0.2", 4789, payload: Craft.vxlan([1, 2, 3, 4, 5, 6, 7, 8]))
        let (_, weirds, _) = weirdRows([Craft.ethernet(0x0800, outer)]) { $0.verifyChecksums = false }
        let weird = try #require(weirds.first)
        #expect(weird.name == "truncated_ethernet_frame_in_tunnel")
        #expect(weird.id == nil && weird.source == "ETHERNET")
    }

    @Test func theAnalyzerLimitIsZeeksAndItsWeirdNamesTheLastAnalyzer() throws {
        // Zeek's limit of 100 counts its root analyzer: 99 analyzers, here Ethernet and PBB
        // in turn, then the innermost Ethernet, IP and UDP.
        func nested(_ levels: Int) -> [UInt8] {
            var frame = Craft.ethernet(0x0800, Craft.udpPacket("10.0.0.1", 1000, "10.0.0.2", 2000))
            for _ in 0..<levels { frame = Craft.ethernet(0x88e7, Craft.pbb(frame)) }
            return frame
        }
        let (fits, none, _) = weirdRows([nested(48)])
        #expect(fits.count == 1 && none.isEmpty) // 99 analyzers
        let (records, weirds, _) = weirdRows([nested(49)])
        #expect(records.isEmpty)
        let weird = try #require(weirds.first)
        #expect(weird.name == "max_packet_analyzer_depth_exceeded" && weird.source == "ETHERNET")
    }

    @Test func weirdDetailsAreWordedAsZeekWordsThem() throws {
        // A UDP header stating more than the datagram holds: UDP_datagram_length_mismatch, "A != B".
        let s = Craft.address("10.0.0.1"), d = Craft.address("10.0.0.2")
        var segment = Craft.udp(1000, 2000, payload: [1, 2, 3, 4], from: s, to: d)
        segment[4] = 0
        segment[5] = 30
        segment[6] = 0 // no checksum (IPv4), so that only the length is wrong
        segment[7] = 0
        let (_, weirds, _) = weirdRows([Craft.ethernet(0x0800, Craft.ipv4(s, d, proto: 17, segment))])
        let weird = try #require(weirds.first)
        #expect(weird.name == "UDP_datagram_length_mismatch")
        #expect(weird.addl == "30 != 12")
        #expect(weird.source == "UDP" && weird.uid != nil)
    }

    @Test func samplingKeepsTheThresholdThenEveryRateth() {
        let x = WeirdName(.truncatedIP)
        var sampling = WeirdSampling()
        sampling.threshold = 2
        sampling.rate = 3
        sampling.duration = 100
        var places = WeirdPlaces<UInt64>(bound: 10, anyPlace: 0)
        let permitted = (1...9).map { _ in places.check(x, in: UInt64(0), at: 10, sampling, hold: 0) == .passes }
        // 1, 2 (the threshold), then the 3rd, 6th, ... beyond it: 5 and 8.
        #expect(permitted == [true, true, false, false, true, false, false, true, false])
        // The period over, counting starts again.
        let again = (1...3).map { _ in places.check(x, in: UInt64(0), at: 110, sampling, hold: 0) == .passes }
        #expect(again == [true, true, false])
    }

    @Test func aWeirdLetThroughHoldsItsRepeatsBack() {
        let x = WeirdName(.truncatedIP)
        var places = WeirdPlaces<UInt64>(bound: 10, anyPlace: 0)
        let sampling = WeirdSampling()
        #expect(places.check(x, in: UInt64(1), at: 0, sampling, hold: 50) == .passes)
        places.pass(x, in: UInt64(1), at: 0)
        #expect(places.check(x, in: UInt64(1), at: 49, sampling, hold: 50) == .repeated)
        #expect(places.check(x, in: UInt64(2), at: 49, sampling, hold: 50) == .passes) // another place
        #expect(places.check(x, in: UInt64(1), at: 50, sampling, hold: 50) == .passes)
    }

    @Test func aPlaceIsForgottenWithAllItsNames() {
        var places = WeirdPlaces<UInt64>(bound: 1000, anyPlace: 0)
        let sampling = WeirdSampling()
        let names = [WeirdName(.truncatedIP), WeirdName(.synSeqJump), WeirdName(.dnsUnknownOpcode)]
        // Many places, so that probe sequences cross and wrap; then every other one forgotten.
        for place in UInt64(1)...300 {
            for name in names { _ = places.check(name, in: place &* 0x9e37_79b9, at: 0, sampling, hold: 100) }
        }
        #expect(places.count == 900)
        for place in stride(from: UInt64(2), through: 300, by: 2) { places.forget(place &* 0x9e37_79b9) }
        #expect(places.count == 450)
        for place in UInt64(1)...300 {
            places.pass(names[0], in: place &* 0x9e37_79b9, at: 0)
            // The ones kept are found again (held back); the forgotten ones start afresh.
            let verdict = places.check(names[0], in: place &* 0x9e37_79b9, at: 1, sampling, hold: 100)
            #expect(verdict == (place % 2 == 1 ? .repeated : .passes))
        }
    }

    @Test func aFloodOfConnectionsWithWeirdsLogsEachOnce() throws {
        // More connections with a weird than the reporter's table holds: each connection's
        // first weird is logged all the same (decided by the connection), its repeats not.
        var frames: [[UInt8]] = []
        for index in 0..<300 {
            var client = b
            client.client = IPAddress("10.7.\(index / 250).\(index % 250 + 1)")!
            client.serverPort = 53
            for _ in 0..<3 { frames.append(client.dns(fromClient: true, flags: 0x7800)) } // opcode 15
        }
        let (_, weirds, tracker) = weirdRows(frames) {
            $0.bareMode = false // the DNS analyzer runs
            $0.weirds.stateBound = 16
        }
        #expect(weirds.count == 300)
        #expect(Set(weirds.compactMap(\.uid)).count == 300)
        #expect(weirds.allSatisfy { $0.name == "DNS_unknown_opcode" && $0.addl == "15" })
        #expect(tracker.weirdsNotLogged == 600)
    }

    @Test func aLongConnectionLogsItsWeirdAgainAfterTheHold() {
        // A DNS message of an unknown opcode every 5 s on one connection: logged at once,
        // held back for ten minutes, logged again (the connection decides while it is
        // young, the reporter's table after).
        var server = b
        server.serverPort = 53
        let frame = server.dns(fromClient: true, flags: 0x7800)
        let times = (0..<131).map { 1_000_000_000_000 + UInt64($0) * 5_000_000_000 }
        for bound in [1000, 1] {
            let (records, weirds, _) = weirdRows(Array(repeating: frame, count: times.count), times: times) {
                $0.bareMode = false
                $0.weirds.stateBound = bound
            }
            #expect(records.count == 1)
            #expect(weirds.map { ($0.time - times[0]) / 1_000_000_000 } == [0, 600], "bound \(bound)")
        }
    }

    @Test func samplingStateIsBoundedAndCounted() {
        let x = WeirdName(.truncatedIP)
        var sampling = WeirdSampling()
        sampling.threshold = 0
        sampling.rate = 1
        var places = WeirdPlaces<UInt64>(bound: 2, anyPlace: 0)
        let first = [1, 2, 3].map { places.check(x, in: UInt64($0), at: 10, sampling, hold: 0) }
        #expect(first == [.passes, .passes, .sampledOut]) // no room for the third, nothing expired
        #expect(places.overflow == 1 && places.count == 2)
        let later = places.check(x, in: UInt64(3), at: 10 + sampling.duration, sampling, hold: 0) // the old ones expired
        #expect(later == .passes)
    }

    @Test func policyActions() {
        var policy = WeirdPolicy(actions: ["FIN_storm": .notice, "bad_TCP_header_len": .ignore, "truncated_IP": .logOnce])
        func admit(_ weird: Weird, from host: String, uid: UInt64 = 1, tunnelled: Bool = false) -> Bool? {
            policy.admit(WeirdName(weird, tunnelled: tunnelled), about: .connection(uid), originator: IPAddress(host)!, at: 0)
        }
        #expect(admit(.badTCPHeaderLen, from: "10.0.0.1") == nil) // ignored
        #expect(admit(.synSeqJump, from: "10.0.0.1") == false) // not in the table: logged, no notice
        #expect(admit(.synSeqJump, from: "10.0.0.1") == false) // (repeats are held back by WeirdPlaces)
        #expect(admit(.truncatedIP, from: "10.0.0.1") == false)
        #expect(admit(.truncatedIP, from: "10.0.0.2", uid: 2) == nil) // once, whatever it is about
        #expect(admit(.truncatedIP, from: "10.0.0.2", tunnelled: true) == false) // another name, the default action
        #expect(WeirdPolicy.hold(for: WeirdName(.badTCPChecksum)) == 0) // checksum weirds: never held back as repeats
        #expect(WeirdPolicy.hold(for: WeirdName(.synSeqJump)) == 600_000_000_000)
        // Zeek's own table: bad_TCP_checksum is logged once per originator.
        var zeek = WeirdPolicy()
        let checksums = ["10.0.0.1", "10.0.0.1", "10.0.0.2"].enumerated().map {
            zeek.admit(WeirdName(.badTCPChecksum), about: .connection(UInt64($0.offset)), originator: IPAddress($0.element)!, at: 0)
        }
        #expect(checksums == [false, nil, false])
    }

    @Test func weirdLoggingCanBeTurnedOffAndSamplingSet() throws {
        let cut: [UInt8] = Array(b.udp(fromClient: true, payload: 4).prefix(12))
        let (_, none, tracker) = weirdRows([cut]) { $0.weirds.enabled = false }
        #expect(none.isEmpty && tracker.weirds["truncated_ethernet_frame"] == 1)
        var settings = AnalysisSettings()
        let took = try ["Weird::sampling_threshold=5", "Weird::sampling_duration=2min"].map { try settings.take($0) }
        #expect(took == [true, true])
        #expect(throws: AnalysisSettingError.self) { try settings.take("Weird::sampling_rate=often") }
        var configuration = AnalysisConfiguration()
        settings.apply(to: &configuration)
        #expect(configuration.weirds.sampling.threshold == 5 && configuration.weirds.sampling.duration == 120_000_000_000)
        #expect(configuration.weirds.sampling.rate == 1000)
    }

    @Test func rowsHaveZeeksFieldsAndNoticesGoToNoticeLog() throws {
        let id = WeirdRecord.WeirdID(origAddress: IPAddress("10.0.0.1")!, origPort: 80, respAddress: IPAddress("10.0.0.2")!, respPort: 443, proto: 6)
        var record = WeirdRecord(time: 5_000_000_000, uid: "CabC", id: id, name: "FIN_storm", addl: "x", peer: "worker-1", source: "TCP")
        record.notice = true
        #expect(LogSchema.weird.fields.map(\.name) == ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "name",
                                                       "addl", "notice", "peer", "source"])
        #expect(record.logValues.count == LogSchema.weird.fields.count)
        let notice = record.noticeValues
        #expect(notice.count == LogSchema.notice.fields.count)
        guard case .enum("Weird::Activity") = notice[10], case .string("FIN_storm") = notice[11], case .string("x") = notice[12],
              case .enum("tcp") = notice[9], case .string("worker-1") = notice[17] else {
            Issue.record("notice row: \(notice)")
            return
        }
    }

    @Test func trawlWritesWeirdLogOnlyWhenThereIsAWeird() throws {
        let dir = try TemporaryDirectory()
        func write(_ name: String, _ frames: [[UInt8]]) throws -> String {
            let path = dir.file(name)
            let writer = try TraceWriter(path: path, linkType: 1)
            for (index, frame) in frames.enumerated() {
                try frame.withUnsafeBytes { try writer.write(timestampNanoseconds: 1_600_000_000_000_000_000 + UInt64(index) * 1_000_000,
                                                             wireLength: frame.count, bytes: $0) }
            }
            try writer.finish()
            return path
        }
        let clean = try write("clean.pcap", [b.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1)])
        let weird = try write("weird.pcap", [b.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1),
                                             b.tcp(fromClient: false, flags: TCPFlag.syn | TCPFlag.ack, seq: 9, ack: 2, badChecksum: true)])
        let cleanLogs = dir.file("clean"), weirdLogs = dir.file("weird")
        var summaries: [String] = []
        for (trace, logs) in [(clean, cleanLogs), (weird, weirdLogs)] {
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let result = try trawl(["-r", trace, "--logdir", logs])
            #expect(result.status == 0, "\(result.stderr)")
            summaries.append(result.stdout)
        }
        #expect(!summaries[0].contains("weird"))
        #expect(summaries[1].contains("weird.log: 1 rows, 0 held back"), "\(summaries[1])")
        #expect(!FileManager.default.fileExists(atPath: cleanLogs + "/weird.log"))
        let text = try String(contentsOfFile: weirdLogs + "/weird.log", encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.contains("#path\tweird"))
        #expect(lines.contains("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tname\taddl\tnotice\tpeer\tsource"))
        #expect(lines.contains("#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tbool\tstring\tstring"))
        #expect(lines.last?.hasPrefix("#close") == true)
        let rows = lines.filter { !$0.hasPrefix("#") }.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.count == 1)
        let conn = try String(contentsOfFile: weirdLogs + "/conn.log", encoding: .utf8).split(separator: "\n").first { !$0.hasPrefix("#") }
        let uid = conn.map { String($0.split(separator: "\t")[1]) }
        #expect(rows.first.map { Array($0[1...10]) } == [uid ?? "?", "10.1.1.1", "40000", "192.0.2.80", "80", "bad_TCP_checksum", "-", "F", "zeek", "TCP"])
    }

    @Test func logdirIsMadeAndAMissingPluginPathEntryIsSaid() throws {
        let dir = try TemporaryDirectory()
        let trace = dir.file("t.pcap")
        let writer = try TraceWriter(path: trace, linkType: 1)
        let frame = b.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1)
        try frame.withUnsafeBytes { try writer.write(timestampNanoseconds: 1_600_000_000_000_000_000, wireLength: frame.count, bytes: $0) }
        try writer.finish()
        let result = try trawl(["-r", trace, "--logdir", dir.file("new/deeper")],
                               environment: ["TRAWL_PLUGIN_PATH": dir.file("no-such-plugins")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("new/deeper/conn.log")))
        #expect(result.stderr.contains("warning: plugin \(dir.file("no-such-plugins")): TRAWL_PLUGIN_PATH names it, but it does not exist; ignored"),
                "\(result.stderr)")
    }
}

