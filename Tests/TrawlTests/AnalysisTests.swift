import Foundation
import Testing
@testable import TrawlAnalysis
import TrawlCore
@testable import TrawlSynth

/// Builds Ethernet/IPv4 (or IPv6) frames with TCP, UDP or ICMP and correct checksums.
struct PacketBuilder {
    var client = IPAddress("10.1.1.1")!, server = IPAddress("192.0.2.80")!
    var clientPort: UInt16 = 40000, serverPort: UInt16 = 80

    static func sum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
        var s = initial
        var i = 0
        while i + 1 < bytes.count { s += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
        if i < bytes.count { s += UInt32(bytes[i]) << 8 }
        while s >> 16 != 0 { s = (s & 0xffff) + (s >> 16) }
        return ~UInt16(s)
    }

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(v & 0xffff)) }
    static func v4(_ a: IPAddress) -> [UInt8] { be32(a.v4Value) }

    func ip(proto: UInt8, fromClient: Bool, transport: [UInt8], badChecksumAt: Int? = nil) -> [UInt8] {
        let (src, dst) = fromClient ? (client, server) : (server, client)
        var segment = transport
        let pseudo = Self.v4(src) + Self.v4(dst) + [0, proto] + Self.be16(UInt16(segment.count))
        if [1, 6, 17].contains(proto) { // other protocols carry no checksum of this kind
            let checksumAt = proto == 6 ? 16 : proto == 17 ? 6 : 2
            let value = proto == 1 ? Self.sum(segment) : Self.sum(pseudo + segment)
            segment[checksumAt] = UInt8(value >> 8)
            segment[checksumAt + 1] = UInt8(value & 0xff)
        }
        if let at = badChecksumAt { segment[at] ^= 0xff }
        var header: [UInt8] = [0x45, 0] + Self.be16(UInt16(20 + segment.count)) + [0, 1, 0x40, 0, 64, proto, 0, 0] + Self.v4(src) + Self.v4(dst)
        let headerSum = Self.sum(header)
        header[10] = UInt8(headerSum >> 8)
        header[11] = UInt8(headerSum & 0xff)
        return [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00] + header + segment
    }

    func tcp(fromClient: Bool, flags: UInt8, seq: UInt32, ack: UInt32 = 0, payload: Int = 0, window: UInt16 = 65535, badChecksum: Bool = false) -> [UInt8] {
        let (sport, dport) = fromClient ? (clientPort, serverPort) : (serverPort, clientPort)
        let segment = Self.be16(sport) + Self.be16(dport) + Self.be32(seq) + Self.be32(ack) + [0x50, flags]
            + Self.be16(window) + [0, 0, 0, 0] + [UInt8](repeating: 0x61, count: payload)
        return ip(proto: 6, fromClient: fromClient, transport: segment, badChecksumAt: badChecksum ? 16 : nil)
    }

    func udp(fromClient: Bool, payload: Int) -> [UInt8] {
        let (sport, dport) = fromClient ? (clientPort, serverPort) : (serverPort, clientPort)
        let segment = Self.be16(sport) + Self.be16(dport) + Self.be16(UInt16(8 + payload)) + [0, 0] + [UInt8](repeating: 0x62, count: payload)
        return ip(proto: 17, fromClient: fromClient, transport: segment)
    }

    func icmpEcho(fromClient: Bool, payload: Int) -> [UInt8] {
        let segment: [UInt8] = [fromClient ? 8 : 0, 0, 0, 0, 0, 1, 0, 1] + [UInt8](repeating: 0x63, count: payload)
        return ip(proto: 1, fromClient: fromClient, transport: segment)
    }
}

final class CollectingSink: ConnectionSink {
    var records: [ConnectionRecord] = []
    func connectionEnded(_ record: ConnectionRecord) { records.append(record) }
}

/// Feeds frames, `spacing` (10 ms) apart, through a tracker and returns what it logged.
func analyse(_ frames: [[UInt8]], spacing: UInt64 = 10_000_000,
             configure: (inout AnalysisConfiguration) -> Void = { _ in }) -> (records: [ConnectionRecord], tracker: ConnectionTracker) {
    var configuration = AnalysisConfiguration()
    configuration.bareMode = true
    configure(&configuration)
    let sink = CollectingSink()
    let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 42)
    for (index, frame) in frames.enumerated() {
        frame.withUnsafeBytes { bytes in
            tracker.process(Packet(timestampNanoseconds: 1_000_000_000_000 + UInt64(index) * spacing,
                                   capturedLength: bytes.count, wireLength: bytes.count, bytes: bytes), linkType: 1)
        }
    }
    tracker.finish()
    return (sink.records, tracker)
}

@Suite struct ConnectionStateTests {
    let b = PacketBuilder()
    let S = TCPFlag.syn, A = TCPFlag.ack, F = TCPFlag.fin, R = TCPFlag.rst, P = TCPFlag.psh

    @Test func fullHandshakeDataAndCloseIsSF() throws {
        let (records, _) = analyse([
            b.tcp(fromClient: true, flags: S, seq: 1000),
            b.tcp(fromClient: false, flags: S | A, seq: 5000, ack: 1001),
            b.tcp(fromClient: true, flags: A, seq: 1001, ack: 5001),
            b.tcp(fromClient: true, flags: A | P, seq: 1001, ack: 5001, payload: 100),
            b.tcp(fromClient: false, flags: A | P, seq: 5001, ack: 1101, payload: 300),
            b.tcp(fromClient: true, flags: F | A, seq: 1101, ack: 5301),
            b.tcp(fromClient: false, flags: F | A, seq: 5301, ack: 1102),
            b.tcp(fromClient: true, flags: A, seq: 1102, ack: 5302),
        ])
        let r = try #require(records.first)
        #expect(records.count == 1)
        #expect(r.state == "SF")
        #expect(r.history == "ShADdFf") // the server only sent data with its ACKs: no "a"
        #expect(r.origBytes == 100 && r.respBytes == 300)
        #expect(r.origPackets == 5 && r.respPackets == 3)
        #expect(r.origIPBytes == 5 * 40 + 100 && r.respIPBytes == 3 * 40 + 300)
        #expect(r.missedBytes == 0)
        #expect(r.duration == 60_000_000) // the last ACK came after both FINs
        #expect(r.origAddress == b.client && r.respPort == 80)
        #expect(r.localOrig && r.localResp) // 10/8 and 192.0.2/24 are private address space
        #expect(r.uid.hasPrefix("C") && r.uid.count >= 12)
    }

    @Test func unansweredSYNIsS0AndRefusedIsREJ() {
        #expect(analyse([b.tcp(fromClient: true, flags: S, seq: 1)]).records.first?.state == "S0")
        let refused = analyse([b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: R | A, seq: 0, ack: 2)]).records
        #expect(refused.first?.state == "REJ")
        #expect(refused.first?.history == "Sr")
    }

    @Test func resetsAfterEstablishment() {
        let open = [b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: S | A, seq: 9, ack: 2),
                    b.tcp(fromClient: true, flags: A, seq: 2, ack: 10)]
        let byOrig = analyse(open + [b.tcp(fromClient: true, flags: R, seq: 2)]).records.first
        #expect(byOrig?.state == "RSTO")
        #expect(byOrig?.history == "ShAR")
        let byResp = analyse(open + [b.tcp(fromClient: false, flags: R, seq: 10)]).records.first
        #expect(byResp?.state == "RSTR")
        #expect(analyse(open).records.first?.state == "S1")
    }

    @Test func resetAfterOwnFINWhileThePeerIsOpenIsRSTO() {
        let open = [b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: S | A, seq: 9, ack: 2),
                    b.tcp(fromClient: true, flags: A, seq: 2, ack: 10)]
        let r = analyse(open + [b.tcp(fromClient: true, flags: F | A, seq: 2, ack: 10), b.tcp(fromClient: true, flags: R, seq: 3)])
        #expect(r.records.first?.state == "RSTO")
        // After both FINs a RST changes nothing: the close was orderly.
        let both = analyse(open + [b.tcp(fromClient: true, flags: F | A, seq: 2, ack: 10), b.tcp(fromClient: false, flags: F | A, seq: 10, ack: 3),
                                   b.tcp(fromClient: true, flags: R, seq: 3)])
        #expect(both.records.first?.state == "SF")
    }

    /// Zeek establishes both sides on the responder's SYN-ACK: a handshake that never got
    /// its last ACK is S1.
    @Test func handshakeWithoutTheLastACKIsS1() throws {
        let (records, _) = analyse([
            b.tcp(fromClient: true, flags: S, seq: 1000),
            b.tcp(fromClient: false, flags: S | A, seq: 5000, ack: 1001),
        ])
        let r = try #require(records.first)
        #expect(r.state == "S1" && r.history == "Sh")
    }

    /// As in Zeek, data that ends at or below the highest sequence seen is a retransmission,
    /// even when it fills a hole; nothing is missed once the hole is filled.
    @Test func aSegmentFillingAHoleIsARetransmission() throws {
        let (records, _) = analyse([
            b.tcp(fromClient: true, flags: S, seq: 0),
            b.tcp(fromClient: false, flags: S | A, seq: 0, ack: 1),
            b.tcp(fromClient: true, flags: A, seq: 1, ack: 1),
            b.tcp(fromClient: false, flags: A, seq: 1, ack: 1, payload: 100),
            b.tcp(fromClient: false, flags: A, seq: 201, ack: 1, payload: 100),
            b.tcp(fromClient: false, flags: A, seq: 101, ack: 1, payload: 100), // fills 101..<201
            b.tcp(fromClient: true, flags: A, seq: 1, ack: 301),
        ])
        let r = try #require(records.first)
        #expect(r.history == "ShAdt")
        #expect(r.missedBytes == 0 && r.respBytes == 300)
    }

    @Test func zeroIPLengthFromSegmentationOffload() throws {
        var frame = b.tcp(fromClient: true, flags: A | P, seq: 1, ack: 1, payload: 500)
        frame[16] = 0; frame[17] = 0 // the IPv4 total length, as a TSO capture leaves it
        let r = try #require(analyse([frame]) { $0.verifyChecksums = false }.records.first)
        #expect(r.origPackets == 1)
        #expect(r.origIPBytes == 0) // Zeek adds up the stated length
        #expect(r.history == "D")
    }

    @Test func synThenResetWithoutAnswerIsRSTOS0() {
        let r = analyse([b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: true, flags: R, seq: 2)]).records.first
        #expect(r?.state == "RSTOS0")
        #expect(r?.history == "SR")
    }

    @Test func halfClosesAreSHAndSHR() {
        let sh = analyse([b.tcp(fromClient: true, flags: A, seq: 1, ack: 1, payload: 10), b.tcp(fromClient: true, flags: F | A, seq: 11, ack: 1)])
        #expect(sh.records.first?.state == "SH" || sh.records.first?.state == "OTH")
        let shr = analyse([b.tcp(fromClient: false, flags: A, seq: 1, ack: 1, payload: 10), b.tcp(fromClient: false, flags: F | A, seq: 11, ack: 1)])
        #expect(shr.records.first.map { ["SHR", "SH"].contains($0.state) } == true)
    }

    @Test func wellKnownServerPortFlipsRolesOutsideBareMode() throws {
        // The start was missed: the first packet is the server's data.
        let frames = [
            b.tcp(fromClient: false, flags: A, seq: 5001, ack: 1001, payload: 10),
            b.tcp(fromClient: true, flags: A, seq: 1001, ack: 5011),
        ]
        let flipped = try #require(analyse(frames) { $0.bareMode = false }.records.first)
        #expect(flipped.history == "^dA")
        #expect(flipped.origAddress == b.client && flipped.origPort == b.clientPort)
        // Bare mode knows no server ports: the first sender stays the originator.
        let bare = try #require(analyse(frames).records.first)
        #expect(bare.history == "Da")
        #expect(bare.origPort == b.serverPort)
    }

    @Test func aConnectionThatBeganWithASYNACKTurnsAroundAtItsFirstACK() throws {
        // Zeek's rule, bare mode or not: a SYN-ACK first is kept as it is (a stealth scan's
        // answer), until an ACK or data follows; then its sender was the responder.
        let frames = [
            b.tcp(fromClient: false, flags: S | A, seq: 5000, ack: 1001),
            b.tcp(fromClient: true, flags: A, seq: 1001, ack: 5001),
            b.tcp(fromClient: true, flags: A | P, seq: 1001, ack: 5001, payload: 5),
        ]
        for bareMode in [true, false] {
            let r = try #require(analyse(frames) { $0.bareMode = bareMode }.records.first)
            #expect(r.history == "^hAD")
            #expect(r.origAddress == b.client && r.origPort == b.clientPort)
            #expect(r.origPackets == 2 && r.respPackets == 1 && r.origBytes == 5)
        }
        // Alone, the SYN-ACK keeps its sender as the originator.
        let scan = try #require(analyse([frames[0]]).records.first)
        #expect(scan.history == "H" && scan.origPort == b.serverPort)
    }

    @Test func anUnansweredAttemptEndsFiveSecondsAfterItsSYN() throws {
        // One-sided traffic: the SYN and data are never answered; after a pause of more than
        // five seconds the rest is a new, partial connection.
        var frames = [b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: true, flags: A, seq: 2, ack: 1),
                      b.tcp(fromClient: true, flags: A | P, seq: 2, ack: 1, payload: 40)]
        frames += Array(repeating: b.tcp(fromClient: true, flags: A, seq: 42, ack: 1), count: 600) // 6 s of ACKs, 10 ms apart
        frames.append(b.tcp(fromClient: true, flags: F | A, seq: 42, ack: 1))
        let records = analyse(frames).records
        #expect(records.count == 2)
        #expect(records.first?.state == "S0")
        #expect(records.first?.history == "SAD")
        #expect(records.last?.state == "SH")
        #expect(records.last?.history == "AF")
    }

    @Test func packetsAfterBothFINsDoNotLengthenTheConnection() throws {
        let r = try #require(analyse([
            b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: S | A, seq: 9, ack: 2),
            b.tcp(fromClient: true, flags: A, seq: 2, ack: 10),
            b.tcp(fromClient: true, flags: F | A, seq: 2, ack: 10), b.tcp(fromClient: false, flags: F | A, seq: 10, ack: 3),
            b.tcp(fromClient: true, flags: A, seq: 3, ack: 11),
        ]).records.first)
        #expect(r.duration == 40_000_000) // to the second FIN, not the last ACK
        #expect(r.origPackets == 4)
    }

    /// A RST closes its side as a FIN does: after a FIN one way and a RST the other, a
    /// second RST (at the same sequence number: no second letter) is counted but ends
    /// nothing later.
    @Test func packetsAfterAFINAndARSTDoNotLengthenTheConnection() throws {
        let r = try #require(analyse([
            b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: S | A, seq: 9, ack: 2),
            b.tcp(fromClient: true, flags: A, seq: 2, ack: 10),
            b.tcp(fromClient: true, flags: F | A, seq: 2, ack: 10), b.tcp(fromClient: false, flags: R | A, seq: 10, ack: 3),
            b.tcp(fromClient: false, flags: R, seq: 10),
        ]).records.first)
        #expect(r.duration == 40_000_000) // to the first RST
        #expect(r.respPackets == 3 && r.state == "RSTR" && r.history == "ShAFr")
    }

    @Test func badChecksumIsCountedAsCAndIgnoredUnlessDashC() {
        let frames = [b.tcp(fromClient: true, flags: S, seq: 1, badChecksum: true)]
        let checked = analyse(frames).records.first
        #expect(checked?.history == "C")
        #expect(checked?.origPackets == 0)
        #expect(checked?.state == "OTH")
        let ignored = analyse(frames) { $0.verifyChecksums = false }.records.first
        #expect(ignored?.history == "S")
        #expect(ignored?.state == "S0")
    }

    @Test func retransmissionAndZeroWindowLetters() {
        let r = analyse([
            b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: S | A, seq: 9, ack: 2),
            b.tcp(fromClient: true, flags: A | P, seq: 2, ack: 10, payload: 50),
            b.tcp(fromClient: true, flags: A | P, seq: 2, ack: 10, payload: 50),
            b.tcp(fromClient: false, flags: A, seq: 10, ack: 52, window: 0),
        ]).records.first
        #expect(r?.history == "ShDTaw") // the zero window is the server's: lowercase
        #expect(r?.origBytes == 50)
    }

    @Test func unseenButAcknowledgedDataIsMissedAndAGap() {
        let r = analyse([
            b.tcp(fromClient: true, flags: S, seq: 1), b.tcp(fromClient: false, flags: S | A, seq: 9, ack: 2),
            b.tcp(fromClient: true, flags: A | P, seq: 2, ack: 10, payload: 100),
            // 200 bytes at seq 102 never seen; the server acknowledges them.
            b.tcp(fromClient: false, flags: A, seq: 10, ack: 302),
        ]).records.first
        #expect(r?.origBytes == 300)
        #expect(r?.missedBytes == 200)
        #expect(r?.history == "ShDaG", "\(r?.history ?? "")")
    }

    @Test func udpAndICMP() throws {
        let udp = analyse([b.udp(fromClient: true, payload: 30), b.udp(fromClient: false, payload: 70), b.udp(fromClient: true, payload: 5)]).records
        #expect(udp.first?.state == "SF")
        #expect(udp.first?.history == "Dd")
        #expect(udp.first?.origBytes == 35 && udp.first?.respBytes == 70)
        #expect(udp.first?.origIPBytes == 2 * 28 + 35)
        #expect(analyse([b.udp(fromClient: true, payload: 1)]).records.first?.state == "S0")

        let icmp = try #require(analyse([b.icmpEcho(fromClient: true, payload: 56), b.icmpEcho(fromClient: false, payload: 56)]).records.first)
        #expect(icmp.proto == 1 && icmp.origPort == 8 && icmp.respPort == 0)
        #expect(icmp.state == "OTH")
        #expect(icmp.origBytes == 56 && icmp.respBytes == 56)
        #expect(icmp.history.isEmpty)
    }

    @Test func aSYNFloodIsBoundedByEviction() {
        var builder = b
        var frames: [[UInt8]] = []
        for port in 0..<1000 {
            builder.clientPort = UInt16(10_000 + port)
            frames.append(builder.tcp(fromClient: true, flags: S, seq: 1))
        }
        let (records, tracker) = analyse(frames, spacing: 1_000_000) { $0.maximumConnections = 100 } // 1 s in all
        #expect(tracker.weirds["connection_evicted"] == 900)
        #expect(records.count == 1000) // evicted connections are logged, not lost
        #expect(Set(records.map(\.origPort)).count == 1000)
        #expect(records.allSatisfy { $0.state == "S0" })
    }

    @Test func malformedPacketsAreCountedNeverFatal() {
        var frames: [[UInt8]] = []
        let whole = b.tcp(fromClient: true, flags: S, seq: 1, payload: 20)
        for cut in 0..<whole.count { frames.append(Array(whole.prefix(cut))) }
        let (records, tracker) = analyse(frames)
        #expect(tracker.weirds.values.reduce(0, +) + tracker.packetsAnalyzed == UInt64(whole.count))
        // Zeek wants more than 16 bytes of Ethernet, then 20 of IP.
        #expect(tracker.weirds["truncated_ethernet_frame"] == 17)
        #expect(tracker.weirds["truncated_IP"] == 17)
        // Past that, the IP header says more than the wire carried.
        #expect(tracker.weirds["truncated_IP_len"] == UInt64(whole.count - 14 - 20))
        #expect(records.count <= 1)
    }
}

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

@Suite struct CompactStorageTests {
    let b = PacketBuilder()
    let S = TCPFlag.syn, A = TCPFlag.ack, F = TCPFlag.fin, R = TCPFlag.rst

    @Test func connectionsStayCompact() {
        #expect(MemoryLayout<Endpoint>.size == 80)
        #expect(MemoryLayout<Connection>.stride <= 232)
    }

    @Test func historyHoldsSixteenLettersInline() {
        var history = History()
        #expect(history.isEmpty && history.count == 0)
        for (n, letter) in "ShADadtTwWcCgGFf".utf8.enumerated() {
            let added = history.append(letter)
            #expect(added)
            #expect(history.count == n + 1)
        }
        let seventeenth = history.append(UInt8(ascii: "R"))
        #expect(!seventeenth)
        #expect(String(decoding: history.bytes, as: UTF8.self) == "ShADadtTwWcCgGFf")
    }

    /// Repeated SYNs at new sequence numbers each add a letter: a history longer than the
    /// inline space continues in the tracker's side table and is logged whole.
    @Test func longHistoriesAreLoggedWhole() throws {
        var frames: [[UInt8]] = []
        for attempt in 0..<20 { frames.append(b.tcp(fromClient: true, flags: S, seq: UInt32(1000 * attempt))) }
        frames.append(b.tcp(fromClient: false, flags: R | A, seq: 0, ack: 19001))
        let (records, _) = analyse(frames)
        let record = try #require(records.first)
        #expect(records.count == 1)
        #expect(record.history == String(repeating: "S", count: 20) + "r")
        #expect(record.state == "REJ")
    }

    @Test func seenRangesMergeHolesAndOverlaps() {
        var seen = SeenRanges(), more: [Range<Int64>] = []
        #expect(seen.isEmpty)
        var fits = seen.insertInline(0..<10)
        #expect(fits)
        fits = seen.insertInline(10..<20)              // in order: stays inline
        #expect(fits && seen.unseen(below: 20, from: 0) == 0)
        fits = seen.insertInline(30..<40)              // would leave a hole
        #expect(!fits)
        var holes = seen.insert(30..<40, more: &more)  // a hole at 20..<30
        #expect(holes && seen.unseen(below: 40, from: 0, more: more) == 10)
        holes = seen.insert(25..<32, more: &more)      // part of the hole, overlapping the next range
        #expect(holes && seen.unseen(below: 40, from: 0, more: more) == 5)
        holes = seen.insert(15..<26, more: &more)      // closes it
        #expect(!holes && more.isEmpty && seen.unseen(below: 40, from: 0) == 0)
        #expect(seen.unseen(below: 50, from: 35) == 10)
    }

    /// Data with a hole that is filled later: the hole lives in the side table while open,
    /// and the retransmission letter and missed bytes come out as with inline ranges.
    @Test func holesFilledLaterLeaveNothingMissed() throws {
        let (records, _) = analyse([
            b.tcp(fromClient: true, flags: S, seq: 0),
            b.tcp(fromClient: false, flags: S | A, seq: 0, ack: 1),
            b.tcp(fromClient: true, flags: A, seq: 1, ack: 1, payload: 100),
            b.tcp(fromClient: true, flags: A, seq: 201, ack: 1, payload: 100),  // 101..<201 missing
            b.tcp(fromClient: true, flags: A, seq: 101, ack: 1, payload: 100),  // fills it
            b.tcp(fromClient: true, flags: A, seq: 101, ack: 1, payload: 100),  // a retransmission
            b.tcp(fromClient: false, flags: A, seq: 1, ack: 301),
        ])
        let record = try #require(records.first)
        #expect(record.missedBytes == 0 && record.origBytes == 300)
        #expect(record.history == "ShDTa") // data with its ACK is D; the repeat of 101..<201 is T
    }

    @Test func uidsLookLikeZeeks() {
        #expect(UIDGenerator.format(0) == "C0")
        #expect(UIDGenerator.format(61) == "Cz")
        #expect(UIDGenerator.format(.max).count == 12)
        // Against the plain digit-by-digit definition, at the chunk boundaries and at random.
        func plain(_ number: UInt64) -> String {
            let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
            var text = "C", value = number
            repeat { text.append(alphabet[Int(value % 62)]); value /= 62 } while value > 0
            return text
        }
        var random = SplitMix64(seed: 3)
        let five: UInt64 = 916_132_832, ten = five * five
        let samples: [UInt64] = [0, 1, 61, 62, five - 1, five, five + 1, ten - 1, ten, ten + 1, .max, .max - 1]
            + (0..<5000).map { _ in random.next() >> (random.next() % 64) }
        #expect(samples.allSatisfy { UIDGenerator.format($0) == plain($0) })
    }

    /// The table against a dictionary: IPv4 and IPv6 keys inserted, found, removed in random
    /// order (removals shift later entries of a probe run back), and freed slots reused.
    @Test func tableAgreesWithADictionary() {
        let table = ConnectionTable(seed: 9)
        var model: [ConnectionKey: (slot: ConnectionTable.Slot, uid: UInt64)] = [:]
        var random = SplitMix64(seed: 5)
        func randomKey() -> ConnectionKey {
            let v6 = random.next() % 4 == 0
            // Few distinct values, so that keys repeat and runs in the index form.
            let a = v6 ? IPAddress(high: 0x2001_0db8 << 32, low: random.next() % 50) : IPAddress("10.0.0.\(random.next() % 50)")!
            let b = v6 ? IPAddress(high: 0x2001_0db8 << 32, low: 1000 + random.next() % 50) : IPAddress("192.168.1.\(random.next() % 50)")!
            return ConnectionKey(proto: random.next() % 2 == 0 ? 6 : 17, a, UInt16(random.next() % 20), b, 80)
        }
        var uid: UInt64 = 0
        for _ in 0..<20_000 {
            let key = randomKey()
            let found = table.find(key)
            #expect(found == model[key]?.slot)
            if let entry = model[key] {
                #expect(table.connection(entry.slot).pointee.uid == entry.uid)
                #expect(table.key(of: entry.slot) == key)
                if random.next() % 2 == 0 {
                    let removed = table.remove(entry.slot)
                    #expect(removed.uid == entry.uid)
                    model[key] = nil
                }
            } else {
                uid += 1
                var connection = Connection(key: key, uid: uid, originatorIsLow: true, start: 0)
                connection.expires = 1
                let slot = table.insert(connection, key: key)
                table.schedule(slot)
                model[key] = (slot, uid)
            }
            #expect(table.count == model.count)
        }
        #expect(Set(table.slotsOldestFirst()) == Set(model.values.map(\.slot)))
        #expect(table.highWater < 20_000) // freed slots were used again
    }

    /// The last logging goes oldest first, both when the starts fit the packed 8-byte sort
    /// words and when they lie more than six days apart.
    @Test func finalOrderIsByStart() {
        for spread: UInt64 in [1_000, 10 * 86_400 * 1_000_000_000] {
            let table = ConnectionTable(seed: 4)
            var random = SplitMix64(seed: spread)
            var starts: [ConnectionTable.Slot: UInt64] = [:]
            for n in 0..<3000 {
                let key = ConnectionKey(proto: 6, IPAddress("10.0.0.1")!, UInt16(n), IPAddress("10.0.0.2")!, 80)
                let start = 1_700_000_000_000_000_000 + random.next() % spread * 1000
                let slot = table.insert(Connection(key: key, uid: UInt64(n + 1), originatorIsLow: true, start: start), key: key)
                starts[slot] = start
            }
            let order = table.slotsOldestFirst()
            #expect(order.count == 3000)
            #expect(zip(order, order.dropFirst()).allSatisfy { a, b in
                starts[a]! / 1000 < starts[b]! / 1000 || (starts[a]! / 1000 == starts[b]! / 1000 && a < b)
            })
        }
    }

    /// The wheel hands out each connection once, when it is due, however late it is asked.
    @Test func wheelReturnsConnectionsWhenDue() {
        let table = ConnectionTable(seed: 1)
        let second: UInt64 = 1_000_000_000
        _ = table.due(at: 100 * second) // starts the clock
        var expiries: [ConnectionTable.Slot: UInt64] = [:]
        for n in 0..<600 {
            let key = ConnectionKey(proto: 17, IPAddress("10.0.0.1")!, UInt16(n), IPAddress("10.0.0.2")!, 53)
            var connection = Connection(key: key, uid: UInt64(n + 1), originatorIsLow: true, start: 100 * second)
            connection.expires = 100 * second + UInt64(n) * second / 2 + 1 // up to 300 s: more than one round
            let slot = table.insert(connection, key: key)
            table.schedule(slot)
            expiries[slot] = connection.expires
        }
        var handedOut: Set<ConnectionTable.Slot> = []
        for now in stride(from: 101 * second, through: 500 * second, by: Int(7 * second / 3)) {
            for slot in table.due(at: now) {
                #expect(expiries[slot]! <= now)
                #expect(now - expiries[slot]! < 4 * second) // within the 1 s lists and the 7/3 s steps
                #expect(handedOut.insert(slot).inserted)
                _ = table.remove(slot, onWheel: false)
            }
        }
        #expect(handedOut.count == 600)
    }
}

@Suite struct ChecksumTests {
    /// The word-at-a-time sum agrees with the plain RFC 1071 definition for every length.
    @Test func fastSumMatchesTheDefinition() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = ~PacketBuilder.sum(bytes) // PacketBuilder returns the complement
            let got = bytes.withUnsafeBytes { Checksum.sum($0) }
            #expect(got == expected, "length \(length)")
        }
    }
}

@Suite struct LogFormatTests {
    @Test func addressesFormatAsZeekDoes() {
        #expect(IPAddress("192.168.1.2")?.description == "192.168.1.2")
        #expect(IPAddress("fe80::c801:eff:fe88:8")?.description == "fe80::c801:eff:fe88:8")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("::1")?.description == "::1")
        #expect(Subnet("10.0.0.0/8")!.contains(IPAddress("10.9.8.7")!))
        #expect(!Subnet("10.0.0.0/8")!.contains(IPAddress("11.0.0.1")!))
        #expect(Subnet("fe80::/10")!.contains(IPAddress("fe80::1")!))
        #expect(formatSeconds(1_500_000_000_123_456_789) == "1500000000.123457")
    }

    @Test func tsvAndJSONFiles() throws {
        let dir = try TemporaryDirectory()
        let record = ConnectionRecord(start: 1_000_000_000, uid: "Cabc", origAddress: IPAddress("10.0.0.1")!, origPort: 1234,
                                      respAddress: IPAddress("10.0.0.2")!, respPort: 80, proto: 6, duration: 1_500_000,
                                      origBytes: 5, respBytes: 6, state: "SF", localOrig: true, localResp: false, missedBytes: 0,
                                      history: "ShADadFf", origPackets: 4, origIPBytes: 200, respPackets: 3, respIPBytes: 150)
        let tsv = try ZeekASCIIWriter(schema: .conn, directory: dir.path)
        try tsv.write(record.logValues)
        #expect(!FileManager.default.fileExists(atPath: dir.file("conn.log"))) // only once complete
        try tsv.close()
        let text = try String(contentsOfFile: dir.file("conn.log"), encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "#separator \\x09")
        #expect(lines[6].hasPrefix("#fields\tts\tuid\tid.orig_h"))
        #expect(lines[8] == "1.000000\tCabc\t10.0.0.1\t1234\t10.0.0.2\t80\ttcp\t-\t0.001500\t5\t6\tSF\tT\tF\t0\tShADadFf\t4\t200\t3\t150\t-\t6")
        #expect(lines[9].hasPrefix("#close\t"))

        let jsonDir = try TemporaryDirectory()
        let json = try JSONLinesWriter(schema: .conn, directory: jsonDir.path)
        try json.write(record.logValues)
        try json.close()
        let line = try String(contentsOfFile: jsonDir.file("conn.log"), encoding: .utf8)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["id.orig_h"] as? String == "10.0.0.1")
        #expect(object["local_resp"] as? Bool == false)
        #expect(object["history"] as? String == "ShADadFf")
        #expect(object["service"] == nil) // unset fields are left out
    }
}

@Suite struct LogEscapingTests {
    /// Separators, control bytes and backslashes are escaped as Zeek escapes them (TSV) and
    /// as JSON requires; an empty string and an empty set are "(empty)" in TSV.
    @Test func awkwardStringsAreEscaped() throws {
        let schema = LogSchema(path: "odd", fields: [("s", "string"), ("e", "string"), ("set", "set[string]"), ("n", "count")])
        let record: [LogValue] = [.string("a\tb\\c\u{1}é"), .string(""), .set(["x,y", "z\n"]), .count(18_446_744_073_709_551_615)]
        let dir = try TemporaryDirectory()
        let tsv = try ZeekASCIIWriter(schema: schema, directory: dir.path)
        try tsv.write(record)
        try tsv.write([.string("plain"), .set([]), .unset, .count(0)])
        try tsv.close()
        let rows = try String(contentsOfFile: dir.file("odd.log"), encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(rows == ["a\\x09b\\x5cc\\x01é\t(empty)\tx,y,z\\x0a\t18446744073709551615", "plain\t(empty)\t-\t0"])

        let jsonDir = try TemporaryDirectory()
        let json = try JSONLinesWriter(schema: schema, directory: jsonDir.path)
        try json.write(record)
        try json.close()
        let line = try String(contentsOfFile: jsonDir.file("odd.log"), encoding: .utf8)
        #expect(line == #"{"s":"a\tb\\c\u0001é","e":"","set":["x,y","z\n"],"n":18446744073709551615}"# + "\n")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["s"] as? String == "a\tb\\c\u{1}é")
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
