import Foundation
import Testing
import TrawlCore

/// A server of Tests/Fixtures/flows.py running in a namespace until the value goes away.
final class FlowServer {
    let process = Process()
    init(namespace: String, port: Int) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace, "/usr/bin/python3", Paths.flowsScript, "serve", String(port)]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The server prints "serving" once both sockets are bound.
        let line = out.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("serving") else { throw TestFailure("flow server did not start") }
    }
    deinit {
        // SIGKILL: the test process may have SIGTERM blocked, and a child inherits that mask.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

extension Paths {
    static var flowsScript: String { packageRoot + "/Tests/Fixtures/flows.py" }
}

/// A TCP or UDP conversation, the same whichever direction a packet went.
struct FlowKey: Hashable, CustomStringConvertible {
    let low: [UInt8], high: [UInt8], proto: UInt8
    /// Ethernet + IPv4 + ports; nil for anything else.
    init?(_ packet: RecordedPacket) {
        let b = packet.bytes
        guard b.count >= 38, b[12] == 0x08, b[13] == 0x00, b[23] == 6 || b[23] == 17 else { return nil }
        let ihl = Int(b[14] & 0x0f) * 4
        guard b.count >= 14 + ihl + 4 else { return nil }
        let source = Array(b[26..<30]) + Array(b[(14 + ihl)..<(14 + ihl + 2)])
        let destination = Array(b[30..<34]) + Array(b[(14 + ihl + 2)..<(14 + ihl + 4)])
        (low, high) = source.lexicographicallyPrecedes(destination) ? (source, destination) : (destination, source)
        proto = b[23]
    }
    var description: String { "\(proto == 6 ? "tcp" : "udp") \(low) <-> \(high)" }
}

@Suite(.serialized) struct AFPacketTests {
    static let rootOnly = Testing.ConditionTrait.enabled(if: isRoot, "AF_PACKET tests need root for namespaces and veth pairs")

    @Test(rootOnly) func twoProcessesWithOneFanoutIDSplitFlowsWithoutLoss() throws {
        let pair = try VethPair()
        let dir = try TemporaryDirectory()
        let filter = "tcp port 5001 or udp port 5001"
        let members = try (1...2).map { i in
            try BackgroundTrawl(namespace: pair.namespaceA, arguments: [
                "-i", "af_packet::\(pair.interfaceA)", "AF_Packet::fanout_id=61", "-f", filter, "-w", dir.file("member\(i).pcap"),
            ])
        }
        // Everything, with no fanout, as the reference for "nothing lost".
        let reference = try BackgroundTrawl(namespace: pair.namespaceA, arguments: [
            "-i", "af_packet::\(pair.interfaceA)", "AF_Packet::enable_fanout=F", "-f", filter, "-w", dir.file("all.pcap"),
        ])
        for capture in members + [reference] {
            #expect(capture.wait(for: "listening on", seconds: 10), "\(capture.stderr)")
        }
        let server = try FlowServer(namespace: pair.namespaceA, port: 5001)
        try pair.run(in: pair.namespaceB, ["/usr/bin/python3", Paths.flowsScript, "send", pair.addressA, "5001", "150", "150"])
        usleep(500_000)
        withExtendedLifetime(server) {}
        for capture in members + [reference] {
            let (status, stdout) = capture.stop()
            #expect(status == 0, "\(capture.stderr)")
            #expect(summaryFields(stdout)["dropped"]?.hasPrefix("0 by kernel") == true, "\(stdout)")
        }

        let split = try (1...2).map { try readPackets(dir.file("member\($0).pcap")) }
        let all = try readPackets(dir.file("all.pcap"))
        // Nothing lost, nothing duplicated: the members together saw exactly the reference.
        #expect((split[0] + split[1]).map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) }
            == all.map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) })
        let flows = split.map { Set($0.compactMap(FlowKey.init)) }
        let allFlows = Set(all.compactMap(FlowKey.init))
        #expect(allFlows.count == 300, "expected 150 TCP and 150 UDP conversations")
        // Each conversation, both directions, at exactly one member; both members got a share.
        #expect(flows[0].isDisjoint(with: flows[1]), "split flows: \(flows[0].intersection(flows[1]).prefix(3))")
        #expect(flows[0].union(flows[1]) == allFlows)
        #expect(!flows[0].isEmpty && !flows[1].isEmpty)
        for (member, packets) in split.enumerated() {
            for flow in flows[member] {
                let directions = Set(packets.filter { FlowKey($0) == flow }.map { Array($0.bytes[26..<30]) })
                #expect(directions.count == 2, "member \(member + 1) saw only one direction of \(flow)")
            }
        }
    }

    @Test(rootOnly) func strippedVLANTagsArePutBack() throws {
        let pair = try VethPair()
        let dir = try TemporaryDirectory()
        let out = dir.file("vlan.pcap")
        let capture = try BackgroundTrawl(namespace: pair.namespaceA, arguments: ["-i", "af_packet::\(pair.interfaceA)", "-w", out])
        #expect(capture.wait(for: "listening on", seconds: 10), "\(capture.stderr)")
        // Tagged frames sent raw from B; A's receive path moves the tag into metadata, as a
        // NIC with VLAN offload does, and AF_PACKET reports it beside the frame.
        try pair.run(in: pair.namespaceB, ["/usr/bin/python3", Paths.flowsScript, "vlan", pair.interfaceB, "42", "10"])
        usleep(400_000)
        #expect(capture.stop().status == 0, "\(capture.stderr)")
        // Frames of the UDP datagrams: 802.1Q tag with VLAN 42, then IPv4 to port 7777.
        let tagged = try readPackets(out).filter { $0.bytes.count > 42 && $0.bytes[12] == 0x81 && $0.bytes[13] == 0x00 }
        let udp = tagged.filter { $0.bytes[16] == 0x08 && $0.bytes[17] == 0x00 && $0.bytes[27] == 17 }
        #expect(udp.count == 10, "tagged frames: \(tagged.count)")
        #expect(udp.allSatisfy { (UInt16($0.bytes[14]) << 8 | UInt16($0.bytes[15])) & 0x0fff == 42 })
        #expect(udp.allSatisfy { UInt16($0.bytes[40]) << 8 | UInt16($0.bytes[41]) == 7777 })
        #expect(udp.allSatisfy { $0.wireLength == $0.bytes.count })
    }

    @Test(rootOnly) func aFanoutIDInUseOnAnotherInterfaceIsExplained() throws {
        let pair = try VethPair()
        let first = try BackgroundTrawl(namespace: pair.namespaceA, arguments: ["-i", "af_packet::\(pair.interfaceA)", "AF_Packet::fanout_id=77"])
        #expect(first.wait(for: "listening on", seconds: 10), "\(first.stderr)")
        let second = try pair.runAllowingFailure(in: pair.namespaceA, [Paths.trawl, "-i", "af_packet::lo", "AF_Packet::fanout_id=77"])
        #expect(second.status == 69) // busy
        #expect(second.stdout.isEmpty)
        #expect(second.stderr.hasPrefix("fatal error: problem with interface af_packet::lo (cannot join fanout group 77"))
        #expect(second.stderr.contains("each interface needs its own AF_Packet::fanout_id, e.g. AF_Packet::fanout_id=78"))
        // Another id on the other interface works beside it.
        let third = try BackgroundTrawl(namespace: pair.namespaceA, arguments: ["-i", "af_packet::lo", "AF_Packet::fanout_id=78"])
        #expect(third.wait(for: "listening on", seconds: 10), "\(third.stderr)")
        #expect(third.stop().status == 0)
        #expect(first.stop().status == 0)
    }

    @Test(rootOnly) func promiscuousModeLeavesTheInterfaceFlagAlone() throws {
        let pair = try VethPair()
        let capture = try BackgroundTrawl(namespace: pair.namespaceA, arguments: ["-i", "af_packet::\(pair.interfaceA)"])
        #expect(capture.wait(for: "listening on", seconds: 10), "\(capture.stderr)")
        // The first read opens the tap; give it a moment.
        usleep(200_000)
        let details = try pair.run(in: pair.namespaceA, ["ip", "-d", "link", "show", pair.interfaceA]).stdout
        let flags = details.split(separator: "\n").first.map(String.init) ?? ""
        #expect(!flags.contains("PROMISC"), "IFF_PROMISC was set: \(flags)")
        #expect(details.contains("promiscuity 1"), "no PACKET_MR_PROMISC membership: \(details)")
        #expect(capture.stop().status == 0)
        let after = try pair.run(in: pair.namespaceA, ["ip", "-d", "link", "show", pair.interfaceA]).stdout
        #expect(after.contains("promiscuity 0"))
    }

    @Test(rootOnly) func withoutPrivilegesTheErrorNamesTheCapabilities() throws {
        let result = try runProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                         "--inh-caps=-all", "--bounding-set=-all", Paths.trawl, "-i", "af_packet::lo"])
        #expect(result.status == 77) // sysexits' EX_NOPERM, which trawlctl explains
        #expect(result.stderr.contains("fatal error: problem with interface af_packet::lo (permission denied: AF_PACKET capture needs CAP_NET_RAW"))
        #expect(result.stderr.contains("\nhint: capturing needs root, or the capabilities CAP_NET_RAW and CAP_NET_ADMIN; grant them with: sudo setcap cap_net_raw,cap_net_admin=eip /"))
    }

    @Test func missingInterfaceAndBadGeometry() throws {
        let missing = try trawl(["-i", "af_packet::trawl-nope9"])
        #expect(missing.status == 66)
        #expect(missing.stderr.hasPrefix("fatal error: problem with interface af_packet::trawl-nope9 (No such device)"))
        let trace = try trawl(["-r", "af_packet::lo"])
        #expect(trace.stderr.hasPrefix("fatal error: type of packet source 'af_packet' not recognized, or mode not supported"))
        let mode = try trawl(["-i", "af_packet::lo", "AF_Packet::fanout_mode=sideways"])
        #expect(mode.stderr.hasPrefix("fatal error: invalid value 'sideways' for AF_Packet::fanout_mode: expected enum: hash, lb, cpu, rollover, random, qm"))
        if isRoot {
            let block = try trawl(["-i", "af_packet::lo", "AF_Packet::block_size=5000"])
            #expect(block.stderr.contains("AF_Packet::block_size must be a power of two"))
        }
    }
}

extension VethPair {
    func runAllowingFailure(in namespace: String, _ command: [String]) throws -> ProcessResult {
        try runProcess("/usr/bin/env", ["ip", "netns", "exec", namespace] + command)
    }
}

@Suite(.serialized) struct FanoutCheckAndPinningTests {
    /// In a namespace of its own, so that nothing else on the machine shares its loopback.
    @Test(AFPacketTests.rootOnly) func checkFanoutPassesForHashAndCatchesRoundRobin() throws {
        let pair = try VethPair()
        let hash = try pair.runAllowingFailure(in: pair.namespaceA, [Paths.trawl, "--check-fanout", "af_packet::lo", "--duration", "1"])
        #expect(hash.status == 0, "\(hash.stdout)\(hash.stderr)")
        #expect(hash.stdout.contains("flows split across members: 0"))
        #expect(hash.stdout.contains("result: symmetric"))
        let bothWays = summaryFields(hash.stdout)["flows seen"].flatMap { $0.split(separator: " ").last }.flatMap { Int($0) }
        #expect((bothWays ?? 0) > 50, "too little traffic to judge: \(hash.stdout)")

        // Round robin sends consecutive packets to different members: the check must say so.
        let roundRobin = try pair.runAllowingFailure(in: pair.namespaceA, [
            Paths.trawl, "--check-fanout", "af_packet::lo", "--duration", "1", "AF_Packet::fanout_mode=lb", "AF_Packet::fanout_id=5",
        ])
        #expect(roundRobin.status == 1)
        #expect(roundRobin.stdout.contains("result: NOT symmetric"))

        let quiet = try pair.runAllowingFailure(in: pair.namespaceA, [Paths.trawl, "--check-fanout", "af_packet::\(pair.interfaceA)", "--duration", "0.3"])
        #expect(quiet.status == 2)
        #expect(quiet.stdout.contains("result: inconclusive"))
    }

    @Test(AFPacketTests.rootOnly) func pinCPUSetsTheProcessAffinity() throws {
        let cpu = try #require(CPUAffinity.current().last)
        let pair = try VethPair()
        let capture = try BackgroundTrawl(namespace: pair.namespaceA, arguments: ["--pin-cpu", String(cpu), "-i", "af_packet::lo"])
        #expect(capture.wait(for: "listening on", seconds: 10), "\(capture.stderr)")
        let status = try String(contentsOfFile: "/proc/\(capture.process.processIdentifier)/status", encoding: .utf8)
        #expect(status.split(separator: "\n").contains("Cpus_allowed_list:\t\(cpu)"))
        #expect(capture.stop().status == 0)
    }

    @Test func pinCPUErrors() throws {
        let absent = try trawl(["--pin-cpu", "1000", "-r", "-"])
        #expect(absent.status == 1)
        #expect(absent.stderr.hasPrefix("fatal error: cannot pin to CPUs 1000: Invalid argument"))
        let bad = try trawl(["--pin-cpu", "x", "-r", "-"])
        #expect(bad.stderr.hasPrefix("trawl: --pin-cpu takes CPU numbers such as 2, 0,2 or 0-3, not 'x'"))
        #expect(CPUAffinity.parse("0-3,6") == [0, 1, 2, 3, 6])
        #expect(CPUAffinity.parse("3-1") == nil)
        #expect(CPUAffinity.parse("") == nil)
    }
}

/// Trawl::AF_Packet loaded into the test process, on this namespace's loopback.
@Suite(.serialized) struct AFPacketInProcessTests {
    static let registry: SourceRegistry = {
        let registry = SourceRegistry()
        if case let .success(plugin) = PluginLoader.loadLibrary(at: Paths.buildDirectory + "/libTrawlAFPacket.so") {
            _ = try? registry.register(plugin)
        }
        return registry
    }()

    /// Sends `count` UDP datagrams to 127.0.0.1:`port` from this process.
    static func sendLoopbackUDP(port: UInt16, count: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var payload = [UInt8](repeating: 0x42, count: 32)
        for _ in 0..<count {
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, &payload, payload.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// Reads until `expected` packets arrived or two seconds passed.
    static func collect(_ source: any PacketSource, expected: Int) throws -> [PacketFlags] {
        let batch = PacketBatch(capacity: 64)
        var flags: [PacketFlags] = []
        let deadline = Date().addingTimeInterval(2)
        while flags.count < expected && Date() < deadline {
            _ = try source.nextBatch(batch)
            for i in 0..<batch.count { flags.append(batch[i].flags) }
        }
        return flags
    }

    @Test(AFPacketTests.rootOnly, arguments: ["on", "off", "kernel"])
    func checksumModeBecomesPacketFlags(mode: String) throws {
        let port = UInt16(40_000 + Int(getpid() % 20_000))
        let settings = try OptionSettings(assignments: [
            "AF_Packet::checksum_validation_mode=\(mode)", "AF_Packet::enable_fanout=F", "AF_Packet::block_timeout=1",
        ], registry: Self.registry)
        let source = try Self.registry.open("af_packet::lo", mode: .live, settings: settings, timeoutMilliseconds: 50)
        defer { source.close() }
        try source.setFilter("udp dst port \(port)")
        #expect(source.info.isLive && source.info.linkType == 1 && source.info.selectableFD != nil)
        Self.sendLoopbackUDP(port: port, count: 5)
        // On lo each datagram is seen twice: on its way out (checksum left to "offload")
        // and on its way in (already trusted by the kernel).
        let flags = try Self.collect(source, expected: 10)
        #expect(flags.count == 10)
        switch mode {
        case "on": #expect(flags.allSatisfy { $0.isEmpty })
        case "off": #expect(flags.allSatisfy { $0 == .checksumVerified })
        default:
            #expect(flags.allSatisfy { $0 == .checksumVerified || $0 == .checksumPartial })
            #expect(flags.contains(.checksumPartial), "outgoing loopback packets carry TP_STATUS_CSUMNOTREADY")
        }
        let stats = try source.statistics()
        #expect(stats.received == 10)
        #expect(stats.dropped == 0)
    }

    @Test(AFPacketTests.rootOnly) func interruptWakesABlockedRead() throws {
        let settings = try OptionSettings(assignments: ["AF_Packet::enable_fanout=F"], registry: Self.registry)
        let source = try Self.registry.open("af_packet::lo", mode: .live, settings: settings, timeoutMilliseconds: 60_000)
        defer { source.close() }
        try source.setFilter("udp port 9") // nothing on the loopback matches
        // interrupt() is the one call the ABI allows from another thread.
        struct Handle: @unchecked Sendable { let source: any PacketSource }
        let handle = Handle(source: source)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { handle.source.interrupt() }
        let started = Date()
        let batch = PacketBatch(capacity: 8)
        #expect(try source.nextBatch(batch))
        #expect(batch.count == 0)
        #expect(Date().timeIntervalSince(started) < 5, "a 60 s wait was not interrupted")
    }

    @Test(AFPacketTests.rootOnly) func hardwareTimestampingOnVethIsRefusedClearly() throws {
        let pair = try VethPair()
        let result = try pair.runAllowingFailure(in: pair.namespaceA, [
            Paths.trawl, "-i", "af_packet::\(pair.interfaceA)", "AF_Packet::enable_hw_timestamping=T",
        ])
        #expect(result.status == 1)
        #expect(result.stderr.contains("hardware timestamping is not available on \(pair.interfaceA)"))
    }
}
