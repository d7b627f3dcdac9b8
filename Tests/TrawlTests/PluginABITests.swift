import Foundation
import Testing
import TrawlCore

/// The ABI's growth rule, its checks, and the host's services, against C plugins built here
/// with cc: Tests/Fixtures/counter_plugin.c, against today's header and against the frozen
/// header of ABI 1.0 (Tests/Fixtures/abi-1.0).
@Suite struct PluginABITests {
    static let frozenHeader = Paths.packageRoot + "/Tests/Fixtures/abi-1.0"

    @Test func aPluginBuiltAgainstTheFrozen1_0HeaderLoadsAndRuns() throws {
        let dir = try TemporaryDirectory()
        chmod(dir.path, 0o755)
        let library = try buildCounterPlugin(into: dir.path, header: Self.frozenHeader)
        // Listed with the ABI it was built for; the built trawl runs it.
        let listing = try trawl(["-NN", "Example::Counter"], environment: [PluginLoader.pathVariable: library])
        #expect(listing.stdout.contains("    [Library] \(library) (plugin ABI 1.0)\n"), "\(listing.stdout)\(listing.stderr)")
        let run = try trawl(["-r", "counter::500", "--no-analysis"], environment: [PluginLoader.pathVariable: library])
        #expect(summaryFields(run.stdout)["packets"] == "500", "\(run.stderr)")
        let plugin = try PluginLoader.loadLibrary(at: library).get()
        #expect(plugin.abiVersion == PluginABIVersion(major: 1, minor: 0))
        #expect(plugin.components[0].fileMagics.isEmpty) // 1.0 has no magics: nothing past its 64 bytes is read
        let registry = SourceRegistry()
        try registry.register(plugin)
        let settings = try OptionSettings(assignments: ["Counter::size=80"], registry: registry)
        let packets = try readPackets("counter::1000", registry: registry, settings: settings, batchCapacity: 256)
        #expect(packets.count == 1000)
        #expect(packets.allSatisfy { $0.bytes.count == 80 })
        // A 1.0 plugin that fails says nothing of a code: unspecified, not garbage.
        let error = #expect(throws: PacketSourceError.self) { try registry.open("counter::x", mode: .offline) }
        #expect(error?.code == .unspecified)
    }

    @Test func theSameSourceBuiltFor1_1HasWhat1_1Added() throws {
        let dir = try TemporaryDirectory()
        let plugin = try PluginLoader.loadLibrary(at: try buildCounterPlugin(into: dir.path)).get()
        #expect(plugin.abiVersion == PluginABIVersion.host)
        #expect(plugin.components[0].fileMagics == [Array("TRAWLCNT".utf8)])
        #expect(plugin.runtime == "c")
        let json = try trawl(["-NN", "Example::Counter", "--json"], environment: [PluginLoader.pathVariable: plugin.origin.path ?? ""])
        #expect(json.stdout.contains(#""abi":"1.1","runtime":"c""#) && json.stdout.contains(#""file_magics":["545241574c434e54"]"#),
                "\(json.stdout)")
    }

    @Test func aPluginNeedingANewerMinorIsRefusedNamingBothVersions() throws {
        let dir = try TemporaryDirectory()
        // 1.5: major 1 in the low half, minor 5 in the high half.
        let library = try buildCounterPlugin(into: dir.path, flags: ["-DCOUNTER_ABI_VERSION=0x00050001u"])
        let error = PluginLoader.loadLibrary(at: library).loadError
        #expect(error == .abiVersion(found: PluginABIVersion(major: 1, minor: 5)))
        #expect(error?.description == "needs plugin ABI 1.5, this trawl speaks 1.1: use a newer trawl, or build the plugin for 1.1")
    }

    @Test func versionRule() {
        let host = PluginABIVersion(major: 1, minor: 1)
        #expect(host.loads(PluginABIVersion(encoded: 1)))          // 1.0, the first release's plain 1
        #expect(host.loads(PluginABIVersion(encoded: 0x0001_0001)))
        #expect(!host.loads(PluginABIVersion(encoded: 0x0002_0001))) // a newer minor
        #expect(!host.loads(PluginABIVersion(encoded: 2)))           // another major
        #expect(PluginABIVersion(encoded: 0x0003_0002).description == "2.3")
        #expect(PluginABIVersion.host.encoded == 0x0001_0001)
    }

    @Test func descriptorChecksOfWhat1_1Added() throws {
        let dir = try TemporaryDirectory()
        func refusal(_ flags: [String]) throws -> String? {
            PluginLoader.loadLibrary(at: try buildCounterPlugin(into: dir.path, name: "lib\(flags.count)-\(flags.hashValue).so", flags: flags))
                .loadError?.description
        }
        #expect(try refusal(["-DCOUNTER_STRUCT_SIZE=64"])
            == "invalid plugin descriptor: struct_size 64 is smaller than 88, the size of ABI 1.1")
        #expect(try refusal(["-DCOUNTER_RESERVED=7"]) == "invalid plugin descriptor: Example::Counter: reserved is 7, must be 0")
        #expect(try refusal(["-DCOUNTER_RUNTIME=\"rust\""]) == "needs the runtime 'rust', which this trawl does not know")
        let swift = try refusal(["-DCOUNTER_RUNTIME=\"swift-5.9\""])
        #expect(swift?.hasPrefix("a Swift plugin built with swift-5.9, but this trawl was built with \(SwiftToolchain.runtime): ") == true)
        #expect(swift?.contains("must be built with the same toolchain as trawl") == true)
        #expect(try refusal(["-DCOUNTER_RUNTIME=\"c\""]) == nil)
        // What the plugin fills at open is checked there.
        let registry = SourceRegistry()
        try registry.register(try PluginLoader.loadLibrary(at: try buildCounterPlugin(into: dir.path, name: "libinfo.so",
                                                                                    flags: ["-DCOUNTER_INFO_RESERVED=3"])).get())
        let error = #expect(throws: PacketSourceError.self) { try registry.open("counter::5", mode: .offline) }
        #expect(error?.description == "problem with trace file counter::5 (the plugin's trawl_source_info.reserved is 3; it must be 0)")
        #expect(try refusal(["-DCOUNTER_RUNTIME=\"\(SwiftToolchain.runtime)\""]) == nil)
    }

    @Test func aLibraryMissingSwiftSymbolsIsSaidToNeedTheSameToolchain() throws {
        let dir = try TemporaryDirectory()
        // What a Swift plugin built by another toolchain looks like to dlopen: a symbol of
        // the Swift runtime this trawl's does not have.
        let source = dir.file("swifty.c")
        try #"extern char missing __asm__("$s5Trawl14fromElsewhereyyF"); void *p = &missing;"#
            .write(toFile: source, atomically: true, encoding: .utf8)
        let library = dir.file("libswifty.so")
        let built = try runProcess("/usr/bin/env", ["cc", "-shared", "-fPIC", "-o", library, source])
        #expect(built.status == 0, "\(built.stderr)")
        let message = PluginLoader.loadLibrary(at: library).loadError?.description ?? ""
        #expect(message.contains("undefined symbol: $s5Trawl14fromElsewhereyyF"))
        #expect(message.contains("this looks like a Swift plugin built with another toolchain"))
        // A C library's missing symbol gets no such guess.
        let plain = dir.file("plain.c")
        try "extern char missing; void *p = &missing;".write(toFile: plain, atomically: true, encoding: .utf8)
        _ = try runProcess("/usr/bin/env", ["cc", "-shared", "-fPIC", "-o", dir.file("libplain.so"), plain])
        #expect(!(PluginLoader.loadLibrary(at: dir.file("libplain.so")).loadError?.description.contains("Swift") ?? true))
    }

    @Test func asRootLibrariesOthersCanWriteAreRefused() throws {
        let dir = try TemporaryDirectory()
        chmod(dir.path, 0o755)
        let library = try buildCounterPlugin(into: dir.path)
        chmod(library, 0o755)
        func diagnostics(_ entry: String) throws -> [String] {
            try PluginLoader(entries: [PluginDirectory(path: entry)], secure: true).load(into: SourceRegistry()).map(\.message)
        }
        #expect(try diagnostics(dir.path).isEmpty)

        chmod(library, 0o775)
        let file = try diagnostics(dir.path)
        #expect(file == ["refused: trawl runs as root and \(library) is writable by its group (mode 0775), "
            + "so someone other than root could change code that runs as root; fix it with: chmod go-w \(library)"])
        chmod(library, 0o755)

        chmod(dir.path, 0o777)
        let directory = try diagnostics(dir.path)
        #expect(directory.count == 1 && directory[0].contains("the directory \(dir.path) is writable by group and others (mode 0777)"))
        #expect(directory.first?.hasSuffix("fix it with: chmod go-w \(dir.path)") == true)
        // A file named on its own in a sticky directory: others can add files, not replace it.
        chmod(dir.path, 0o1777)
        #expect(try diagnostics(library).isEmpty)
        #expect(try diagnostics(dir.path).count == 1) // but a scan of it is refused
        chmod(dir.path, 0o755)

        // A directory above, writable without the sticky bit: the plugin's could be swapped.
        let outer = try TemporaryDirectory()
        chmod(outer.path, 0o757)
        try FileManager.default.createDirectory(atPath: outer.file("plugins"), withIntermediateDirectories: false)
        chmod(outer.file("plugins"), 0o755)
        let nested = try buildCounterPlugin(into: outer.file("plugins"))
        chmod(nested, 0o755)
        let above = try diagnostics(outer.file("plugins"))
        #expect(above.count == 1 && above[0].contains("the directory \(outer.path) is writable by others (mode 0757)"))
        // Only its group may write it (Debian's /usr/local for group staff): let be.
        chmod(outer.path, 0o2775)
        #expect(try diagnostics(outer.file("plugins")).isEmpty)
        chmod(outer.path, 0o755)
        #expect(try diagnostics(outer.file("plugins")).isEmpty)
        // Not root (or not asked to check): loaded as before.
        chmod(library, 0o777)
        #expect(try PluginLoader(entries: [PluginDirectory(path: library)], secure: false).load(into: SourceRegistry()).isEmpty)
    }
}

/// The host's services (trawl_host) and error codes, through the built trawl.
@Suite struct PluginHostServiceTests {
    /// The counter plugin, alone in a directory only root can write.
    static func plugin() throws -> (TemporaryDirectory, [String: String]) {
        let dir = try TemporaryDirectory()
        chmod(dir.path, 0o755)
        let library = try buildCounterPlugin(into: dir.path)
        return (dir, ["TRAWL_PLUGIN_PATH": library])
    }

    @Test func warningsAreShownAndWeirdsLoggedAsZeekLogsPktSrcWeirds() throws {
        let (dir, environment) = try Self.plugin()
        let logs = dir.file("logs")
        let result = try trawl(["-r", "counter::1000,warn,weird=300", "--logdir", logs], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning: counter::1000,warn,weird=300: counting out synthetic frames"))
        let fields = summaryFields(result.stdout)
        #expect(fields["weird"]?.contains("counter_milestone 4") == true, "\(result.stdout)")
        // Four of one name about nothing in particular: the first is logged, the repeats
        // within ten minutes are held back, as weird.zeek holds a net weird's repeats.
        #expect(fields["weird.log"]?.hasPrefix("1 rows, 3 held back") == true, "\(result.stdout)")
        #expect(fields["reported by sources"] == "counter::1000,warn,weird=300 1 warnings, 4 weirds", "\(result.stdout)")
        let rows = try String(contentsOfFile: logs + "/weird.log", encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(rows.count == 1)
        let columns = rows.first.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) } ?? []
        #expect(columns.count == 11)
        #expect(Array(columns.dropFirst(1)) == ["-", "-", "-", "-", "-", "counter_milestone", "a round number", "F", "zeek", "-"])
        // At the network time of the batch it came with, not before the first packet.
        #expect(Double(columns.first ?? "") ?? 0 >= 1_000_000_000)
    }

    @Test func aSourceWeirdUnderOneOfZeeksNamesFollowsZeeksPolicyForIt() throws {
        let (dir, environment) = try Self.plugin()
        // weird.zeek ignores spontaneous_FIN: counted, never logged.
        let ignored = try trawl(["-r", "counter::1000,weird=300,name=spontaneous_FIN", "--logdir", dir.file("a")], environment: environment)
        #expect(summaryFields(ignored.stdout)["weird"]?.contains("spontaneous_FIN 4") == true, "\(ignored.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("a/weird.log")))
        // A name weird.zeek logs: logged once, with the source's addl.
        let logged = try trawl(["-r", "counter::1000,weird=300,name=truncated_header", "--logdir", dir.file("b")], environment: environment)
        let rows = try String(contentsOfFile: dir.file("b/weird.log"), encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(rows.count == 1 && rows[0].contains("\ttruncated_header\ta round number\tF\tzeek\t-"), "\(rows)")
        // One weird.zeek makes a notice: in weird.log with notice T, and in notice.log.
        let notice = try trawl(["-r", "counter::1000,weird=300,name=FIN_storm", "--logdir", dir.file("c")], environment: environment)
        #expect(notice.status == 0, "\(notice.stderr)")
        let weirdRows = try String(contentsOfFile: dir.file("c/weird.log"), encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(weirdRows.count == 1 && weirdRows[0].contains("\tFIN_storm\ta round number\tT\tzeek\t-"), "\(weirdRows)")
        let notices = try String(contentsOfFile: dir.file("c/notice.log"), encoding: .utf8)
        #expect(notices.contains("\tWeird::Activity\tFIN_storm\t"), "\(notices)")
    }

    @Test func aSourceThatFailsThroughTheHostStopsTheRunWithItsMessage() throws {
        let (dir, environment) = try Self.plugin()
        let result = try trawl(["-r", "counter::1000,fail=500", "-w", dir.file("out.pcap")], environment: environment)
        #expect(result.status == 1)
        #expect(result.stderr.contains("fatal error: problem with trace file counter::1000,fail=500 (the counter broke down)"))
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.pcap"))) // nothing half-written
    }

    @Test func errorCodesGiveAHintAndAnExitStatus() throws {
        let (dir, environment) = try Self.plugin()
        defer { withExtendedLifetime(dir) {} }
        let permission = try trawl(["-r", "counter::10,code=1"], environment: environment)
        #expect(permission.status == 77)
        #expect(permission.stderr.contains("fatal error: problem with trace file counter::10,code=1 (asked to fail with code 1)\n"
            + "hint: capturing needs root, or the capabilities CAP_NET_RAW and CAP_NET_ADMIN; grant them with: sudo setcap cap_net_raw,cap_net_admin=eip "))
        #expect(try trawl(["-r", "counter::10,code=3"], environment: environment).status == 66)
        let busy = try trawl(["-r", "counter::10,code=4"], environment: environment)
        #expect(busy.status == 69 && busy.stderr.contains("hint: another process holds it"))
        let unknown = try trawl(["-r", "counter::10,code=4242"], environment: environment)
        #expect(unknown.status == 1 && !unknown.stderr.contains("hint:"))
    }

    @Test func aLiveInterfaceThatIsNotThereNamesTheOnesThatAre() throws {
        let result = try trawl(["-i", "af_packet::no-such-if0"])
        #expect(result.status == 66)
        #expect(result.stderr.contains("problem with interface af_packet::no-such-if0 (No such device)\nhint: the interfaces of this host are "))
        #expect(result.stderr.contains("lo"))
    }

    @Test func aFileNamedWithoutAPrefixGoesToThePluginWhoseMagicItStartsWith() throws {
        let (dir, environment) = try Self.plugin()
        let file = dir.file("count.cnt")
        try "TRAWLCNT 77".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try trawl(["-r", file], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(summaryFields(result.stdout)["packets"] == "77")
        let text = dir.file("notes.txt")
        try "not a trace".write(toFile: text, atomically: true, encoding: .utf8)
        let unknown = try trawl(["-r", text], environment: environment)
        #expect(unknown.status == 1 && unknown.stderr.contains("problem with trace file \(text) (unknown file format)"))
    }
}
