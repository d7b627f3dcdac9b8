// Fuzzes what a cluster node reads from the network and from its layout file: byte 0 picks
// the reader (B a log batch, A an acknowledgement, L a layout; else all three), the rest is
// the input. A batch that decodes must decode the same after encoding its values again.
#if canImport(Glibc)
import Glibc
#endif
import CFuzzDriver
import TrawlAnalysis
import TrawlCluster

func checkBatch(_ bytes: [UInt8]) {
    guard let batch = try? LogBatchDecoder(bytes) else { return }
    let encoder = LogBatchEncoder(batch.header)
    var count = 0
    batch.forEachRecord { values in
        precondition(values.count == batch.header.fields.count, "a record of the wrong width")
        encoder.append(values)
        count += 1
    }
    precondition(count == batch.recordCount, "records lost in decoding")
    guard let again = try? LogBatchDecoder(encoder.bytes) else { preconditionFailure("a re-encoded batch does not decode") }
    precondition(again.header == batch.header && again.recordCount == batch.recordCount, "a re-encoded batch differs")
}

exit(trawl_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    guard size > 0 else { return 0 }
    let all = Array(UnsafeRawBufferPointer(start: data, count: size))
    let selector = all[0], input = Array(all.dropFirst())
    if selector == UInt8(ascii: "B") || selector > UInt8(ascii: "Z") { checkBatch(input) }
    if selector == UInt8(ascii: "A") || selector > UInt8(ascii: "Z") {
        if let ack = try? LogAck(input) { precondition((try? LogAck(ack.bytes)) == ack, "an ack that does not round-trip") }
    }
    if selector == UInt8(ascii: "L") || selector > UInt8(ascii: "Z") {
        _ = try? ClusterLayout.parse(String(decoding: input, as: UTF8.self), file: "fuzz.json")
    }
    return 0
})
