import Foundation
import Testing
@testable import TrawlAnalysis
import TrawlCore
@testable import TrawlSynth

@Suite struct CompactStorageTests {
    let b = PacketBuilder()
    let S = TCPFlag.syn, A = TCPFlag.ack, F = TCPFlag.fin, R = TCPFlag.rst

    @Test func connectionsStayCompact() {
        #expect(MemoryLayout<Endpoint>.size == 72)
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
        #expect(history.text(more: []) == "ShADadtTwWcCgGFf")
        #expect(history.text(more: Array("RX".utf8)) == "ShADadtTwWcCgGFfRX")
    }

    /// Repeated FINs at new sequence numbers each add a letter: a history longer than the
    /// inline space continues in the tracker's side table and is logged whole.
    @Test func longHistoriesAreLoggedWhole() throws {
        var frames = [b.tcp(fromClient: true, flags: S, seq: 0), b.tcp(fromClient: false, flags: S | A, seq: 0, ack: 1)]
        for n in 1...20 { frames.append(b.tcp(fromClient: true, flags: F | A, seq: 1, ack: 1, payload: n)) }
        frames.append(b.tcp(fromClient: false, flags: R | A, seq: 1, ack: 22))
        let (records, _) = analyse(frames)
        let record = try #require(records.first)
        #expect(records.count == 1)
        #expect(record.history == "Sh" + String(repeating: "F", count: 20) + "r")
        #expect(record.state == "RSTR")
    }

    /// An acknowledgment past data that never came is a content gap: Zeek's G at the 1st,
    /// 10th... gap of a direction, and its bytes in missed_bytes; data above the hole that
    /// did come is not missed.
    @Test func acknowledgedHolesAreGaps() throws {
        var frames: [[UInt8]] = [
            b.tcp(fromClient: true, flags: S, seq: 0),
            b.tcp(fromClient: false, flags: S | A, seq: 0, ack: 1),
            b.tcp(fromClient: true, flags: A, seq: 1, ack: 1),
        ]
        // Ten gaps of 100 bytes from the client: each time 100 bytes missing, 100 seen.
        for n in 0..<10 {
            let base = UInt32(1 + 200 * n)
            frames.append(b.tcp(fromClient: true, flags: A, seq: base + 100, ack: 1, payload: 100))
            frames.append(b.tcp(fromClient: false, flags: A, seq: 1, ack: base + 200))
        }
        let (records, _) = analyse(frames)
        let record = try #require(records.first)
        #expect(record.missedBytes == 1000)
        #expect(record.origBytes == 2000)
        #expect(record.history == "ShADaGG") // the 1st and the 10th gap
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
                let connection = Connection(key: key, uid: uid, originatorIsLow: true, start: 0)
                let slot = table.insert(connection, key: key)
                table.schedule(slot, due: 1)
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
        var expiries: [ConnectionTable.Slot: UInt64] = [:]
        _ = table.due(at: 100 * second) { expiries[$0]! } // starts the clock
        for n in 0..<600 {
            let key = ConnectionKey(proto: 17, IPAddress("10.0.0.1")!, UInt16(n), IPAddress("10.0.0.2")!, 53)
            let connection = Connection(key: key, uid: UInt64(n + 1), originatorIsLow: true, start: 100 * second)
            let due = 100 * second + UInt64(n) * second / 2 + 1 // up to 300 s: more than one round
            let slot = table.insert(connection, key: key)
            table.schedule(slot, due: due)
            expiries[slot] = due
        }
        var handedOut: Set<ConnectionTable.Slot> = []
        for now in stride(from: 101 * second, through: 500 * second, by: Int(7 * second / 3)) {
            for slot in table.due(at: now, dueTime: { expiries[$0]! }) {
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

@Suite struct SubnetSetTests {
    /// The bitmap in front of the IPv4 prefixes answers as a plain scan of every subnet does,
    /// for Zeek's private address space (prefixes from /4 to /48) and random addresses.
    @Test func agreesWithAScanOfTheSubnets() {
        let subnets = AnalysisConfiguration.privateAddressSpace
        let set = SubnetSet(subnets)
        var random = SplitMix64(seed: 9)
        var local = 0
        for n in 0..<200_000 {
            let address: IPAddress
            switch n % 4 {
            case 0: address = IPAddress(high: 0, low: 0x0000_ffff_0000_0000 | (random.next() & 0xffff_ffff))
            case 1: address = IPAddress(high: 0, low: 0x0000_ffff_0000_0000 | UInt64([10, 172, 192, 240, 255, 100, 224][n % 7]) << 24 | (random.next() & 0xff_ffff))
            case 2: address = IPAddress(high: 0x2002 << 48 | (random.next() & 0xffff_ffff_ffff), low: random.next())
            default: address = IPAddress(high: random.next(), low: random.next())
            }
            let expected = subnets.contains { $0.contains(address) }
            #expect(set.contains(address) == expected, "\(address)")
            if expected { local += 1 }
        }
        #expect(local > 25_000) // the cases above do hit the prefixes
        #expect(SubnetSet([Subnet("0.0.0.0/0")!]).contains(IPAddress("203.0.113.9")!))
        #expect(!SubnetSet([]).contains(IPAddress("10.0.0.1")!))
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

@Suite struct WeirdCountTests {
    /// Known weirds are counted in an array by their case number: that number is each
    /// case's place in `allCases`, and counts come back under Zeek's names.
    @Test func casesCountUnderTheirNames() {
        #expect(MemoryLayout<Weird>.size == 1)
        for (index, weird) in Weird.allCases.enumerated() { #expect(weird.ordinal == index) }
        var weirds = Weirds()
        weirds.note(.badTCPChecksum)
        weirds.note(.badTCPChecksum)
        weirds.note(.vxlanEmptyPacket)
        weirds.note(named: "made_up")
        #expect(weirds.counts == ["bad_TCP_checksum": 2, "vxlan_empty_packet": 1, "made_up": 1])
        #expect(weirds["bad_TCP_checksum"] == 2)
    }
}

@Suite struct ChecksumFoldTests {
    /// The four fixed folding steps give what folding until nothing is carried gives, for
    /// the extremes and random sums.
    @Test func foldMatchesTheLoop() {
        func loop(_ value: UInt64) -> UInt16 {
            var sum = value
            while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
            return UInt16(sum)
        }
        var random = SplitMix64(seed: 16)
        var values: [UInt64] = [0, 1, 0xffff, 0x1_0000, 0x1_ffff, 0xffff_ffff, 0x1_0000_0000, .max, .max - 1, 0xffff_0000_ffff_0000]
        for _ in 0..<100_000 { values.append(random.next() >> (random.next() % 64)) }
        for value in values { #expect(Checksum.fold(value) == loop(value), "\(value)") }
    }
}
