import Foundation
import Testing
import TrawlCLI
import TrawlCore

@Suite struct ArgumentTests {
    @Test func zeekStyleFlags() throws {
        guard case let .capture(options) = try parseArguments(["-C", "-r", "a.pcap", "-rb.pcap", "-f", "udp", "-w", "out.pcap", "Pcap::snaplen=100"]) else {
            Issue.record("not a capture")
            return
        }
        #expect(options.traces == ["a.pcap", "b.pcap"])
        #expect(options.filter == "udp")
        #expect(options.writePath == "out.pcap")
        #expect(!options.analysis.verifyChecksums)
        #expect(options.optionAssignments == ["Pcap::snaplen=100"])
        #expect(try parseArguments(["-N"]) == .listPlugins(verbose: false, name: nil, json: false))
        #expect(try parseArguments(["-NN", "Trawl::Pcap"]) == .listPlugins(verbose: true, name: "Trawl::Pcap", json: false))
        #expect(try parseArguments(["-N", "--json"]) == .listPlugins(verbose: false, name: nil, json: true))
    }

    @Test(arguments: [
        (["-r"], "option -r needs an argument"),
        (["-x"], "unknown option -x"),
        (["--bogus"], "unknown option --bogus"),
        (["-r", "a.pcap", "stray"], "unexpected argument 'stray'"),
        ([], "nothing to read: give -r FILE or -i INTERFACE"),
        (["-r", "a.pcap", "-i", "eth0"], "-r and -i cannot be mixed in one run"),
        (["-r", "a.pcap", "--json"], "--json goes with -N or -NN"),
    ] as [([String], String)])
    func usageErrors(arguments: [String], message: String) {
        #expect(throws: UsageError(message)) { try parseArguments(arguments) }
    }
}

/// The built `trawl` command, run as a user would.
@Suite struct CommandTests {
    @Test func listsPlugins() throws {
        let short = try trawl(["-N"])
        #expect(short.status == 0)
        #expect(short.stdout.split(separator: "\n").contains("Trawl::Pcap - Packet acquisition via libpcap (dynamic, version 1.0.0)"))

        let long = try trawl(["-NN"])
        #expect(long.stdout.contains("    [Packet Source] PcapReader (interface prefix \"pcap\"; supports live and trace input)"))
        #expect(long.stdout.contains("    [Constant] Pcap::buffer_size (count, default 134217728)"))

        let one = try trawl(["-NN", "trawl::pcap"])
        #expect(one.status == 0)
        #expect(one.stdout.hasPrefix("Trawl::Pcap - "))

        let missing = try trawl(["-N", "Zeek::Nope"])
        #expect(missing.status != 0)
        #expect(missing.stdout.isEmpty)
        #expect(missing.stderr.contains("plugin Zeek::Nope is not available"))
    }

    @Test func listsPluginsAsJSON() throws {
        let result = try trawl(["-NN", "--json"])
        #expect(result.status == 0)
        let plugins = try #require(try JSONSerialization.jsonObject(with: result.stdoutData) as? [[String: Any]])
        let pcap = try #require(plugins.first { $0["name"] as? String == "Trawl::Pcap" })
        #expect(pcap["option_namespace"] as? String == "Pcap")
        #expect((pcap["library"] as? String)?.hasSuffix("/libTrawlPcap.so") == true)
        let component = try #require((pcap["components"] as? [[String: Any]])?.first)
        #expect(component["prefix"] as? String == "pcap")
        #expect(component["live"] as? Bool == true && component["trace"] as? Bool == true)
        let options = try #require(pcap["options"] as? [[String: Any]])
        #expect(options.contains { $0["name"] as? String == "Pcap::snaplen" && $0["type"] as? String == "count" })
    }

    @Test func summarizesATrace() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.pcap"), flows: 120)
        let result = try trawl(["-r", trace.path])
        #expect(result.status == 0, "\(result.stderr)")
        let fields = summaryFields(result.stdout)
        #expect(fields["packets"] == String(trace.packets.count))
        #expect(fields["bytes"] == String(trace.byteCount))
        #expect(fields["first packet"] == "2023-11-14T22:13:20.000000000Z")
        let span = trace.packets.last!.timestamp - trace.packets.first!.timestamp
        #expect(fields["time span"] == "0.\(String(repeating: "0", count: 9 - String(span).count))\(span) s")
        #expect(fields["dropped"] == "n/a (trace input)")
        #expect(result.stderr.isEmpty)
    }

    @Test func filterFlag() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.pcapng"), format: .pcapng, flows: 120)
        let result = try trawl(["-r", trace.path, "-f", "udp"])
        #expect(summaryFields(result.stdout)["packets"] == String(trace.udpCount))
    }

    @Test func readsStandardInput() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.pcap"), flows: 40)
        let result = try trawl(["-r", "-"], input: try Data(contentsOf: URL(fileURLWithPath: trace.path)))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(summaryFields(result.stdout)["packets"] == String(trace.packets.count))
    }

    @Test func writeRoundTripIsByteIdentical() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("in.pcapng"), format: .pcapng, flows: 80)
        let out = dir.file("out.pcap")
        let result = try trawl(["-r", trace.path, "-w", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(summaryFields(result.stdout)["written"] == "\(trace.packets.count) packets to \(out)")
        #expect(try readPackets(out) == trace.packets)
        // tcpdump-compatible: classic pcap with the nanosecond magic.
        let magic = try Data(contentsOf: URL(fileURLWithPath: out)).prefix(4)
        #expect(Array(magic) == [0x4d, 0x3c, 0xb2, 0xa1])
    }

    @Test func writeWithFilterAndToStandardOutput() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("in.pcap"), flows: 80)
        let result = try trawl(["-r", trace.path, "-f", "tcp", "-w", "-"])
        #expect(result.status == 0)
        #expect(summaryFields(result.stderr)["packets"] == String(trace.packets.count - trace.udpCount)) // summary moved to stderr
        let piped = dir.file("piped.pcap")
        try result.stdoutData.write(to: URL(fileURLWithPath: piped))
        #expect(try readPackets(piped) == trace.packets.filter { $0.bytes[23] == 6 })
    }

    @Test func mergesSeveralTracesInTimeOrder() throws {
        let dir = try TemporaryDirectory()
        let a = try generateTrace(at: dir.file("a.pcap"), flows: 30, seed: 1)
        let b = try generateTrace(at: dir.file("b.pcapng"), format: .pcapng, flows: 20, seed: 2)
        let out = dir.file("merged.pcap")
        let result = try trawl(["-r", a.path, "-r", b.path, "-w", out])
        #expect(result.status == 0, "\(result.stderr)")
        let merged = try readPackets(out)
        #expect(merged.count == a.packets.count + b.packets.count)
        #expect(merged.map(\.timestamp) == merged.map(\.timestamp).sorted())
        #expect(Set(merged.map(\.bytes)) == Set((a.packets + b.packets).map(\.bytes)))
    }

    @Test func errorsUseZeeksWordsAndExitNonZero() throws {
        let dir = try TemporaryDirectory()
        let text = dir.file("notes.txt")
        FileManager.default.createFile(atPath: text, contents: Data("hello".utf8))
        let missing = dir.file("missing.pcap")
        let cases: [([String], String)] = [
            (["-r", missing], "fatal error: problem with trace file \(missing) (unable to open \(missing): No such file or directory)"),
            (["-r", text], "fatal error: problem with trace file \(text) (unknown file format)"),
            (["-r", "foo::bar"], "fatal error: type of packet source 'foo' not recognized, or mode not supported"),
            (["-i", "foo::eth0"], "fatal error: type of packet source 'foo' not recognized, or mode not supported"),
            (["-i", "trawl-no-such-if9"], "fatal error: problem with interface trawl-no-such-if9 (No such device)"),
            (["-r", text, "Pcap::snaplen=big"], "fatal error: invalid value 'big' for Pcap::snaplen: expected count"),
            (["-r", text, "Nope::fanout_id=1"], "fatal error: unknown option Nope::fanout_id"),
            (["-r", text, "AF_Packet::fanoutid=1"], "fatal error: unknown option AF_Packet::fanoutid"),
        ]
        for (arguments, message) in cases {
            let result = try trawl(arguments)
            // A missing interface or file has an exit status of its own (sysexits' EX_NOINPUT).
            #expect(result.status == (message.contains("No such device") || message.contains("No such file") ? 66 : 1), "\(arguments)")
            #expect(result.stdout.isEmpty, "\(arguments) wrote to stdout")
            #expect(result.stderr.hasPrefix(message), "\(arguments): \(result.stderr)")
        }
        // An unknown prefix: after Zeek's words, the prefixes there are and where plugins are searched.
        let unknown = try trawl(["-i", "foo::eth0"]).stderr
        #expect(unknown.contains("the prefixes the loaded plugins give: ") && unknown.contains("af_packet")
                && unknown.contains("a plugin for 'foo' is searched in $TRAWL_PLUGIN_PATH"), "\(unknown)")
        let listed = try trawl(["-r", text, "Pcap::nope=1"])
        #expect(listed.stderr.contains("valid options are:\n"))
        #expect(listed.stderr.contains("\n    Pcap::snaplen (count, default 262144)\n"))
        #expect(listed.stderr.contains("\n    AF_Packet::fanout_id (count, default 23)\n"))
        let usage = try trawl(["-q"])
        #expect(usage.status == 1)
        #expect(usage.stderr.hasPrefix("trawl: unknown option -q\nusage: trawl"))
    }

    @Test func badFilterAndUnwritableOutputLeaveNothingBehind() throws {
        let dir = try TemporaryDirectory()
        let trace = try generateTrace(at: dir.file("t.pcap"), flows: 10)
        let out = dir.file("out.pcap")
        let bad = try trawl(["-r", trace.path, "-f", "port nonsense", "-w", out])
        #expect(bad.status == 1)
        #expect(bad.stderr.hasPrefix("fatal error: problem with trace file \(trace.path) (invalid filter 'port nonsense'"))
        let unwritable = try trawl(["-r", trace.path, "-w", dir.file("no/such/dir/out.pcap")])
        #expect(unwritable.status == 1)
        #expect(unwritable.stderr.contains("cannot write"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["t.pcap"])
    }

    @Test func cPluginThroughThePluginPath() throws {
        let dir = try TemporaryDirectory()
        try buildCounterPlugin(into: dir.path)
        FileManager.default.createFile(atPath: dir.file("libbroken.so"), contents: Data("junk".utf8))
        let env = [PluginLoader.pathVariable: dir.path]
        let listing = try trawl(["-NN", "Example::Counter"], environment: env)
        #expect(listing.status == 0)
        #expect(listing.stdout.contains("[Packet Source] CounterReader (interface prefix \"counter\"; supports trace input)"))
        #expect(listing.stdout.contains("[Constant] Counter::size (count, default 64)"))
        #expect(listing.stderr.contains("warning: plugin \(dir.file("libbroken.so")): cannot load:"))

        let run = try trawl(["-r", "counter::2500", "Counter::size=60", "Counter::start=2"], environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        let fields = summaryFields(run.stdout)
        #expect(fields["packets"] == "2500")
        #expect(fields["bytes"] == "150000")
        #expect(fields["first packet"] == "1970-01-01T00:00:02.000000000Z")
        #expect(fields["time span"] == "0.002499000 s")
        let clash = try trawl(["-N"], environment: [PluginLoader.pathVariable: "\(dir.path):" + (try buildCounterPlugin(
            into: dir.path, name: "other.so", flags: ["-DCOUNTER_NAME=\"Other::Counter\""]))])
        #expect(clash.status == 1)
        #expect(clash.stderr.contains("fatal error: packet source prefix 'counter' is claimed by both"))
    }
}

@Suite struct InstallTests {
    /// scripts/install lays out PREFIX/bin and PREFIX/lib/trawl/plugins, and the installed
    /// trawl finds its plugins there by itself.
    @Test func installedTrawlFindsItsPlugins() throws {
        let prefix = try TemporaryDirectory()
        let install = try runProcess(Paths.packageRoot + "/scripts/install", ["--from", Paths.buildDirectory, prefix.path])
        #expect(install.status == 0, "\(install.stderr)")
        let listing = try runProcess(prefix.file("bin/trawl"), ["-NN", "--json"])
        #expect(listing.status == 0, "\(listing.stderr)")
        let plugins = try #require(try JSONSerialization.jsonObject(with: listing.stdoutData) as? [[String: Any]])
        #expect(plugins.map { $0["name"] as? String } == ["Trawl::AF_Packet", "Trawl::Netmap", "Trawl::PF_Ring", "Trawl::Pcap"])
        #expect(plugins.map { $0["library"] as? String } == ["AFPacket", "Netmap", "PFRing", "Pcap"].map {
            prefix.file("lib/trawl/plugins/libTrawl\($0).so")
        })
    }
}
