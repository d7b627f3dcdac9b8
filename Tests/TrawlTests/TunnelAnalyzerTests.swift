import Testing
@testable import TrawlAnalysis
import TrawlCore

/// Every tunnel Zeek decapsulates, crafted: the connection inside is logged with the tunnel
/// as its parent; a UDP tunnel is a connection of its own, an IP tunnel (IP in IP, GRE) is
/// not.
@Suite struct TunnelAnalyzerTests {
    let outerA = "198.51.100.1", outerB = "198.51.100.2"
    /// The packet inside: UDP from 10.9.0.1:4444 to 10.9.0.2:53.
    let inner = Craft.udpPacket("10.9.0.1", 4444, "10.9.0.2", 53)
    let inner6 = Craft.udpPacket("2001:db8::a", 4444, "2001:db8::b", 53)

    /// A UDP packet between the outer addresses, as an Ethernet frame.
    func udpFrame(_ sport: UInt16, _ dport: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let ip = Craft.udpPacket(outerA, sport, outerB, dport, payload: payload)
        return Craft.ethernet(0x0800, ip)
    }

    func ipFrame(proto: UInt8, _ payload: [UInt8]) -> [UInt8] {
        Craft.ethernet(0x0800, Craft.ipv4(Craft.address(outerA), Craft.address(outerB), proto: proto, payload))
    }

    /// The inner connection and the tunnel's uid it names; the outer UDP connection if any.
    func carried(_ frames: [[UInt8]], innerPort: UInt16 = 53) throws -> (inner: ConnectionRecord, outer: ConnectionRecord?, all: [ConnectionRecord]) {
        let (records, tracker) = analyseFrames(frames)
        let carried = try #require(records.first { $0.respPort == innerPort }, "\(tracker.weirds)")
        #expect(carried.tunnelParents.count == 1)
        let outer = records.first { $0.uid == carried.tunnelParents.first }
        return (carried, outer, records)
    }

    @Test func vxlan() throws {
        let (inner, outer, all) = try carried([udpFrame(50000, 4789, Craft.vxlan(Craft.ethernet(0x0800, self.inner)))])
        #expect(inner.origPort == 4444 && outer?.respPort == 4789 && all.count == 2)
    }

    @Test(arguments: [UInt16(0x6558), 0x0800])
    func geneve(protocolType: UInt16) throws {
        let payload = protocolType == 0x6558 ? Craft.ethernet(0x0800, inner) : inner
        let (_, outer, _) = try carried([udpFrame(50000, 6081, Craft.geneve(protocolType, payload))])
        #expect(outer?.respPort == 6081)
    }

    @Test func gtpv1UserPlane() throws {
        let (_, outer, _) = try carried([udpFrame(2152, 2152, Craft.gtp(inner))])
        #expect(outer?.respPort == 2152)
        // A control message (not a G-PDU) carries nothing; the UDP connection is all there is.
        var control = Craft.gtp(inner)
        control[1] = 16 // create PDP context request
        #expect(analyseFrames([udpFrame(2123, 2123, control)]).records.count == 1)
    }

    @Test func gtpv1WithTrailingBytesIsAViolationAndCarriesNothing() {
        let (records, tracker) = analyseFrames([udpFrame(2152, 2152, Craft.gtp(inner) + [0, 0, 0, 0])])
        #expect(records.count == 1)
        #expect(tracker.weirds["GTPV1_violation"] == 1)
    }

    @Test func teredoWithAnOriginIndication() throws {
        let (inner, outer, _) = try carried([udpFrame(3544, 40000, Craft.teredo(inner6, origin: true))])
        #expect(inner.origAddress == Craft.address("2001:db8::a") && outer?.origPort == 40000)
    }

    @Test func teredoBubblesKeepTheTunnelAndMakeNoConnection() {
        let bubble = Craft.ipv6(Craft.address("2001:0::1"), Craft.address("2001:0::2"), next: 59, [])
        let (records, tracker) = analyseFrames([udpFrame(40000, 3544, Craft.teredo(bubble))])
        #expect(records.count == 1 && records.first?.respPort == 3544)
        #expect(tracker.weirds.isEmpty && tracker.packetsIgnored == 1)
    }

    @Test func teredoIsFoundOnAnyPortByZeeksDetection() throws {
        // A bubble between Teredo addresses (2001:0::/32) on ports nobody registered.
        let bubble = Craft.ipv6(Craft.address("2001:0::1"), Craft.address("2001:0::2"), next: 59, [])
        let (records, tracker) = analyseFrames([udpFrame(40000, 40001, Craft.teredo(bubble))])
        #expect(records.count == 1 && tracker.packetsIgnored == 1)
    }

    @Test func ayiyaOnItsPortAndByDetection() throws {
        _ = try carried([udpFrame(40000, 5072, Craft.ayiya(inner))])
        _ = try carried([udpFrame(40000, 40001, Craft.ayiya(inner6))])
    }

    @Test func ipInIP() throws {
        let (_, outer, all) = try carried([ipFrame(proto: 4, inner)])
        #expect(outer == nil && all.count == 1) // an IP tunnel has a uid but no row
        let six = Craft.ethernet(0x86dd, Craft.ipv6(Craft.address("2001:db8::1"), Craft.address("2001:db8::2"), next: 41, inner6))
        _ = try carried([six])
    }

    @Test func greCarryingIPEthernetAndERSPAN() throws {
        let ethernet = Craft.ethernet(0x0800, inner)
        for gre in [
            Craft.gre(0x0800, inner),
            Craft.gre(0x0800, inner, flags: 0xb000, extra: [UInt8](repeating: 0, count: 12)), // checksum, key, sequence
            Craft.gre(0x6558, ethernet),
            Craft.gre(0x88be, ethernet),                                                         // ERSPAN type I
            Craft.gre(0x88be, [UInt8](repeating: 0, count: 8) + ethernet, flags: 0x1000, extra: [0, 0, 0, 1]), // type II
            Craft.gre(0x22eb, [UInt8](repeating: 0, count: 12) + ethernet),                      // type III
        ] {
            let (_, outer, all) = try carried([ipFrame(proto: 47, gre)])
            #expect(outer == nil && all.count == 1)
        }
    }

    @Test func enhancedGREForPPTP() throws {
        // Version 1, key present (payload length, call id), then PPP: address, control, IPv4.
        let pptp = Craft.gre(0x880b, [0xff, 0x03, 0x00, 0x21] + inner, flags: 0x2001, extra: Craft.be16(UInt16(inner.count + 4)) + [0, 1])
        _ = try carried([ipFrame(proto: 47, pptp)])
        // The packet inside must be exactly as long as its header says.
        let long = Craft.gre(0x880b, [0xff, 0x03, 0x00, 0x21] + inner + [0], flags: 0x2001, extra: [0, 0, 0, 1])
        #expect(analyseFrames([ipFrame(proto: 47, long)]).tracker.weirds["inner_IP_payload_length_mismatch"] == 1)
    }

    @Test func greOverUDP() throws {
        // As in Zeek, GRE hands over to the IP tunnel analyzer: the parent is the tunnel
        // between the outer addresses, not the UDP connection, which is logged beside it.
        let (_, outer, all) = try carried([udpFrame(50000, 4754, Craft.gre(0x0800, inner))])
        #expect(outer == nil && all.contains { $0.respPort == 4754 } && all.count == 2)
    }

    @Test func oneIPTunnelUIDPerAddressPairEitherWay() throws {
        let back = Craft.ethernet(0x0800, Craft.ipv4(Craft.address(outerB), Craft.address(outerA), proto: 4,
                                                      Craft.udpPacket("10.9.0.2", 53, "10.9.0.1", 4444)))
        let (records, _) = analyseFrames([ipFrame(proto: 4, inner), back, ipFrame(proto: 47, Craft.gre(0x0800, inner))])
        #expect(records.count == 1)
        #expect(records.first?.origPackets == 2 && records.first?.respPackets == 1)
    }

    @Test func tunnelsNestFourDeepAndNoDeeper() throws {
        func wrap(_ ip: [UInt8], _ depth: Int) -> [UInt8] {
            depth == 0 ? ip : wrap(Craft.ipv4(Craft.address("192.0.2.\(depth)"), Craft.address("192.0.2.\(depth + 100)"), proto: 4, ip), depth - 1)
        }
        let four = analyseFrames([Craft.ethernet(0x0800, wrap(inner, 4))])
        #expect(four.records.count == 1 && four.tracker.weirds.isEmpty)
        let five = analyseFrames([Craft.ethernet(0x0800, wrap(inner, 5))])
        #expect(five.records.isEmpty && five.tracker.weirds["exceeded_tunnel_max_depth"] == 1)
    }

    @Test func aViolationEndsATunnelForItsConnection() throws {
        // VXLAN without its I flag: Zeek's analyzer gives up on the connection; a good
        // packet after that is not decapsulated either.
        var bad = Craft.vxlan(Craft.ethernet(0x0800, inner))
        bad[0] = 0
        let good = Craft.vxlan(Craft.ethernet(0x0800, inner))
        let (records, tracker) = analyseFrames([udpFrame(50000, 4789, bad), udpFrame(50000, 4789, good)])
        #expect(records.count == 1 && records.first?.origPackets == 2)
        #expect(tracker.weirds["VXLAN_violation"] == 1)
    }

    /// A conversation whose packets come through different tunnels (each direction through
    /// its own VXLAN connection): every tunnel is a parent, and past Zeek's five changes of
    /// encapsulation the connection's history gets its X.
    @Test func changingTunnelsAreParentsUpToTheLimit() throws {
        var frames: [[UInt8]] = []
        for n in 0..<8 {
            let sport: UInt16 = n % 2 == 0 ? 50000 : 50001
            frames.append(udpFrame(sport, 4789, Craft.vxlan(Craft.ethernet(0x0800, inner))))
        }
        let (records, tracker) = analyseFrames(frames)
        let carried = try #require(records.first { $0.respPort == 53 })
        #expect(carried.tunnelParents.count == 2)
        #expect(carried.history == "DX")
        #expect(Set(carried.tunnelParents) == Set(records.filter { $0.respPort == 4789 }.map(\.uid)))
        #expect(tracker.weirds["tunnel_max_changes_per_connection_exceeded"] == 2)
        // Through one tunnel throughout: one parent, no change.
        let (steady, _) = analyseFrames(Array(repeating: udpFrame(50000, 4789, Craft.vxlan(Craft.ethernet(0x0800, inner))), count: 8))
        let one = try #require(steady.first { $0.respPort == 53 })
        #expect(one.tunnelParents.count == 1 && one.history == "D")
    }
}
