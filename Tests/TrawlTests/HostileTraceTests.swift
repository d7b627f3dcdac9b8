import Foundation
import Testing
import TrawlCore

/// Trace files written to hurt the readers: every one is read to its end or refused with a
/// message, and none makes the reader trap or allocate what a header claims.
@Suite struct HostileTraceTests {
    /// pcapng files only reach Trawl::Pcap's own reader when their interfaces differ in
    /// snapshot length (libpcap reads the others): each file here has two.
    func twoInterfaces(first options: [(UInt16, [UInt8])]) -> [UInt8] {
        Pcapng.sectionHeader + Pcapng.interface(linkType: 1, snaplen: 65535, options: options)
            + Pcapng.interface(linkType: 1, snaplen: 1500)
    }

    let frame = PacketBuilder().udp(fromClient: true, payload: 10)

    func write(_ bytes: [UInt8], _ dir: TemporaryDirectory, _ name: String = "t.pcapng") -> String {
        let path = dir.file(name)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    /// 10^19 ticks in each resolution (if_tsresol), as nanoseconds.
    @Test(arguments: [
        (UInt8(127), UInt64(0)),                          // 10^-127 s: no tick count reaches a nanosecond
        (UInt8(19), UInt64(1_000_000_000)),               // 10^-19 s: one second
        (UInt8(0x80 | 100), UInt64(0)),                   // 2^-100 s
        (UInt8(0x80 | 64), UInt64(542_101_086)),          // 2^-64 s: 0.54 s
        (UInt8(0x80 | 0), UInt64(4_477_988_020_393_345_024)), // whole seconds: 10^28 ns, wrapped
    ])
    func anyTimestampResolutionIsRead(resolution: UInt8, expected: UInt64) throws {
        let dir = try TemporaryDirectory()
        let ticks: UInt64 = 10_000_000_000_000_000_000
        let file = twoInterfaces(first: [(9, [resolution])]) + Pcapng.packet(interface: 0, ticks: ticks, frame)
        let read = try readPackets(write(file, dir))
        #expect(read.map(\.bytes) == [frame])
        #expect(read.first?.timestamp == expected)
    }

    @Test func anOptionCutOffByItsBlockIsIgnored() throws {
        let dir = try TemporaryDirectory()
        // if_tsoffset says 8 bytes; the block ends 4 bytes into them.
        var description = Pcapng.interface(linkType: 1, snaplen: 65535)
        let body = Array(description[8..<(description.count - 4)]) + Pcapng.le16(14) + Pcapng.le16(8) + [1, 0, 0, 0]
        description = Pcapng.block(1, body)
        let file = Pcapng.sectionHeader + description + Pcapng.interface(linkType: 1, snaplen: 1500)
            + Pcapng.packet(interface: 0, ticks: 5_000_000, frame)
        let read = try readPackets(write(file, dir))
        #expect(read.map(\.timestamp) == [5_000_000_000])
    }

    @Test func aPacketBlockTooShortForItsHeaderIsRefused() throws {
        let dir = try TemporaryDirectory()
        let file = twoInterfaces(first: []) + Pcapng.packet(interface: 0, ticks: 1, frame) + Pcapng.block(6, Pcapng.le32(0) + Pcapng.le32(0))
        let error = #expect(throws: PacketSourceError.self) { try readPackets(write(file, dir)) }
        #expect(error?.description.contains("truncated pcapng packet block") == true)
    }

    @Test func aPacketLongerThanItsBlockIsRefusedEvenWhenAnEarlierBlockWasLonger() throws {
        let dir = try TemporaryDirectory()
        // The first packet leaves 1500 bytes in the reused buffer; the second claims 1000
        // captured bytes in a block that holds 60: the reader must not hand out stale bytes.
        let big = [UInt8](repeating: 0xee, count: 1500)
        let file = twoInterfaces(first: []) + Pcapng.packet(interface: 0, ticks: 1, big)
            + Pcapng.packet(interface: 0, ticks: 2, frame, captured: 1000)
        let error = #expect(throws: PacketSourceError.self) { try readPackets(write(file, dir)) }
        #expect(error?.description.contains("pcapng packet longer than its block") == true)
    }

    @Test func aClassicHeaderClaimingA4GiBSnaplenIsReadWithinBounds() throws {
        let dir = try TemporaryDirectory()
        func le32(_ v: UInt32) -> [UInt8] { Pcapng.le32(v) }
        var file = le32(0xa1b2_c3d4) + Pcapng.le16(2) + Pcapng.le16(4) + le32(0) + le32(0) + le32(0xffff_ffff) + le32(1)
        file += le32(1) + le32(0) + le32(UInt32(frame.count)) + le32(UInt32(frame.count)) + frame
        let path = write(file, dir, "huge-snaplen.pcap")
        let source = try pcapRegistry.open(path, mode: .offline)
        #expect(source.info.snaplen == 262_144)
        #expect(try readPackets(path).map(\.bytes) == [frame])
        // A record past the 256 KiB libpcap allows is refused in libpcap's words.
        let oversized = file + le32(2) + le32(0) + le32(300_000) + le32(300_000) + [UInt8](repeating: 0, count: 300_000)
        let error = #expect(throws: PacketSourceError.self) { try readPackets(write(oversized, dir, "oversized.pcap")) }
        #expect(error?.description.contains("invalid packet capture length 300000, bigger than maximum of 262144") == true)
    }
}
