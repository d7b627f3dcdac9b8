import Testing
@testable import TrawlAnalysis
import TrawlCore

/// Everything traffic can grow has a bound, an expiry and a counter; the attacks that used
/// to crash the reassembly or grow memory without end are refused, and counted.
@Suite struct FragmentBoundsTests {
    let a = Craft.address("10.0.0.1"), b = Craft.address("10.0.0.2")

    /// An IPv4 fragment with `count` data bytes at `offset`.
    func fragment(id: UInt16 = 7, offset: Int, count: Int, more: Bool, source: IPAddress? = nil, proto: UInt8 = 17) -> [UInt8] {
        let field = UInt16(offset / 8) | (more ? 0x2000 : 0)
        return Craft.ipv4(source ?? a, b, proto: proto, [UInt8](repeating: 0x5a, count: count), id: id, fragment: field)
    }

    @Test func aPingOfDeathIsRefusedNotReassembled() {
        // ICMP fragments up to offset 65 528 with 1 480 bytes each: past the 65 535 bytes an
        // IPv4 header can state. The fragment that would go past is refused and counted.
        var frames: [[UInt8]] = []
        var offset = 0
        while offset <= 65_528 {
            frames.append(fragment(offset: offset, count: 1480, more: offset + 1480 <= 65_528, proto: 1))
            offset += 1480
        }
        let (records, tracker) = analyseFrames(frames, linkType: 101)
        #expect(records.isEmpty)
        #expect(tracker.weirds["fragment_beyond_max_datagram"] ?? 0 >= 1)
        #expect(tracker.datagramsReassembled == 0)
    }

    @Test func anIPv6DatagramPastItsLengthFieldIsRefused() {
        let s = Craft.address("2001:db8::1"), d = Craft.address("2001:db8::2")
        func piece(_ offset: Int, more: Bool) -> [UInt8] {
            let field = UInt16(offset) | (more ? 1 : 0)
            return Craft.ipv6(s, d, next: 17, [UInt8](repeating: 1, count: 1232), extensions: [(44, [0] + Craft.be16(field) + Craft.be32(9))])
        }
        var frames: [[UInt8]] = []
        var offset = 0
        while offset < 66_000 { frames.append(piece(offset, more: offset + 1232 < 66_000)); offset += 1232 }
        let (records, tracker) = analyseFrames(frames, linkType: 101)
        #expect(records.isEmpty && tracker.weirds["fragment_beyond_max_datagram"] ?? 0 >= 1)
    }

    @Test func ipv4AndIPv6NeverShareADatagram() {
        // An IPv4-mapped IPv6 address equals the IPv4 one; the two halves must not meet.
        let mapped6 = Craft.ipv6(Craft.address("::ffff:10.0.0.1"), Craft.address("::ffff:10.0.0.2"), next: 17,
                                 [UInt8](repeating: 1, count: 16), extensions: [(44, [0] + Craft.be16(1) + Craft.be32(7))])
        let v4 = fragment(offset: 16, count: 16, more: false)
        for order in [[mapped6, v4], [v4, mapped6]] {
            let (records, tracker) = analyseFrames(order, linkType: 101)
            #expect(records.isEmpty && tracker.datagramsReassembled == 0)
        }
    }

    @Test func timeGoingBackwardsExpiresNothingEarlyAndTrapsNowhere() {
        var reassembler = FragmentReassembler(limits: FragmentLimits())
        let weirds = UnsafeMutablePointer<Weirds>.allocate(capacity: 1)
        weirds.initialize(to: Weirds())
        defer { weirds.deinitialize(count: 1); weirds.deallocate() }
        func add(_ packet: [UInt8], at time: UInt64) -> [UInt8]? {
            var info = FragmentInfo()
            info.source = a; info.destination = b; info.identification = UInt32(packet[4]) << 8 | UInt32(packet[5])
            info.proto = 17; info.offset = Int(UInt16(packet[6] & 0x1f) << 8 | UInt16(packet[7])) * 8
            info.moreFragments = packet[6] & 0x20 != 0; info.headerLength = 20; info.dataStart = 20; info.totalLength = packet.count
            return packet.withUnsafeBytes { reassembler.add(info, ip: $0, at: time, weirds: &weirds.pointee) }
        }
        for id in 0..<100 { _ = add(fragment(id: UInt16(id), offset: 0, count: 8, more: true), at: 1_000_000_000_000 - UInt64(id) * 1_000_000_000) }
        #expect(reassembler.pending == 100)
        // The clock never went back: all 100 expire five minutes after the first arrived.
        reassembler.advance(to: 1_000_000_000_000 + 299_000_000_000)
        #expect(reassembler.pending == 100)
        reassembler.advance(to: 1_000_000_000_000 + 300_000_000_000)
        #expect(reassembler.pending == 0 && reassembler.expired == 100)
        reassembler = FragmentReassembler(limits: FragmentLimits())
        #expect(add(fragment(offset: 0, count: 8, more: true), at: 5) == nil)
        #expect(add(fragment(offset: 8, count: 8, more: false), at: 0)?.count == 36)
    }

    @Test func memoryIsTheBytesThatCameNotTheOffsetsTheyClaim() {
        // 10 000 datagrams of one 8-byte fragment at offset 65 000 each: 80 KB of data, which
        // is what is held (the old reassembler zero-filled 650 MB).
        var frames: [[UInt8]] = []
        for id in 0..<10_000 { frames.append(fragment(id: UInt16(id), offset: 65_000, count: 8, more: true)) }
        let (_, tracker) = analyseFrames(frames, linkType: 101, spacing: 1000)
        let table = tracker.tables.first { $0.name == "fragment bytes" }
        #expect(table != nil && table!.peak < 10_000 * (8 + 20 + 1))
    }

    @Test func theTablesBoundsEvictTheOldestAndCountIt() {
        var frames: [[UInt8]] = []
        for id in 0..<300 { frames.append(fragment(id: UInt16(id), offset: 0, count: 16, more: true)) }
        let (_, tracker) = analyseFrames(frames, linkType: 101, spacing: 1000) {
            $0.fragmentLimits.maximumDatagrams = 100
        }
        let table = tracker.tables.first { $0.name == "fragments" }!
        #expect(table.entries == 100 && table.peak == 100 && table.evicted == 200)
        // The byte bound, too: 50 datagrams of 1 000 bytes within 20 000.
        var big: [[UInt8]] = []
        for id in 0..<50 { big.append(fragment(id: UInt16(id), offset: 0, count: 1000, more: true)) }
        let bytes = analyseFrames(big, linkType: 101, spacing: 1000) { $0.fragmentLimits.maximumBytes = 20_000 }.tracker
        let byteTable = bytes.tables.first { $0.name == "fragments" }!
        #expect(byteTable.entries < 20 && byteTable.evicted > 30)
    }

    @Test func tooManyPiecesOfOneDatagramAreRefused() {
        // 8-byte fragments with 8-byte holes between them: every other one.
        var frames: [[UInt8]] = []
        for index in 0..<1000 { frames.append(fragment(offset: index * 16, count: 8, more: true)) }
        let (_, tracker) = analyseFrames(frames, linkType: 101, spacing: 1000)
        #expect(tracker.weirds["excessive_fragments"] == 1000 - 512)
    }

    @Test func zeeksRulesForOverlapsAndGrowingSizes() throws {
        // The first fragment, a last one saying 164 bytes, then a first fragment of 304:
        // Zeek's datagram grows to 304 (the trace ipv4/fragmented-1 in its suite).
        let frames = [fragment(offset: 0, count: 18, more: true), fragment(offset: 48, count: 116, more: false),
                      fragment(offset: 0, count: 304, more: true)]
        let (records, tracker) = analyseFrames(frames, linkType: 101) { $0.verifyChecksums = false }
        let r = try #require(records.first)
        #expect(r.origIPBytes == 324)
        #expect(tracker.weirds["fragment_size_inconsistency"] ?? 0 >= 1)
        #expect(tracker.weirds["fragment_overlap"] == 1) // the same bytes again, where they overlap
    }
}

@Suite struct IPTunnelBoundsTests {
    @Test func tunnelsExpireAfterADayIdleAndStayWithinTheirBound() {
        var tunnels = IPTunnels(limits: IPTunnelLimits())
        var next: UInt64 = 0
        func uid() -> UInt64 { next += 1; return next }
        let a = Craft.address("192.0.2.1"), b = Craft.address("192.0.2.2")
        let first = tunnels.uid(between: a, and: b, at: 0, newUID: uid)
        #expect(tunnels.uid(between: b, and: a, at: 86_000_000_000_000, newUID: uid) == first) // either way round
        tunnels.advance(to: 86_000_000_000_000 + 86_399_000_000_000)
        #expect(tunnels.count == 1)
        tunnels.advance(to: 86_000_000_000_000 + 86_400_000_000_000)
        #expect(tunnels.count == 0 && tunnels.expired == 1)
        #expect(tunnels.uid(between: a, and: b, at: 200_000_000_000_000, newUID: uid) != first)

        var limits = IPTunnelLimits()
        limits.maximumTunnels = 10
        tunnels = IPTunnels(limits: limits)
        for i in 0..<50 { _ = tunnels.uid(between: a, and: Craft.address("198.18.0.\(i)"), at: UInt64(i), newUID: uid) }
        #expect(tunnels.count == 10 && tunnels.evicted == 40 && tunnels.peak == 10)
    }
}
