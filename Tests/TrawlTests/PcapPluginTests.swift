import Foundation
import Testing
import TrawlCore

/// Trawl::Pcap read through the core, against traces generated here.
@Suite struct PcapPluginTests {
    @Test(arguments: [TraceFileFormat.pcapNanosecond, .pcapMicrosecond, .pcapng])
    func readsEveryPacketOfEachFormat(format: TraceFileFormat) throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.trace"), format: format, flows: 150)
        let read = try readPackets(trace.path)
        #expect(read.count == trace.packets.count)
        #expect(read.reduce(0) { $0 + $1.wireLength } == trace.byteCount)
        #expect(read.map(\.bytes) == trace.packets.map(\.bytes))
        // Microsecond files keep microseconds; the generator's 10 µs spacing survives either way.
        #expect(read.map(\.timestamp) == trace.packets.map(\.timestamp))
    }

    @Test func batchesStayValidWhenTheArenaFillsUp() throws {
        // 64 KiB packets overflow the 1 MiB copy arena within one 256-packet batch.
        let dir = try TemporaryDirectory()
        let path = dir.file("big.pcap")
        let writer = try TraceWriter(path: path, linkType: 1, snaplen: 65_535)
        var expected: [[UInt8]] = []
        for i in 0..<100 {
            let bytes = (0..<65_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
            try bytes.withUnsafeBytes { try writer.write(timestampNanoseconds: UInt64(i), wireLength: bytes.count, bytes: $0) }
            expected.append(bytes)
        }
        try writer.finish()
        let read = try readPackets(path, batchCapacity: 256)
        #expect(read.count == 100)
        #expect(read.map(\.bytes) == expected)
        #expect(read.map(\.timestamp) == (0..<100).map(UInt64.init))
    }

    @Test func filterKeepsOnlyMatchingPackets() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.pcap"), flows: 200)
        #expect(trace.udpCount > 0 && trace.udpCount < trace.packets.count)
        #expect(try readPackets(trace.path, filter: "udp").count == trace.udpCount)
        #expect(try readPackets(trace.path, filter: "tcp").count == trace.packets.count - trace.udpCount)
        #expect(try readPackets(trace.path, filter: "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0").count
            == trace.packets.filter { $0.bytes[23] == 6 && $0.bytes[47] == 0x02 }.count)
        let error = #expect(throws: PacketSourceError.self) { try readPackets(trace.path, filter: "port nonsense") }
        #expect(error?.description.contains("invalid filter 'port nonsense'") == true)
    }

    @Test func truncatedFileDeliversWhatItHasThenFails() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.pcap"), flows: 50)
        let whole = try Data(contentsOf: URL(fileURLWithPath: trace.path))
        let cut = dir.file("cut.pcap")
        #expect(FileManager.default.createFile(atPath: cut, contents: whole.prefix(whole.count - 10)))
        let source = try pcapRegistry.open(cut, mode: .offline)
        let batch = PacketBatch(capacity: 16)
        var delivered = 0
        let error = #expect(throws: PacketSourceError.self) {
            while try source.nextBatch(batch) { delivered += batch.count }
        }
        #expect(delivered == trace.packets.count - 1)
        #expect(error?.description.contains("truncated dump file") == true)
    }

    /// Classic pcap files are read in place by the plugin's own reader: a file written in
    /// big-endian order with nanosecond stamps, and one with a record too long to be real.
    @Test func bigEndianNanosecondFilesAndImpossibleRecords() throws {
        let dir = try TemporaryDirectory()
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
        var file = be32(0xa1b2_3c4d) + be16(2) + be16(4) + be32(0) + be32(0) + be32(65535) + be32(1)
        var expected: [(UInt64, [UInt8])] = []
        for n in 0..<3000 { // about 1.3 MB: records straddle the reader's 1 MiB buffer
            let bytes = (0..<(60 + n % 700)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ n) }
            let stamp = UInt64(1_700_000_000 + n) * 1_000_000_000 + UInt64(n * 1013)
            file += be32(UInt32(stamp / 1_000_000_000)) + be32(UInt32(stamp % 1_000_000_000))
            file += be32(UInt32(bytes.count)) + be32(UInt32(bytes.count + 4)) + bytes
            expected.append((stamp, bytes))
        }
        let path = dir.file("big-endian.pcap")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(file)))
        let packets = try readPackets(path)
        #expect(packets.count == expected.count)
        #expect(zip(packets, expected).allSatisfy { $0.timestamp == $1.0 && $0.bytes == $1.1 && $0.wireLength == $1.1.count + 4 })

        let bogus = dir.file("bogus.pcap")
        #expect(FileManager.default.createFile(atPath: bogus, contents: Data(Array(file[0..<24]) + be32(1) + be32(0) + be32(0x0100_0000) + be32(60))))
        let error = #expect(throws: PacketSourceError.self) { try readPackets(bogus) }
        #expect(error?.description.contains("invalid packet capture length 16777216") == true)
    }

    @Test func reportsLinkTypeAndOfflineInfo() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("raw.pcap")
        let writer = try TraceWriter(path: path, linkType: 101, snaplen: 1500) // LINKTYPE_RAW
        try [UInt8](repeating: 0x45, count: 20).withUnsafeBytes { try writer.write(timestampNanoseconds: 1, wireLength: 20, bytes: $0) }
        try writer.finish()
        let source = try pcapRegistry.open(path, mode: .offline)
        #expect(source.info.linkType == 101)
        #expect(source.info.snaplen == 1500)
        #expect(source.info.isLive == false)
        #expect(source.info.selectableFD == nil)
        #expect(try source.statistics() == CaptureStatistics())
    }

    @Test func missingFileThroughExplicitPrefix() throws {
        let error = #expect(throws: PacketSourceError.self) { try pcapRegistry.open("pcap::/nonexistent/x.pcap", mode: .offline) }
        #expect(error?.description == "problem with trace file pcap::/nonexistent/x.pcap (unable to open /nonexistent/x.pcap: No such file or directory)")
    }
}

@Suite struct TraceWriterTests {
    @Test func failedRunLeavesNoFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("out.pcap")
        do {
            let writer = try TraceWriter(path: path, linkType: 1)
            try [UInt8](repeating: 1, count: 60).withUnsafeBytes { try writer.write(timestampNanoseconds: 1, wireLength: 60, bytes: $0) }
            writer.abandon()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func unwritablePathIsAnErrno() {
        #expect(throws: Errno(rawValue: ENOENT)) { try TraceWriter(path: "/nonexistent/dir/out.pcap", linkType: 1) }
    }
}

@Suite struct MixedPcapngTests {
    /// A pcapng with two interfaces of different snapshot lengths and link types (Ethernet
    /// and raw IPv4), which libpcap refuses; Trawl::Pcap reads it itself.
    static func writeMixed(to path: String) throws -> (ethernet: [UInt8], raw: [UInt8]) {
        let builder = PacketBuilder()
        let ethernet = builder.udp(fromClient: true, payload: 40)
        let raw = Array(PacketBuilder(clientPort: 41000, serverPort: 53).udp(fromClient: true, payload: 20)[14...])
        var file = Pcapng.sectionHeader
        file += Pcapng.interface(linkType: 1, snaplen: 65535)
        file += Pcapng.interface(linkType: 228, snaplen: 8192)  // raw IPv4
        file += Pcapng.packet(interface: 0, ticks: 1_000_000, ethernet)
        file += Pcapng.packet(interface: 1, ticks: 1_500_000, raw)
        file += Pcapng.packet(interface: 0, ticks: 2_000_000, ethernet)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(file)))
        return (ethernet, raw)
    }

    @Test func readsInterfacesOfDifferentSnaplenAndLinkType() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("mixed.pcapng")
        let (ethernet, raw) = try Self.writeMixed(to: path)
        let read = try readPackets(path)
        #expect(read.map(\.bytes) == [ethernet, raw, ethernet])
        #expect(read.map(\.timestamp) == [1_000_000_000, 1_500_000_000, 2_000_000_000])

        let run = try trawl(["-r", path, "--logdir", dir.path, "-w", dir.file("out.pcap")])
        #expect(run.status == 0, "\(run.stderr)")
        let fields = summaryFields(run.stdout)
        #expect(fields["packets"] == "3")
        #expect(fields["connections"] == "2 logged to \(dir.path)/conn.log") // one per interface's flow
        #expect(fields["written"] == "2 packets to \(dir.file("out.pcap")) (1 of other link types left out)")
        let filtered = try trawl(["-r", path, "--no-analysis", "-f", "udp port 53"])
        #expect(summaryFields(filtered.stdout)["packets"] == "1")
    }

    @Test func packetsOfALinkTypeTheFilterCannotBeCompiledForAreDroppedWithAWarning() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("mixed.pcapng")
        _ = try Self.writeMixed(to: path)
        // Raw IPv4 has no Ethernet header: the filter compiles for the file's first
        // interface only, and the raw interface's packet is dropped, said once.
        let run = try trawl(["-r", path, "--no-analysis", "-f", "ether broadcast or udp"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(summaryFields(run.stdout)["packets"] == "2")
        let warnings = run.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: \(path): the filter 'ether broadcast or udp' cannot be compiled for link type 228") }
        #expect(warnings.count == 1, "\(run.stderr)")
        #expect(warnings.first?.hasSuffix("the packets of this file's interfaces of that link type are dropped") == true)
    }
}
