// Fuzzes everything a packet goes through: link layers, IP, fragments, transports, tunnels,
// connection tracking, and the records through the real log writers. The input chooses the
// link type and the settings, then holds packets:
//
//   byte 0        link type, as an index into `linkTypes`
//   byte 1        bit 0: verify checksums; bit 1: bare mode; bit 2: JSON logs;
//                 bit 3: tiny bounds (so that eviction and expiry are reached);
//                 bit 4: TCP header prediction checked against the long way (the input runs
//                 twice, with and without it, and the records must agree)
//   then, each    2-byte big-endian length, 1 byte of time step (in 1/8 s, 255: back 10 s),
//   packet        the packet's bytes
#if canImport(Glibc)
import Glibc
#endif
import CFuzzDriver
import TrawlAnalysis
import TrawlCore

let linkTypes: [UInt32] = [1, 101, 113, 276, 105, 127, 239, 0, 108, 9, 50, 10, 12, 14, 228, 229]
let directory = "/dev/shm/trawl-fuzz-\(getpid())"
mkdir(directory, 0o700)
// Gone again when the fuzzer exits (each input's conn.log is removed after it).
atexit { rmdir("/dev/shm/trawl-fuzz-\(getpid())") }

final class CollectingSink: ConnectionSink {
    var rows: [String] = []
    func connectionEnded(_ r: ConnectionRecord) {
        rows.append("\(r.uid) \(r.origAddress) \(r.origPort) \(r.respAddress) \(r.respPort) \(r.duration) \(r.origBytes) "
            + "\(r.respBytes) \(r.state) \(r.missedBytes) \(r.history) \(r.origPackets) \(r.origIPBytes) \(r.respPackets) "
            + "\(r.respIPBytes) \(r.tunnelParents)")
    }
    func weird(_ r: WeirdRecord) { rows.append("weird \(r.name) \(r.uid ?? "-") \(r.source ?? "-")") }
}

/// The packets of the input, with their times, handed to `body` one by one.
func packets(_ input: UnsafeRawBufferPointer, _ body: (Packet) -> Void) {
    var time: UInt64 = 1_000_000_000_000
    var at = 2
    while at + 3 <= input.count {
        let length = Int(input[at]) << 8 | Int(input[at + 1])
        let step = input[at + 2]
        at += 3
        let end = min(at + length, input.count)
        time = step == 255 ? time - 10_000_000_000 : time + UInt64(step) * 125_000_000
        let bytes = UnsafeRawBufferPointer(rebasing: input[at..<end])
        body(Packet(timestampNanoseconds: time, capturedLength: bytes.count, wireLength: bytes.count, bytes: bytes))
        at = end
    }
}

func analyse(_ input: UnsafeRawBufferPointer) {
    guard input.count >= 2 else { return }
    let linkType = linkTypes[Int(input[0]) % linkTypes.count]
    let flags = input[1]
    if flags & 16 != 0 {
        compareHeaderPrediction(input, linkType: linkType, flags: flags)
        return
    }
    var configuration = AnalysisConfiguration()
    configuration.verifyChecksums = flags & 1 != 0
    configuration.bareMode = flags & 2 != 0
    if flags & 8 != 0 {
        configuration.maximumConnections = 8
        configuration.maximumHistory = 24
        configuration.maximumHoles = 4
        configuration.fragmentLimits.maximumDatagrams = 4
        configuration.fragmentLimits.maximumBytes = 2048
        configuration.fragmentLimits.maximumPieces = 8
        configuration.fragmentLimits.timeout = 2_000_000_000
        configuration.ipTunnelLimits.maximumTunnels = 2
        configuration.ipTunnelLimits.timeout = 3_000_000_000
    }
    let writer: LogWriter
    do {
        writer = flags & 4 != 0 ? try JSONLinesWriter(schema: .conn, directory: directory)
            : try ZeekASCIIWriter(schema: .conn, directory: directory, openedAt: 0)
    } catch {
        fatalError("cannot open a log in \(directory): \(error)")
    }
    let sink = ConnLogSink(writer: writer)
    let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 1)
    packets(input) { tracker.process($0, linkType: linkType) }
    tracker.finish()
    try? writer.close()
    unlink(directory + "/conn.log")
}

/// The same packets with and without TCP header prediction: the records must be the same.
func compareHeaderPrediction(_ input: UnsafeRawBufferPointer, linkType: UInt32, flags: UInt8) {
    func rows(_ predict: Bool) -> [String] {
        var configuration = AnalysisConfiguration()
        configuration.verifyChecksums = flags & 1 != 0
        configuration.bareMode = flags & 2 != 0
        configuration.headerPrediction = predict
        let sink = CollectingSink()
        let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 1)
        packets(input) { tracker.process($0, linkType: linkType) }
        tracker.finish()
        return sink.rows
    }
    let short = rows(true), long = rows(false)
    if short != long {
        fatalError("header prediction changed the records:\n\(short.joined(separator: "\n"))\n--- the long way:\n\(long.joined(separator: "\n"))")
    }
}

exit(trawl_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    analyse(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
