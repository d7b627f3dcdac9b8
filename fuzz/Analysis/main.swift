// Fuzzes everything a packet goes through: link layers, IP, fragments, transports, tunnels,
// connection tracking, and the records through the real log writers. The input chooses the
// link type and the settings, then holds packets:
//
//   byte 0        link type, as an index into `linkTypes`
//   byte 1        bit 0: verify checksums; bit 1: bare mode; bit 2: JSON logs;
//                 bit 3: tiny bounds (so that eviction and expiry are reached)
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

func analyse(_ input: UnsafeRawBufferPointer) {
    guard input.count >= 2 else { return }
    let linkType = linkTypes[Int(input[0]) % linkTypes.count]
    let flags = input[1]
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
    var time: UInt64 = 1_000_000_000_000
    var at = 2
    while at + 3 <= input.count {
        let length = Int(input[at]) << 8 | Int(input[at + 1])
        let step = input[at + 2]
        at += 3
        let end = min(at + length, input.count)
        time = step == 255 ? time - 10_000_000_000 : time + UInt64(step) * 125_000_000
        let bytes = UnsafeRawBufferPointer(rebasing: input[at..<end])
        tracker.process(Packet(timestampNanoseconds: time, capturedLength: bytes.count, wireLength: bytes.count, bytes: bytes),
                        linkType: linkType)
        at = end
    }
    tracker.finish()
    try? writer.close()
    unlink(directory + "/conn.log")
}

exit(trawl_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    analyse(UnsafeRawBufferPointer(start: data, count: size))
    return 0
})
