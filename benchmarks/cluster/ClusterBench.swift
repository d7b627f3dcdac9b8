// The cluster benchmark's record source: synthetic conn.log records, the same for every run,
// written to a local file the way a standalone trawl writes them, or shipped as a cluster
// worker ships them (encoded into batches, through the outbox and the shipper, to the
// layout's loggers, acknowledged). benchmarks/cluster/run drives it.
//
//   ClusterBench local COUNT DIR [NODE...]       write COUNT records of each NODE (numbers) to DIR/conn.log
//   ClusterBench worker LAYOUT NODE COUNT [RATE] ship COUNT records as NODE (RATE records/s at most)
#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCluster
import TrawlCore

func records(_ count: Int, node: Int, _ body: (ConnectionRecord) throws -> Void) rethrows {
    var random = SplitMix64(seed: UInt64(node) &* 0x9e37_79b9 &+ 1)
    let states = ["SF", "S0", "REJ", "RSTO", "OTH"]
    let histories = ["ShADadFf", "S", "Sr", "ShADadR", "D"]
    for index in 0..<count {
        let r = random.next()
        let client = IPAddress(high: 0, low: 0x0000_ffff_0a00_0000 | (r & 0xffff))
        let server = IPAddress(high: 0, low: 0x0000_ffff_ac10_0000 | (r >> 16 & 0xffff))
        let kind = Int(r >> 32 % 5)
        try body(ConnectionRecord(
            start: 1_700_000_000_000_000_000 + UInt64(index) * 1000, uid: "C\(node)x\(index)", origAddress: client,
            origPort: UInt16(truncatingIfNeeded: r >> 8), respAddress: server, respPort: [80, 443, 53, 22, 8080][kind],
            proto: kind == 2 ? 17 : 6, duration: r >> 40, origBytes: r & 0xfff, respBytes: r >> 20 & 0xffff,
            state: states[kind], localOrig: true, localResp: r & 1 == 0, missedBytes: 0, history: histories[kind],
            origPackets: r & 0x1f, origIPBytes: r & 0xffff, respPackets: r >> 5 & 0x1f, respIPBytes: r >> 24 & 0xffff))
    }
}

/// VmHWM of /proc/self/status: the most memory the process has held.
func peakResidentKiB() -> Int {
    guard let text = try? String(decoding: readAll("/proc/self/status"), as: UTF8.self) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    return 0
}

func readAll(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { return bytes }
        bytes += chunk[0..<n]
    }
}

func seconds(since start: UInt64) -> Double { Double(Clock.monotonicNanoseconds() - start) / 1e9 }

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    print("usage: ClusterBench local COUNT DIR | worker LAYOUT NODE COUNT [RATE]")
    exit(2)
}
switch arguments[1] {
case "local":
    let count = Int(arguments[2])!
    let start = Clock.monotonicNanoseconds()
    let writer = try ZeekASCIIWriter(schema: .conn, directory: arguments[3])
    var values: [LogValue] = []
    let nodes = arguments.count > 4 ? arguments[4...].map { Int($0)! } : [0]
    for node in nodes {
        try records(count, node: node) { record in
            values.removeAll(keepingCapacity: true)
            record.appendLogValues(to: &values)
            try writer.write(values)
        }
    }
    try writer.close()
    print("local: \(count * nodes.count) records in \(seconds(since: start)) s")
case "worker":
    let layout = try ClusterLayout.load(path: arguments[2])
    let node = layout.node(named: arguments[3])!
    let count = Int(arguments[4])!
    let rate = arguments.count > 5 ? Double(arguments[5])! : 0
    let shipping = try WorkerShipping(layout: layout, node: node, security: .plaintext) { print("warning: \($0)") }
    let writer = shipping.writer(for: .conn)
    let start = Clock.monotonicNanoseconds()
    var values: [LogValue] = []
    var written = 0
    try records(count, node: Int(node.name.split(separator: "-").last.flatMap { Int($0) } ?? 0)) { record in
        values.removeAll(keepingCapacity: true)
        record.appendLogValues(to: &values)
        try writer.write(values)
        written += 1
        // Paced: a steady load, as a link's connections end.
        if rate > 0 && written % 1000 == 0 {
            let due = Double(written) / rate - seconds(since: start)
            if due > 0 { usleep(UInt32(due * 1e6)) }
        }
        if written % 100_000 == 0 { try writer.flush() }
    }
    try writer.close()
    let produced = seconds(since: start)
    shipping.finish()
    let c = shipping.counters
    print("worker \(node.name): \(count) records made in \(produced) s, delivered in \(seconds(since: start)) s; acknowledged \(c.acknowledged) of \(c.made) batches, resent \(c.resent), spooled \(c.spooled), dropped \(c.dropped), left \(shipping.pending); peak memory \(peakResidentKiB()) KiB")
default:
    print("unknown mode \(arguments[1])")
    exit(2)
}
