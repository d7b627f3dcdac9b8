import Foundation
import Testing
import TrawlCore

/// examples/gen-plugin is a separate package that depends on the SDK. It is built here on
/// its own, then loaded by the built `trawl` through TRAWL_PLUGIN_PATH.
@Suite(.serialized) struct ExamplePluginTests {
    static let scratch = Paths.packageRoot + "/.build-examples"

    static func buildExample() throws -> String {
        let result = try runProcess("/usr/bin/env", ["swift", "build", "--package-path", Paths.packageRoot + "/examples/gen-plugin",
                                                     "--scratch-path", scratch])
        guard result.status == 0 else { throw TestFailure("building examples/gen-plugin failed:\n\(result.stdout)\n\(result.stderr)") }
        return scratch + "/debug"
    }

    @Test func outOfTreeGenPluginLoadsAndDeliversWhatItSays() throws {
        let directory = try Self.buildExample()
        let env = [PluginLoader.pathVariable: directory]
        let listing = try trawl(["-NN", "Example::Gen"], environment: env)
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.hasPrefix("Example::Gen - Synthetic TCP and UDP conversations for load tests (dynamic, version 1.0.0)"))
        #expect(listing.stdout.contains("[Packet Source] GenSource (interface prefix \"gen\"; supports live and trace input)"))
        #expect(listing.stdout.contains("[Constant] Gen::rate (count, default 100000)"))

        // As a trace: 3000 packets stamped 1/1000 s apart.
        let dir = try TemporaryDirectory()
        let out = dir.file("gen.pcap")
        let trace = try trawl(["-r", "gen::test", "Gen::packets=3000", "Gen::rate=1000", "Gen::flows=50", "-w", out], environment: env)
        #expect(trace.status == 0, "\(trace.stderr)")
        let fields = summaryFields(trace.stdout)
        #expect(fields["packets"] == "3000")
        #expect(fields["time span"] == "2.999000000 s")
        let packets = try readPackets(out)
        #expect(packets.count == 3000)
        // 50 conversations at a time: count distinct TCP/UDP 4-tuples among the first packets.
        let tuples = Set(packets.prefix(50).map { Array($0.bytes[26..<38]) })
        #expect(tuples.count == 50)

        // Live: paced by the clock, ends after the requested packets.
        let live = try trawl(["-i", "gen::load", "Gen::packets=2000", "Gen::rate=0"], environment: env)
        #expect(live.status == 0, "\(live.stderr)")
        #expect(summaryFields(live.stdout)["packets"] == "2000")
        #expect(summaryFields(live.stdout)["received by capture"] == "2000")

        // Two live sources read together; the run ends when both have ended.
        let both = try trawl(["-i", "gen::a", "-i", "gen::b", "Gen::packets=1500", "Gen::rate=0"], environment: env)
        #expect(both.status == 0, "\(both.stderr)")
        #expect(summaryFields(both.stdout)["packets"] == "3000")

        // The last packets come with the end (false from nextBatch): none is lost, whatever
        // the last batch holds (2712 = 10 batches of 256 and 152).
        for count in [2712, 256, 1] {
            let ending = try trawl(["-r", "gen::end", "Gen::packets=\(count)", "Gen::flows=10"], environment: env)
            #expect(summaryFields(ending.stdout)["packets"] == "\(count)", "\(ending.stdout)\(ending.stderr)")
        }

        let refused = try trawl(["-r", "gen::x", "Gen::packets=0"], environment: env)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("Gen::packets=0 (no end) works only for live input"))
    }
}

/// A C plugin written outside the tree, built as docs/writing-a-plugin.md says: against the
/// header scripts/install put in a prefix, found with pkg-config, installed into the
/// plugin directory pkg-config names, and run by the installed trawl.
@Suite struct OutOfTreeCPluginTests {
    @Test func builtWithPkgConfigAgainstTheInstalledHeader() throws {
        let prefix = try TemporaryDirectory()
        let install = try runProcess(Paths.packageRoot + "/scripts/install", ["--from", Paths.buildDirectory, prefix.path])
        #expect(install.status == 0, "\(install.stderr)")
        #expect(install.stdout.contains("plugin ABI 1.1 header in \(prefix.path)/include/trawl"))

        let project = try TemporaryDirectory()
        try FileManager.default.copyItem(atPath: Paths.counterPluginSource, toPath: project.file("counter_plugin.c"))
        let environment = ["PKG_CONFIG_PATH": prefix.file("share/pkgconfig")]
        let version = try runProcess("/usr/bin/env", ["pkg-config", "--modversion", "trawl-plugin"], environment: environment)
        #expect(version.stdout == "1.1\n", "\(version.stderr)")
        // The docs' lines, as a shell runs them.
        let build = try runProcess("/bin/sh", ["-c", """
            cc -shared -fPIC $(pkg-config --cflags trawl-plugin) -o libcounter.so counter_plugin.c &&
            install -m 755 libcounter.so "$(pkg-config --variable=plugindir trawl-plugin)/"
            """], environment: environment, directory: project.path)
        #expect(build.status == 0, "\(build.stderr)")

        let trawl = prefix.file("bin/trawl")
        let listing = try runProcess(trawl, ["-NN", "Example::Counter"])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.hasPrefix("Example::Counter - Counts out synthetic frames (a C plugin) (dynamic, version 0.1.0)"))
        let run = try runProcess(trawl, ["-r", "counter::1000", "--no-analysis"], directory: project.path)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(summaryFields(run.stdout)["packets"] == "1000")
    }
}

/// The Swift plugin of docs/writing-a-plugin.md, as the page shows it: its Package.swift
/// (naming this repository as a local checkout, ../trawl) and its source are taken from the
/// page, built as a package of their own, and loaded by trawl. The page cannot drift from
/// the SDK without this failing.
@Suite struct DocumentedSwiftPluginTests {
    static let scratch = Paths.packageRoot + "/.build-examples-doc"

    @Test func theDocumentedPluginBuildsAndLoads() throws {
        let page = try String(contentsOfFile: Paths.packageRoot + "/docs/writing-a-plugin.md", encoding: .utf8)
        let blocks = page.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.count == 2)
        guard blocks.count == 2 else { return }
        let workspace = try TemporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: workspace.file("trawl"), withDestinationPath: Paths.packageRoot)
        let package = workspace.file("mysource")
        try FileManager.default.createDirectory(atPath: package + "/Sources/TrawlMySource", withIntermediateDirectories: true)
        try blocks[0].write(toFile: package + "/Package.swift", atomically: true, encoding: .utf8)
        try blocks[1].write(toFile: package + "/Sources/TrawlMySource/MySource.swift", atomically: true, encoding: .utf8)
        let build = try runProcess("/usr/bin/env", ["swift", "build", "--package-path", package, "--scratch-path", Self.scratch])
        #expect(build.status == 0, "\(build.stdout)\(build.stderr)")
        let environment = [PluginLoader.pathVariable: Self.scratch + "/debug/libTrawlMySource.so"]
        let listing = try trawl(["-NN", "Acme::MySource"], environment: environment)
        #expect(listing.stdout.contains("[Constant] MySource::mode (enum: fast, careful, default fast) - How to read"), "\(listing.stderr)")
        let missing = try trawl(["-i", "mysource::dev1"], environment: environment)
        #expect(missing.status == 66)
        #expect(missing.stderr.hasPrefix("fatal error: problem with interface mysource::dev1 (No such device)\nhint: the interfaces of this host are "))
    }
}
