// trawl-mkpcap: writes a synthetic trace of whole TCP and UDP conversations, for the
// sample run, tests and benchmarks.
#if canImport(Glibc)
import Glibc
#endif
import TrawlCore
import TrawlSynth

let usage = """
usage: trawl-mkpcap [--flows N] [--packets N] [--concurrency N] [--udp-share F] [--max-payload N]
                    [--seed N] [--gap-ns N] [--format pcap|pcap-us|pcapng] OUTPUT
  Writes Ethernet/IPv4 conversations with valid checksums to OUTPUT ("-" for standard output).
  --flows N        conversations in all (default 1000)
  --packets N      stop after N packets (default: when every conversation has ended)
  --format F       pcap (nanosecond, default), pcap-us (microsecond) or pcapng
"""

func fail(_ message: String) -> Never {
    fputs("trawl-mkpcap: \(message)\n", stderr)
    exit(2)
}

var configuration = TrafficSynthesizer.Configuration()
var packetLimit: UInt64?
var format = TraceFileFormat.pcapNanosecond
var output: String?
var arguments = CommandLine.arguments.dropFirst()

func number<T: LosslessStringConvertible>(_ flag: String, _ type: T.Type) -> T {
    guard let text = arguments.popFirst() else { fail("\(flag) needs a value") }
    guard let value = T(text) else { fail("\(flag): '\(text)' is not a valid \(T.self)") }
    return value
}

while let argument = arguments.popFirst() {
    switch argument {
    case "--flows": configuration.flows = number(argument, Int.self)
    case "--packets": packetLimit = number(argument, UInt64.self)
    case "--concurrency": configuration.concurrency = number(argument, Int.self)
    case "--udp-share": configuration.udpShare = number(argument, Double.self)
    case "--max-payload": configuration.maxPayload = number(argument, Int.self)
    case "--seed": configuration.seed = number(argument, UInt64.self)
    case "--gap-ns": configuration.gapNanoseconds = number(argument, UInt64.self)
    case "--format":
        switch arguments.popFirst() {
        case "pcap": format = .pcapNanosecond
        case "pcap-us": format = .pcapMicrosecond
        case "pcapng": format = .pcapng
        case let other: fail("--format: '\(other ?? "")' is not pcap, pcap-us or pcapng")
        }
    case "-h", "--help": print(usage); exit(0)
    default:
        if argument.hasPrefix("--") || output != nil { fail("unexpected argument '\(argument)'\n\(usage)") }
        output = argument
    }
}
guard let output else { fail("no OUTPUT file given\n\(usage)") }
guard configuration.flows > 0, configuration.concurrency > 0, configuration.maxPayload > 0,
      (0...1).contains(configuration.udpShare) else { fail("--flows, --concurrency and --max-payload must be positive, --udp-share in 0...1") }

var synthesizer = TrafficSynthesizer(configuration)
let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: TrafficSynthesizer.maximumFrameLength, alignment: 8)
var bytes: UInt64 = 0
do {
    let writer = try TraceWriter(path: output, format: format, linkType: 1)
    while packetLimit.map({ synthesizer.packetsGenerated < $0 }) ?? true,
          let (length, timestamp) = synthesizer.next(into: frame) {
        try writer.write(timestampNanoseconds: timestamp, wireLength: length, bytes: UnsafeRawBufferPointer(rebasing: frame[..<length]))
        bytes += UInt64(length)
    }
    try writer.finish()
} catch {
    fail("cannot write \(output): \(error)")
}
if output != "-" {
    print("\(output): \(synthesizer.packetsGenerated) packets, \(bytes) bytes, \(synthesizer.flowsStarted) flows")
}
