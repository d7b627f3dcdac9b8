import Testing
@testable import TrawlAnalysis
import TrawlCore

/// Zeek's TCP analysis as ported: the cases where its state machine, reassembler and timers
/// decide conn.log differently from what a simpler reading of TCP would, and the short path
/// for the usual segment checked against the long way on disorderly traffic.
@Suite struct TCPStateTests {
    let b = PacketBuilder()
    let S = TCPFlag.syn, A = TCPFlag.ack, F = TCPFlag.fin, R = TCPFlag.rst, P = TCPFlag.psh

    func handshake(_ b: PacketBuilder) -> [[UInt8]] {
        [b.tcp(fromClient: true, flags: S, seq: 0),
         b.tcp(fromClient: false, flags: S | A, seq: 0, ack: 1),
         b.tcp(fromClient: true, flags: A, seq: 1, ack: 1)]
    }

    /// Only the responder closes: the connection is half closed, not finished, and packets
    /// well past the close delay still belong to it (Zeek's expire timer keeps it while
    /// the originator is open).
    @Test func aHalfCloseKeepsTheConnection() throws {
        var frames = handshake(b)
        frames.append(b.tcp(fromClient: false, flags: F | A, seq: 1, ack: 1))
        frames.append(b.tcp(fromClient: true, flags: A, seq: 1, ack: 2))
        for _ in 0..<20 { frames.append(b.tcp(fromClient: true, flags: A | P, seq: 1, ack: 2, payload: 0)) }
        frames.append(b.tcp(fromClient: true, flags: R | A, seq: 1, ack: 2))
        let (records, _) = analyse(frames, spacing: 1_000_000_000) // a second apart: 25 s in all
        let record = try #require(records.first)
        #expect(records.count == 1)
        #expect(record.state == "RSTO")
        #expect(record.history == "ShAfR")
        #expect(record.duration == 25_000_000_000)
    }

    /// Once both sides sent their FIN, a later RST does not make the close a reset.
    @Test func aResetAfterBothFINsIsStillSF() throws {
        var frames = handshake(b)
        frames += [b.tcp(fromClient: true, flags: F | A, seq: 1, ack: 1),
                   b.tcp(fromClient: false, flags: F | A, seq: 1, ack: 2),
                   b.tcp(fromClient: true, flags: R, seq: 2)]
        let (records, _) = analyse(frames)
        let record = try #require(records.first)
        #expect(record.state == "SF")
        #expect(record.history == "ShAFfR")
    }

    /// The SYN-ACK seen before its SYN: the SYN's sender becomes the originator when its
    /// SYN comes, and the history shows the turn after the two letters (Zeek's "Hs^").
    @Test func aSYNACKBeforeItsSYNTurnsTheConnectionAround() throws {
        let frames = [b.tcp(fromClient: false, flags: S | A, seq: 500, ack: 1),
                      b.tcp(fromClient: true, flags: S, seq: 0),
                      b.tcp(fromClient: true, flags: A, seq: 1, ack: 501)]
        let (records, _) = analyse(frames)
        let record = try #require(records.first)
        #expect(record.origAddress == b.client)
        #expect(record.history == "Hs^A")
        #expect(record.state == "S1")
    }

    /// A SYN with another initial sequence number on a connection still open is a new
    /// connection (Zeek's connection reuse).
    @Test func aSYNWithANewSequenceNumberStartsANewConnection() {
        let frames = [b.tcp(fromClient: true, flags: S, seq: 0),
                      b.tcp(fromClient: true, flags: S, seq: 0),      // a retransmission: same ISN
                      b.tcp(fromClient: true, flags: S, seq: 7000)]   // another attempt
        let (records, _) = analyse(frames)
        #expect(records.map(\.history) == ["S", "S"])
    }

    /// Content gaps count only when both sides are established: the same hole acknowledged
    /// in a connection whose handshake was missed is no gap.
    @Test func gapsCountOnlyInEstablishedConnections() throws {
        let data = [b.tcp(fromClient: true, flags: A, seq: 101, ack: 1, payload: 100),  // 1..<101 never seen
                    b.tcp(fromClient: false, flags: A, seq: 1, ack: 201)]
        let (established, _) = analyse(handshake(b) + data)
        #expect(try #require(established.first).missedBytes == 100)
        #expect(try #require(established.first).history == "ShADaG")
        let (partial, _) = analyse(data)
        #expect(try #require(partial.first).missedBytes == 0)
    }

    /// A FIN with data before it still missing: the close waits until the data's fate is
    /// known, so later packets still lengthen the connection.
    @Test func aCloseWaitsForTheDataBeforeIt() throws {
        var frames = handshake(b)
        frames += [b.tcp(fromClient: true, flags: F | A, seq: 101, ack: 1, payload: 50),   // 1..<101 missing
                   b.tcp(fromClient: false, flags: F | A, seq: 1, ack: 1),
                   b.tcp(fromClient: true, flags: A, seq: 152, ack: 2),
                   b.tcp(fromClient: false, flags: A, seq: 2, ack: 152)]                   // acks over the hole
        let (records, _) = analyse(frames, spacing: 1_000_000_000)
        let record = try #require(records.first)
        #expect(records.count == 1)
        #expect(record.duration == 6_000_000_000) // the last packet counted in full
        #expect(record.missedBytes == 100)
    }

    /// The short path for in-order segments gives exactly what the full analysis gives, on
    /// traffic with everything the short path must leave alone: retransmissions, holes,
    /// out-of-order and duplicate segments, zero windows, FINs, RSTs, repeated SYNs.
    @Test func headerPredictionChangesNothing() {
        var random = SplitMix64(seed: 2024)
        var frames: [[UInt8]] = []
        for connection in 0..<300 {
            var builder = b
            builder.clientPort = UInt16(20_000 + connection)
            var next = (client: UInt32(random.next() & 0xffff_ffff), server: UInt32(random.next() & 0xffff_ffff))
            if random.next() % 4 != 0 {
                frames.append(builder.tcp(fromClient: true, flags: S, seq: next.client))
                frames.append(builder.tcp(fromClient: false, flags: S | A, seq: next.server, ack: next.client &+ 1))
                next.client &+= 1
                next.server &+= 1
            }
            for _ in 0..<(20 + random.next() % 40) {
                let fromClient = random.next() % 2 == 0
                var seq = fromClient ? next.client : next.server
                let ack = fromClient ? next.server : next.client
                let length = Int(random.next() % 3 == 0 ? 0 : random.next() % 200)
                var flags = A
                switch random.next() % 40 {
                case 0: seq &-= 100                    // retransmission or overlap
                case 1: seq &+= 300                    // above a hole
                case 2: flags |= F
                case 3: flags = R | (random.next() % 2 == 0 ? A : 0)
                case 4: flags = S
                case 5: flags = 0
                default: flags |= random.next() % 2 == 0 ? P : 0
                }
                let window: UInt16 = random.next() % 30 == 0 ? 0 : 8192
                frames.append(builder.tcp(fromClient: fromClient, flags: flags, seq: seq, ack: ack, payload: length, window: window))
                if random.next() % 10 != 0 { // sometimes the segment was lost on the way
                    if fromClient { next.client = seq &+ UInt32(length) } else { next.server = seq &+ UInt32(length) }
                }
            }
        }
        func rows(_ predict: Bool) -> [String] {
            analyse(frames, spacing: 50_000_000) { $0.headerPrediction = predict }.records.map {
                "\($0.uid) \($0.duration) \($0.origBytes) \($0.respBytes) \($0.state) \($0.missedBytes) \($0.history) "
                    + "\($0.origPackets) \($0.origIPBytes) \($0.respPackets) \($0.respIPBytes)"
            }
        }
        let short = rows(true), long = rows(false)
        #expect(short.count == long.count)
        for (a, b) in zip(short, long) where a != b { Issue.record("short path \(a)\n long path \(b)") }
        #expect(short.count >= 300)
    }

    /// Zeek sees time in microseconds: nanosecond timestamps are cut down before anything
    /// is measured, so 240 ns across a microsecond boundary is a duration of 1 us.
    @Test func timeIsMeasuredInMicroseconds() throws {
        let frames = [b.udp(fromClient: true, payload: 10), b.udp(fromClient: true, payload: 10)]
        let configuration = AnalysisConfiguration()
        let sink = CollectingSink()
        let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 1)
        for (frame, time) in zip(frames, [UInt64(1_342_606_813_729_856_830), 1_342_606_813_729_857_070]) {
            frame.withUnsafeBytes { bytes in
                tracker.process(Packet(timestampNanoseconds: time, capturedLength: bytes.count, wireLength: bytes.count, bytes: bytes),
                                linkType: 1)
            }
        }
        tracker.finish()
        let record = try #require(sink.records.first)
        #expect(record.start == 1_342_606_813_729_856_000)
        #expect(record.duration == 1_000)
    }

    /// Zeek's conn/inactivity.zeek: an established connection to SSH (or FTP, telnet,
    /// rlogin) may be quiet for an hour; to a web server, five minutes.
    @Test func interactiveServicesMayBeQuietForAnHour() {
        func records(_ port: UInt16) -> [ConnectionRecord] {
            var builder = b
            builder.serverPort = port
            // The handshake, then data each way ten minutes apart.
            let frames = handshake(builder) + [builder.tcp(fromClient: true, flags: A | P, seq: 1, ack: 1, payload: 10),
                                               builder.tcp(fromClient: false, flags: A | P, seq: 1, ack: 11, payload: 10)]
            let times: [UInt64] = [0, 10_000_000, 20_000_000, 600_000_000_000, 1_200_000_000_000]
            let sink = CollectingSink()
            let tracker = ConnectionTracker(configuration: AnalysisConfiguration(), sink: sink, seed: 1)
            for (frame, time) in zip(frames, times) {
                frame.withUnsafeBytes { bytes in
                    tracker.process(Packet(timestampNanoseconds: 1_000_000_000_000 + time, capturedLength: bytes.count,
                                           wireLength: bytes.count, bytes: bytes), linkType: 1)
                }
            }
            tracker.finish()
            return sink.records
        }
        #expect(records(22).count == 1)
        #expect(records(80).count == 3)
    }
}
