import Testing
@testable import TrawlAnalysis
import TrawlCore

/// What Zeek's DNS analyzer does to conn.log outside bare mode, and only there.
@Suite struct DNSSessionTests {
    var b: PacketBuilder {
        var builder = PacketBuilder()
        builder.serverPort = 53
        builder.clientPort = 32795
        return builder
    }
    let query: UInt16 = 0x0100, response: UInt16 = 0x8180

    func analyseDefault(_ frames: [[UInt8]], spacing: UInt64 = 100_000_000, bare: Bool = false) -> [ConnectionRecord] {
        analyse(frames, spacing: spacing) { $0.bareMode = bare }.records
    }

    /// Exchanges 16 s apart on one pair of ports: the DNS timer (every 10 s, ending what was
    /// quiet for 9) makes each a connection of its own; in bare mode they are one. Other
    /// traffic in between keeps the clock going, a second a packet.
    @Test func quietPairsOfPortsBecomeOneConnectionPerExchange() {
        var other = PacketBuilder()
        other.clientPort = 5000
        other.serverPort = 6000
        var frames: [[UInt8]] = []
        for _ in 0..<4 {
            frames.append(b.dns(fromClient: true, flags: query))
            frames.append(b.dns(fromClient: false, flags: response))
            for _ in 0..<15 { frames.append(other.udp(fromClient: true, payload: 10)) }
        }
        let split = analyseDefault(frames, spacing: 1_000_000_000).filter { $0.respPort == 53 }
        #expect(split.count == 4)
        #expect(split.allSatisfy { $0.history == "Dd" && $0.origPackets == 1 && $0.respPackets == 1 })
        let bare = analyseDefault(frames, spacing: 1_000_000_000, bare: true).filter { $0.respPort == 53 }
        #expect(bare.count == 1)
    }

    /// A response seen first, from the side that would be the originator: the roles turn,
    /// the history shows "^" after the letter, and the datagram counts where the first
    /// side's count was (Zeek counts it after the turn, under the old role).
    @Test func aResponseFirstTurnsTheConnectionAround() throws {
        var server = b
        (server.client, server.server) = (b.server, b.client)
        (server.clientPort, server.serverPort) = (53, 53)
        let records = analyseDefault([server.dns(fromClient: true, flags: response)])
        let record = try #require(records.first)
        #expect(record.origAddress == b.client && record.respAddress == b.server)
        #expect(record.history == "D^")
        #expect(record.origPackets == 1 && record.respPackets == 0)
        #expect(record.state == "S0")
    }

    /// Messages the analyzer will not parse put an X in the history, once.
    @Test func unknownOpcodesAndTooManyQuestionsAreAnalyzerLimits() throws {
        let inverse = analyseDefault([b.dns(fromClient: true, flags: 1 << 11), b.dns(fromClient: false, flags: 0x8000 | 1 << 11)])
        #expect(try #require(inverse.first).history == "DXd")
        let many = analyseDefault([b.dns(fromClient: true, flags: query, questions: 30)])
        #expect(try #require(many.first).history == "DX")
        let bare = analyseDefault([b.dns(fromClient: true, flags: 1 << 11)], bare: true)
        #expect(try #require(bare.first).history == "D")
    }

    /// Zeek's NTP analyzer on UDP 123: a server-mode message first, from the originator,
    /// turns the connection around, counted as Zeek counts it; a client-mode one does not.
    @Test func ntpServerFirstTurnsTheConnectionAround() throws {
        var ntp = PacketBuilder()
        (ntp.clientPort, ntp.serverPort) = (123, 123)
        func message(fromClient: Bool, mode: UInt8) -> [UInt8] {
            var builder = ntp
            if !fromClient { (builder.client, builder.server) = (ntp.server, ntp.client) }
            let payload: [UInt8] = [0x20 | mode] + [UInt8](repeating: 0, count: 47)
            let segment = PacketBuilder.be16(123) + PacketBuilder.be16(123) + PacketBuilder.be16(8 + 48) + [0, 0] + payload
            return builder.ip(proto: 17, fromClient: true, transport: segment)
        }
        // The server's answer seen first (sent by ntp.server), then the client's question.
        let turned = analyseDefault([message(fromClient: false, mode: 4), message(fromClient: true, mode: 3)])
        let record = try #require(turned.first)
        #expect(turned.count == 1)
        #expect(record.origAddress == ntp.client && record.history == "D^")
        #expect(record.origPackets == 2 && record.respPackets == 0 && record.state == "S0")
        let inOrder = analyseDefault([message(fromClient: true, mode: 3), message(fromClient: false, mode: 4)])
        #expect(try #require(inOrder.first).history == "Dd")
        let bare = analyseDefault([message(fromClient: false, mode: 4)], bare: true)
        #expect(try #require(bare.first).history == "D")
    }
}
