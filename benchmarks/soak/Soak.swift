// The soak benchmark: millions of packets of churning traffic through one tracker, in
// process (no file, no pipe), with the memory measured at each minute of traffic time.
// Flows start and end all the time; one datagram in ten loses a fragment and waits for the
// 5-minute fragment timeout; IP-in-IP tunnels come from over a million address pairs, more
// than the tunnel table holds; VXLAN carries flows of its own. After the warm-up (the
// longest timeout, 5 minutes) memory must stay flat: the ratio of the last minute's to the
// first minute's after the warm-up is printed.
//
//   swift run -c release Soak [PACKETS]     (built only with TRAWL_BENCH=1; benchmarks/soak/run)
#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCore
import TrawlSynth

final class CountingSink: ConnectionSink {
    var records: UInt64 = 0
    func connectionEnded(_ record: ConnectionRecord) { records += 1 }
    func weird(_ record: WeirdRecord) {}
}

let packets = CommandLine.arguments.count > 1 ? UInt64(CommandLine.arguments[1]) ?? 10_000_000 : 10_000_000
let gap: UInt64 = 100_000 // 100 us: 10 M packets are 16.7 minutes of traffic
let start: UInt64 = 1_700_000_000_000_000_000
let warmUpMinutes = 6

var flows = TrafficSynthesizer(.init(flows: Int.max / 2, concurrency: 20_000, udpShare: 0.3, maxPayload: 400, seed: 7))
var random = SplitMix64(seed: 11)
let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
let inner = UnsafeMutableRawBufferPointer.allocate(byteCount: TrafficSynthesizer.maximumFrameLength, alignment: 8)

func be16(_ v: Int, at: Int) { buffer[at] = UInt8(truncatingIfNeeded: v >> 8); buffer[at + 1] = UInt8(truncatingIfNeeded: v) }
func be32(_ v: UInt32, at: Int) { be16(Int(v >> 16), at: at); be16(Int(v & 0xffff), at: at + 2) }

/// Ethernet and an IPv4 header (no checksum: the tracker runs as with -C) at 0..<34.
func ipv4(source: UInt32, destination: UInt32, proto: UInt8, payload: Int, id: Int = 1, fragment: Int = 0x4000) {
    for i in 0..<12 { buffer[i] = 2 }
    be16(0x0800, at: 12)
    buffer[14] = 0x45; buffer[15] = 0
    be16(20 + payload, at: 16); be16(id, at: 18); be16(fragment, at: 20)
    buffer[22] = 64; buffer[23] = proto; be16(0, at: 24)
    be32(source, at: 26); be32(destination, at: 30)
}

/// A datagram's fragments still to send: (source, id, offset, length, more-fragments flag).
var fragments: [(UInt32, Int, Int, Int, Int)] = []

/// The next packet of the mix into `buffer`; its length. Of every 20: three slots for a
/// datagram's fragments (one datagram in ten loses its middle fragment, and that slot carries
/// a flow's packet), two IP-in-IP packets, one VXLAN packet, fourteen packets of flows.
func nextPacket(_ index: UInt64) -> Int {
    let slot = index % 20
    if slot == 0 {
        // From one of 256 sources, so that identifications seldom meet by chance.
        let source = 0xc633_6400 | UInt32(truncatingIfNeeded: random.next() % 256)
        let id = Int(random.next() % 65_536)
        fragments = [(source, id, 1024, 200, 0)]
        if random.next() % 10 != 0 { fragments.append((source, id, 512, 512, 0x2000)) }
        fragments.append((source, id, 0, 512, 0x2000))
    }
    if slot < 3, let (source, id, offset, count, more) = fragments.popLast() {
        ipv4(source: source, destination: 0xc633_6402, proto: 17, payload: count, id: id, fragment: offset / 8 | more)
        for i in 0..<count { buffer[34 + i] = 0x5a }
        return 34 + count
    }
    switch slot {
    case 3, 4: // IP in IP between one of a million pairs, around a flow's packet
        let length = flows.next(into: inner)!.length - 14
        let pair = UInt32(truncatingIfNeeded: random.next() % 1_048_576)
        ipv4(source: 0x6440_0000 | pair, destination: 0xc000_0201, proto: 4, payload: length)
        buffer.baseAddress!.advanced(by: 34).copyMemory(from: inner.baseAddress! + 14, byteCount: length)
        return 34 + length
    case 5: // VXLAN around a flow's frame
        let length = flows.next(into: inner)!.length
        ipv4(source: 0xc633_6403, destination: 0xc633_6404, proto: 17, payload: 8 + 8 + length)
        be16(49_152 + Int(random.next() % 1000), at: 34); be16(4789, at: 36); be16(16 + length, at: 38); be16(0, at: 40)
        buffer[42] = 0x08; for i in 43..<50 { buffer[i] = 0 }
        buffer.baseAddress!.advanced(by: 50).copyMemory(from: inner.baseAddress!, byteCount: length)
        return 50 + length
    default:
        let length = flows.next(into: inner)!.length
        buffer.baseAddress!.copyMemory(from: inner.baseAddress!, byteCount: length)
        return length
    }
}

/// `value` with `digits` decimals, right-aligned in `width` (no Foundation here).
func fixed(_ value: Double, _ digits: Int, width: Int = 0) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((value * scale).rounded())
    var text = String(scaled / Int(scale))
    if digits > 0 {
        let fraction = String(abs(scaled) % Int(scale))
        text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

func column(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

func residentMiB() -> Double {
    var pages = [Int](repeating: 0, count: 2)
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    _ = withVaList([withUnsafeMutablePointer(to: &pages[0]) { $0 }, withUnsafeMutablePointer(to: &pages[1]) { $0 }]) {
        vfscanf(file, "%ld %ld", $0)
    }
    return Double(pages[1]) * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

var configuration = AnalysisConfiguration()
configuration.verifyChecksums = false
let sink = CountingSink()
let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 5)
var minutes: [(minute: Int, rss: Double, tables: [TableStatistics])] = []
let began = Clock.monotonicNanoseconds()
print("minute  RSS MiB  connections  fragments  fragment KiB  ip tunnels")
for index in 0..<packets {
    let time = start + index * gap
    let length = nextPacket(index)
    tracker.process(Packet(timestampNanoseconds: time, capturedLength: length, wireLength: length,
                           bytes: UnsafeRawBufferPointer(rebasing: buffer[..<length])), linkType: 1)
    if (index + 1) % (60_000_000_000 / gap) == 0 {
        let tables = tracker.tables
        let entry = (minute: minutes.count + 1, rss: residentMiB(), tables: tables)
        minutes.append(entry)
        func entries(_ name: String) -> Int { tables.first { $0.name == name }?.entries ?? 0 }
        print(column(entry.minute, 6) + " " + fixed(entry.rss, 1, width: 8) + " " + column(entries("connections"), 12) + " "
              + column(entries("fragments"), 10) + " " + column(entries("fragment bytes") / 1024, 13) + " "
              + column(entries("ip tunnels"), 11))
    }
}
let seconds = Double(Clock.monotonicNanoseconds() - began) / 1e9
tracker.finish()
print("packets: \(packets) in \(fixed(seconds, 1)) s (\(fixed(Double(packets) / seconds / 1e6, 2)) Mpps), "
      + "\(sink.records) connections logged")
for table in tracker.tables {
    print("table \(table.name): peak \(table.peak) of \(table.bound), \(table.evicted) evicted, \(table.expired.map(String.init) ?? "-") expired")
}
if minutes.count > warmUpMinutes {
    let first = minutes[warmUpMinutes].rss, last = minutes[minutes.count - 1].rss
    print("memory ratio, minute \(minutes.count) to minute \(warmUpMinutes + 1) after the \(warmUpMinutes)-minute warm-up: "
          + fixed(last / first, 3) + " (flat: at most 1.05)")
} else {
    print("too few minutes of traffic for a ratio after the \(warmUpMinutes)-minute warm-up: give more packets")
}
