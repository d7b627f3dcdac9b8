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

    /// A UDP datagram carrying a DNS header (flags, question count) and `extra` more bytes.
    func dns(fromClient: Bool, flags: UInt16, questions: UInt16 = 1, extra: Int = 20) -> [UInt8] {
        let (sport, dport) = fromClient ? (clientPort, serverPort) : (serverPort, clientPort)
        let message = [0x12, 0x34] + Self.be16(flags) + Self.be16(questions) + [0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0x64, count: extra)
        let segment = Self.be16(sport) + Self.be16(dport) + Self.be16(UInt16(8 + message.count)) + [0, 0] + message
        return ip(proto: 17, fromClient: fromClient, transport: segment)
    }

    func icmpEcho(fromClient: Bool, payload: Int) -> [UInt8] {
        let segment: [UInt8] = [fromClient ? 8 : 0, 0, 0, 0, 0, 1, 0, 1] + [UInt8](repeating: 0x63, count: payload)
        return ip(proto: 1, fromClient: fromClient, transport: segment)
    }
}

final class CollectingSink: ConnectionSink {
    var records: [ConnectionRecord] = []
    var weirds: [WeirdRecord] = []
    func connectionEnded(_ record: ConnectionRecord) { records.append(record) }
    func weird(_ record: WeirdRecord) { weirds.append(record) }
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
