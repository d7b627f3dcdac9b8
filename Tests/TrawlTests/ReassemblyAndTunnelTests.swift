import Foundation
import Testing
@testable import TrawlAnalysis
import TrawlCore
@testable import TrawlSynth

@Suite struct FragmentTests {
    /// Splits an Ethernet/IPv4 frame's datagram into fragments of `size` data bytes.
    static func fragmentV4(_ frame: [UInt8], size: Int) -> [[UInt8]] {
        let ethernet = Array(frame[0..<14]), header = Array(frame[14..<34]), data = Array(frame[34...])
        return stride(from: 0, to: data.count, by: size).map { offset in
            let chunk = Array(data[offset..<min(offset + size, data.count)])
            var h = header
            let more = offset + size < data.count
            let field = UInt16(offset / 8) | (more ? 0x2000 : 0)
            h[2] = UInt8((20 + chunk.count) >> 8); h[3] = UInt8((20 + chunk.count) & 0xff)
            h[6] = UInt8(field >> 8); h[7] = UInt8(field & 0xff)
            h[10] = 0; h[11] = 0
            let sum = PacketBuilder.sum(h)
            h[10] = UInt8(sum >> 8); h[11] = UInt8(sum & 0xff)
            return ethernet + h + chunk
        }
    }

    @Test func ipv4FragmentsOutOfOrderMakeOneDatagram() throws {
        let b = PacketBuilder()
        let pieces = Self.fragmentV4(b.udp(fromClient: true, payload: 3000), size: 1480)
        #expect(pieces.count == 3)
        let (records, tracker) = analyse([pieces[2], pieces[0], pieces[1], b.udp(fromClient: false, payload: 10)])
        let r = try #require(records.first)
        #expect(records.count == 1)
        #expect(r.origBytes == 3000)
        #expect(r.origPackets == 1)
        #expect(r.origIPBytes == 3028)
        #expect(r.state == "SF")
        #expect(tracker.weirds.isEmpty)
    }

    @Test func ipv6FragmentsMakeOneDatagram() throws {
        // An IPv6 UDP datagram of 2000 payload bytes in two fragments, built by hand.
        let source = [UInt8](repeating: 0, count: 15) + [1], destination = [UInt8](repeating: 0, count: 15) + [2]
        let payload = [UInt8](repeating: 0x44, count: 2000)
        var udp = PacketBuilder.be16(5000) + PacketBuilder.be16(53) + PacketBuilder.be16(UInt16(8 + payload.count)) + [0, 0] + payload
        let pseudo = source + destination + PacketBuilder.be32(UInt32(udp.count)) + [0, 0, 0, 17]
        let sum = PacketBuilder.sum(pseudo + udp)
        udp[6] = UInt8(sum >> 8); udp[7] = UInt8(sum & 0xff)
        func fragment(_ offset: Int, _ chunk: ArraySlice<UInt8>, more: Bool) -> [UInt8] {
            let fragmentHeader: [UInt8] = [17, 0] + PacketBuilder.be16(UInt16(offset) | (more ? 1 : 0)) + PacketBuilder.be32(0xabcd)
            let ip: [UInt8] = [0x60, 0, 0, 0] + PacketBuilder.be16(UInt16(8 + chunk.count)) + [44, 64] + source + destination
            return [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd] + ip + fragmentHeader + Array(chunk)
        }
        let first = fragment(0, udp[0..<1232], more: true), second = fragment(1232, udp[1232...], more: false)
        let (records, tracker) = analyse([second, first])
        let r = try #require(records.first)
        #expect(r.origBytes == 2000)
        #expect(r.origIPBytes == UInt64(40 + udp.count))
        #expect(r.respPort == 53 && r.proto == 17)
        #expect(tracker.weirds.isEmpty, "\(tracker.weirds)")
    }
}

@Suite struct TunnelTests {
    let outer = PacketBuilder(client: IPAddress("198.51.100.1")!, server: IPAddress("198.51.100.2")!, clientPort: 50000, serverPort: 4789)
    let inner = PacketBuilder()

    @Test func vxlanLogsTheOuterAndTheInnerConnectionWithItsParent() throws {
        // VXLAN: 8-byte header (I flag), then the inner Ethernet frame, inside UDP to 4789.
        let innerFrame = inner.udp(fromClient: true, payload: 20)
        var vxlan = PacketBuilder.be16(50000) + PacketBuilder.be16(4789) + PacketBuilder.be16(UInt16(8 + 8 + innerFrame.count)) + [0, 0]
        vxlan += [0x08, 0, 0, 0, 0, 0, 1, 0] + innerFrame
        let frame = outer.ip(proto: 17, fromClient: true, transport: vxlan)
        let (records, _) = analyse([frame, frame])
        #expect(records.count == 2)
        let tunnel = try #require(records.first { $0.respPort == 4789 })
        let carried = try #require(records.first { $0.respPort == 80 })
        #expect(tunnel.tunnelParents.isEmpty)
        #expect(carried.tunnelParents == [tunnel.uid])
        #expect(carried.origBytes == 40 && carried.origPackets == 2)
    }

    @Test func greCarriesIPButIsNoConnection() throws {
        let innerFrame = inner.tcp(fromClient: true, flags: TCPFlag.syn, seq: 7)
        let gre: [UInt8] = [0, 0, 0x08, 0x00] + Array(innerFrame[14...]) // GRE, protocol IPv4
        let frame = outer.ip(proto: 47, fromClient: true, transport: gre)
        let (records, _) = analyse([frame])
        #expect(records.count == 1)
        let carried = try #require(records.first)
        #expect(carried.proto == 6 && carried.state == "S0")
        #expect(carried.tunnelParents.count == 1)
    }
}

@Suite struct RobustnessTests {
    /// Frames of every kind the decoder follows, then thousands of mutations of them: bytes
    /// flipped, headers cut at every length. Nothing may crash, and every packet must end up
    /// either analysed or counted as a weird.
    @Test func mutatedFramesNeverCrash() {
        let b = PacketBuilder()
        let outer = PacketBuilder(client: IPAddress("198.51.100.1")!, server: IPAddress("198.51.100.2")!, clientPort: 50000, serverPort: 4789)
        let innerFrame = b.tcp(fromClient: true, flags: TCPFlag.syn, seq: 1, payload: 30)
        let vxlan = outer.ip(proto: 17, fromClient: true, transport: PacketBuilder.be16(50000) + PacketBuilder.be16(4789)
            + PacketBuilder.be16(UInt16(16 + innerFrame.count)) + [0, 0] + [0x08, 0, 0, 0, 0, 0, 1, 0] + innerFrame)
        let gre = outer.ip(proto: 47, fromClient: true, transport: [0x30, 0, 0x88, 0xbe, 0, 0, 0, 1, 0, 0, 0, 2]
            + [UInt8](repeating: 0, count: 8) + innerFrame)
        let ipInIP = outer.ip(proto: 4, fromClient: true, transport: Array(innerFrame[14...]))
        let fragments = FragmentTests.fragmentV4(b.udp(fromClient: true, payload: 2000), size: 800)
        let seeds = [innerFrame, b.udp(fromClient: false, payload: 12), b.icmpEcho(fromClient: true, payload: 20), vxlan, gre, ipInIP] + fragments
        var generator = SplitMix64(seed: 2026)
        var frames: [[UInt8]] = []
        for seed in seeds {
            for cut in 0...seed.count { frames.append(Array(seed.prefix(cut))) }
            for _ in 0..<1500 {
                var frame = seed
                for _ in 0..<(1 + Int(generator.next() % 4)) {
                    frame[Int(generator.next() % UInt64(frame.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
                if generator.next() % 3 == 0 { frame = Array(frame.prefix(Int(generator.next() % UInt64(frame.count + 1)))) }
                frames.append(frame)
            }
        }
        // One frame at a time: each must reach a connection, be noted as a weird, be
        // ignored as harmless, or go to fragment reassembly. Nothing vanishes unaccounted.
        let sink = CollectingSink()
        var configuration = AnalysisConfiguration()
        configuration.bareMode = true
        let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 7)
        func fates() -> UInt64 {
            tracker.packetsAnalyzed + tracker.weirds.values.reduce(0, +) + tracker.packetsIgnored + tracker.fragmentsSeen
        }
        var silent = 0
        for (index, frame) in frames.enumerated() {
            let before = fates()
            frame.withUnsafeBytes { bytes in
                tracker.process(Packet(timestampNanoseconds: 1_000_000_000_000 + UInt64(index) * 1000,
                                       capturedLength: bytes.count, wireLength: bytes.count, bytes: bytes), linkType: 1)
            }
            if fates() == before { silent += 1 }
        }
        tracker.finish()
        #expect(silent == 0)
        // Most mutations break a checksum or a length; enough get through to go deep.
        #expect(tracker.packetsAnalyzed > UInt64(frames.count) / 8)
    }
}
