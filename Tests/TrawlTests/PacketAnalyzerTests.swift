import Testing
@testable import TrawlAnalysis
import TrawlCore

/// One crafted frame per link layer and shim Zeek decodes: each must reach the UDP
/// connection inside it, with the right addresses and ports.
@Suite struct LinkLayerTests {
    /// The usual frame, Ethernet II with IPv4, takes a shortcut past the general walk of the
    /// link layers: only while the registry sends those EtherTypes to IP. An embedder's
    /// registry that sends IPv4 elsewhere is still obeyed.
    @Test func theEthernetShortcutFollowsTheRegistry() {
        let frame = Craft.ethernet(0x0800, Craft.udpPacket("10.0.0.1", 1000, "10.0.0.2", 2000))
        #expect(analyseFrames([frame]).records.count == 1)
        let (records, tracker) = analyseFrames([frame]) { configuration in
            configuration.registry.set(.ethernet, Dispatch([(0x0800, .arp), (0x86dd, .ip)]))
        }
        #expect(records.isEmpty)
        #expect(tracker.packetsIgnored == 1)
    }

    static let v4 = Craft.udpPacket("10.0.0.1", 1234, "10.0.0.2", 5678)
    static let v6 = Craft.udpPacket("2001:db8::1", 1234, "2001:db8::2", 5678)

    static let cases: [(String, UInt32, [UInt8])] = {
        var all: [(String, UInt32, [UInt8])] = []
        for (family, ip) in [("IPv4", v4), ("IPv6", v6)] {
            let type = Craft.etherType(ip)
            all += [
                ("Ethernet " + family, 1, Craft.ethernet(type, ip)),
                ("Cisco FabricPath " + family, 1, Craft.fabricPath(Craft.ethernet(type, ip))),
                ("802.1Q " + family, 1, Craft.ethernet(0x8100, Craft.vlan(type, ip))),
                ("QinQ " + family, 1, Craft.ethernet(0x88a8, Craft.vlan(0x8100, Craft.vlan(type, ip)))),
                ("MPLS " + family, 1, Craft.ethernet(0x8847, Craft.mpls(ip))),
                ("PBB " + family, 1, Craft.ethernet(0x88e7, Craft.pbb(Craft.ethernet(type, ip)))),
                ("VN-Tag " + family, 1, Craft.ethernet(0x8926, Craft.vntag(0x8100, Craft.vlan(type, ip)))),
                ("PPPoE " + family, 1, Craft.ethernet(0x8864, Craft.pppoe(ip))),
                ("802.3 SNAP " + family, 1, Craft.ieee8023(Craft.snap(type, ip))),
                ("802.11 " + family, 105, Craft.ieee80211(ip)),
                ("802.11 QoS " + family, 105, Craft.ieee80211(ip, qos: true)),
                ("radiotap " + family, 127, Craft.radiotap(Craft.ieee80211(ip))),
                ("NFLOG " + family, 239, Craft.nflog(ip)),
                ("BSD null " + family, 0, Craft.null(ip)),
                ("OpenBSD loop " + family, 108, Craft.loop(ip)),
                ("PPP " + family, 9, Craft.ppp(ip, framed: false)),
                ("PPP in HDLC framing " + family, 9, Craft.ppp(ip, framed: true)),
                ("PPP serial " + family, 50, Craft.ppp(ip, framed: true)),
                ("Linux SLL " + family, 113, Craft.linuxSLL(ip)),
                ("Linux SLL2 " + family, 276, Craft.linuxSLL2(ip)),
                ("FDDI " + family, 10, Craft.fddi(ip)),
                ("raw IP " + family, 101, ip),
                ("raw IP (DLT_RAW 12) " + family, 12, ip),
                ("raw " + family + " (228/229)", family == "IPv4" ? 228 : 229, ip),
            ]
        }
        return all
    }()

    @Test(arguments: cases)
    func reachesTheConnectionInside(name: String, linkType: UInt32, frame: [UInt8]) throws {
        let (records, tracker) = analyseFrames([frame], linkType: linkType)
        let r = try #require(records.first, "\(name): \(tracker.weirds)")
        #expect(records.count == 1)
        #expect(r.proto == 17 && r.origPort == 1234 && r.respPort == 5678)
        #expect(r.origAddress.isV4 == (frame.count > 0 && name.contains("IPv4")))
        #expect(r.origPackets == 1 && r.origBytes == 4)
        #expect(tracker.weirds.isEmpty, "\(name): \(tracker.weirds)")
    }

    /// What Zeek does not follow gives no connection, and says why (or is harmless).
    @Test func framesZeekDoesNotFollow() {
        let ip = Self.v4
        // VN-Tag leads to VLAN tags only; an LLC frame (no SNAP) names no protocol Zeek knows.
        let vntagIP = analyseFrames([Craft.ethernet(0x8926, Craft.vntag(0x0800, ip))])
        #expect(vntagIP.records.isEmpty && vntagIP.tracker.weirds["unknown_protocol"] == 1)
        let llc = analyseFrames([Craft.ieee8023([0x42, 0x42, 0x03] + ip)])
        #expect(llc.records.isEmpty && llc.tracker.weirds["unknown_protocol"] == 1)
        let novell = analyseFrames([Craft.ieee8023([0xff, 0xff] + ip)])
        #expect(novell.records.isEmpty && novell.tracker.weirds["no_suitable_analyzer_found"] == 1)
        // ARP and 802.11 management frames are no connections and nothing wrong.
        let arp = analyseFrames([Craft.ethernet(0x0806, [UInt8](repeating: 0, count: 28))])
        #expect(arp.records.isEmpty && arp.tracker.weirds.isEmpty && arp.tracker.packetsIgnored == 1)
        var beacon = Craft.ieee80211(ip)
        beacon[0] = 0x80 // management: beacon
        let management = analyseFrames([beacon], linkType: 105)
        #expect(management.records.isEmpty && management.tracker.weirds.isEmpty && management.tracker.packetsIgnored == 1)
        // An 802.3 length past the frame's end and an undefined EtherType.
        let undefined = analyseFrames([Craft.ethernet(0x05ee, ip)]) // 1518: neither a length nor a type
        #expect(undefined.tracker.weirds["undefined_ether_type"] == 1)
    }

    @Test func ethernetPaddingIsNotPayload() throws {
        // A 60-byte minimum frame: the IP header's length decides, not what was captured.
        let padded = Craft.ethernet(0x0800, Self.v4) + [UInt8](repeating: 0, count: 18)
        let r = try #require(analyseFrames([padded]).records.first)
        #expect(r.origIPBytes == UInt64(Self.v4.count) && r.origBytes == 4)
    }

    @Test func nestedPBBStopsAtZeeksAnalyzerLimit() {
        var frame = Craft.ethernet(0x0800, Self.v4)
        for _ in 0..<60 { frame = Craft.ethernet(0x88e7, Craft.pbb(frame)) }
        let (records, tracker) = analyseFrames([frame])
        #expect(records.isEmpty)
        #expect(tracker.weirds["max_packet_analyzer_depth_exceeded"] == 1)
        // Fewer levels are followed.
        var shallow = Craft.ethernet(0x0800, Self.v4)
        for _ in 0..<10 { shallow = Craft.ethernet(0x88e7, Craft.pbb(shallow)) }
        #expect(analyseFrames([shallow]).records.count == 1)
    }

    @Test func an80211AMSDUCarriesSeveralPackets() throws {
        let first = Craft.snap(0x0800, Self.v4), second = Craft.snap(0x0800, Craft.udpPacket("10.0.0.3", 9, "10.0.0.4", 10))
        func subframe(_ payload: [UInt8]) -> [UInt8] {
            [UInt8](repeating: 0x33, count: 12) + Craft.be16(UInt16(payload.count)) + payload
                + [UInt8](repeating: 0, count: payload.count % 4)
        }
        var header: [UInt8] = [0x88, 0x02, 0, 0] + [UInt8](repeating: 0x11, count: 18) + [0, 0] + [0x80, 0] // QoS: A-MSDU
        header += subframe(first) + subframe(second)
        let (records, tracker) = analyseFrames([header], linkType: 105)
        #expect(Set(records.map(\.respPort)) == [5678, 10], "\(tracker.weirds)")
    }
}

/// IPv6's extension headers, as Zeek reads them.
@Suite struct IPv6HeaderTests {
    let source = Craft.address("2001:db8::1"), destination = Craft.address("2001:db8::2")
    let final = Craft.address("2001:db8::99"), home = Craft.address("2001:db8::77")

    func udp(from s: IPAddress, to d: IPAddress) -> [UInt8] { Craft.udp(1, 2, payload: [0, 0], from: s, to: d) }

    @Test func aRoutingHeaderNamesTheFinalDestination() throws {
        // Type 0 with one segment left: the connection is to the last address listed.
        let routing: [UInt8] = [0, 1, 0, 0, 0, 0] + Craft.bytes(of: final)
        let packet = Craft.ipv6(source, destination, next: 17, udp(from: source, to: final), extensions: [(43, routing)])
        let (records, tracker) = analyseFrames([packet], linkType: 101)
        let r = try #require(records.first)
        #expect(r.respAddress == final && r.origAddress == source)
        #expect(tracker.weirds["routing0_hdr"] == 1) // deprecated, as Zeek says each time
        // Mobile IPv6's type 2 too, without the weird.
        let type2: [UInt8] = [2, 1, 0, 0, 0, 0] + Craft.bytes(of: final)
        let mobile = Craft.ipv6(source, destination, next: 17, udp(from: source, to: final), extensions: [(43, type2)])
        let m = analyseFrames([mobile], linkType: 101)
        #expect(m.records.first?.respAddress == final && m.tracker.weirds.isEmpty)
    }

    @Test func aHomeAddressOptionNamesTheSource() throws {
        let option: [UInt8] = [201, 16] + Craft.bytes(of: home) // then padding to 8-byte units
        let packet = Craft.ipv6(source, destination, next: 17, udp(from: home, to: destination), extensions: [(60, [1, 2, 0, 0] + option)])
        let r = try #require(analyseFrames([packet], linkType: 101).records.first)
        #expect(r.origAddress == home)
    }

    @Test func espMobilityAndNoNextHeaderMakeNoConnection() {
        let esp = Craft.ipv6(source, destination, next: 50, [0, 0, 0, 1, 0, 0, 0, 1] + [UInt8](repeating: 9, count: 24))
        let binding: [UInt8] = [5, 0, 0, 0, 0, 0] // mobility header: type 5, checksum left 0
        let mobility = Craft.ipv6(source, destination, next: 59, [], extensions: [(135, binding)])
        let nothing = Craft.ipv6(source, destination, next: 59, [])
        let (records, tracker) = analyseFrames([esp, mobility, nothing], linkType: 101) { $0.verifyChecksums = false }
        #expect(records.isEmpty)
        #expect(tracker.packetsIgnored == 2)
        #expect(tracker.weirds["ipv6_no_next"] == 1)
        // With checksums checked, the mobility header's must be right.
        #expect(analyseFrames([mobility], linkType: 101).tracker.weirds["bad_MH_checksum"] == 1)
    }

    @Test func hipAndShim6AreTransportsNotExtensionHeaders() throws {
        let hip = Craft.ipv6(source, destination, next: 139, [59, 0, 0, 0, 0, 0, 0, 0])
        let r = try #require(analyseFrames([hip], linkType: 101).records.first)
        #expect(r.proto == 139 && r.origPort == 0)
    }

    @Test func anAtomicFragmentIsReassembledAndLosesItsFragmentHeader() throws {
        // A fragment header saying "offset 0, no more": Zeek puts it through reassembly, so
        // the IP bytes counted are the datagram's without the 8-byte header.
        let segment = udp(from: source, to: destination)
        let atomic = Craft.ipv6(source, destination, next: 17, segment, extensions: [(44, [0, 0, 0, 0, 0, 0, 9])])
        let r = try #require(analyseFrames([atomic], linkType: 101).records.first)
        #expect(r.origIPBytes == UInt64(40 + segment.count))
    }
}

/// The transports' own checks, as Zeek's TCP, UDP and ICMP analyzers make them.
@Suite struct TransportTests {
    let a = Craft.address("10.0.0.1"), b = Craft.address("10.0.0.2")

    @Test func aTCPHeaderCutShortMakesAConnectionButCountsNoPacket() throws {
        // The data offset says 60 bytes of header; 20 are there.
        var segment = Craft.tcp(1000, 80, flags: TCPFlag.syn, from: a, to: b)
        segment[12] = 0xf0
        let (records, tracker) = analyseFrames([Craft.ipv4(a, b, proto: 6, segment)], linkType: 101) { $0.verifyChecksums = false }
        let r = try #require(records.first)
        #expect(r.origPackets == 0 && tracker.weirds["truncated_header"] == 1)
        // Fewer than 20 bytes: no connection at all.
        let stub = Craft.ipv4(a, b, proto: 6, Array(segment[0..<12]))
        let none = analyseFrames([stub], linkType: 101) { $0.verifyChecksums = false }
        #expect(none.records.isEmpty && none.tracker.weirds["truncated_header"] == 1)
    }

    @Test func anICMPMessageNotAllCapturedIsSeenButNotCounted() throws {
        let echo = Craft.ipv4(a, b, proto: 1, Craft.icmpEcho(request: true, payload: 56))
        let cut = Array(echo[0..<(echo.count - 20)])
        let (records, _) = analyseFrames([cut], linkType: 101, wireLengths: [echo.count])
        let r = try #require(records.first)
        #expect(r.origPackets == 0 && r.origIPBytes == 0 && r.origBytes == 56)
    }

    @Test func oneWayICMPMessagesKeepTheirDirection() {
        // Destination unreachable both ways, type 3 code 3: two connections, as in Zeek.
        var message: [UInt8] = [3, 3, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 28)
        let sum = Craft.checksum(message)
        message[2] = UInt8(sum >> 8)
        message[3] = UInt8(sum & 0xff)
        let there = Craft.ipv4(a, b, proto: 1, message), back = Craft.ipv4(b, a, proto: 1, message)
        let (records, _) = analyseFrames([there, back], linkType: 101)
        #expect(records.count == 2)
        #expect(Set(records.map(\.origAddress)) == [a, b])
    }

    @Test func aUDPChecksumOfZeroIsNoChecksumOverIPv4() throws {
        var segment = Craft.udp(53, 1024, payload: [1, 2], from: a, to: b)
        segment[6] = 0
        segment[7] = 0
        let r = try #require(analyseFrames([Craft.ipv4(a, b, proto: 17, segment)], linkType: 101).records.first)
        #expect(r.origPackets == 1 && r.history == "D")
    }

    @Test func aPacketNotAllOnTheWireOrNotAllCapturedIsRefused() {
        let packet = Craft.udpPacket("10.0.0.1", 1, "10.0.0.2", 2)
        // The header states more than the wire carried: Zeek's truncated_IP_len.
        let short = analyseFrames([packet], linkType: 101, wireLengths: [packet.count - 1])
        #expect(short.records.isEmpty && short.tracker.weirds["truncated_IP_len"] == 1)
        // A zero total length (segmentation offload) is believed only with -C.
        var zero = packet
        zero[2] = 0
        zero[3] = 0
        #expect(analyseFrames([zero], linkType: 101) { $0.verifyChecksums = false }.records.count == 1)
        #expect(analyseFrames([zero], linkType: 101).tracker.weirds["ip_hdr_len_zero"] == 1)
    }

    @Test func igmpIsNoConnection() {
        let igmp = Craft.ipv4(a, Craft.address("224.0.0.1"), proto: 2, [0x11, 0, 0xee, 0xff, 0, 0, 0, 0])
        let (records, tracker) = analyseFrames([igmp], linkType: 101)
        #expect(records.isEmpty && tracker.packetsIgnored == 1)
    }
}
