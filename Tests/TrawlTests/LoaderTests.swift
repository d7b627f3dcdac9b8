import Foundation
import Testing
import TrawlCore

/// The loader against real shared libraries built here with cc.
@Suite struct LoaderTests {
    @Test func loadsACPluginAndReadsThroughIt() throws {
        let dir = try TemporaryDirectory()
        let library = try buildCounterPlugin(into: dir.path)
        let plugin = try PluginLoader.loadLibrary(at: library).get()
        #expect(plugin.name == "Example::Counter")
        #expect(plugin.origin == .dynamic(path: library))
        #expect(plugin.components.map(\.prefix) == ["counter"])
        #expect(plugin.components[0].modes == .offline)
        #expect(plugin.options.map(\.name) == ["size", "start"])
        #expect(plugin.options[1].defaultValue == .int(1_000_000_000))

        let registry = SourceRegistry()
        try registry.register(plugin)
        let settings = try OptionSettings(assignments: ["Counter::size=100"], registry: registry)
        let packets = try readPackets("counter::300", registry: registry, settings: settings, batchCapacity: 64)
        #expect(packets.count == 300)
        #expect(packets.allSatisfy { $0.wireLength == 100 && $0.bytes.count == 100 })
        #expect(packets.first?.timestamp == 1_000_000_000 * 1_000_000_000)
        #expect(packets.last?.timestamp == 1_000_000_000 * 1_000_000_000 + 299 * 1000)

        let source = try registry.open("counter::5", mode: .offline)
        let error = #expect(throws: PacketSourceError.self) { try source.setFilter("udp") }
        #expect(error?.description == "problem with trace file counter::5 (filters are not supported (got 'udp'))")
        #expect(try source.statistics().received == 0)
        #expect(try source.statistics().dropped == nil)
        source.close()

        #expect(throws: PacketSourceError.traceFile("counter::abc", reason: "'abc' is not a packet count")) {
            try registry.open("counter::abc", mode: .offline)
        }
        #expect(throws: PacketSourceError.unsupportedSourceType(prefix: "counter", mode: .live)) {
            try registry.open("counter::5", mode: .live)
        }
    }

    @Test func refusesAnotherABIVersion() throws {
        let dir = try TemporaryDirectory()
        let library = try buildCounterPlugin(into: dir.path, flags: ["-DCOUNTER_ABI_VERSION=99"])
        let found = PluginABIVersion(major: 99, minor: 0)
        #expect(PluginLoader.loadLibrary(at: library).loadError == .abiVersion(found: found))
        #expect(PluginLoadError.abiVersion(found: found).description
            == "speaks plugin ABI 99.0, this trawl speaks 1.1: rebuild the plugin against this trawl's trawl_plugin.h")
    }

    @Test func refusesALibraryWithoutTheEntrySymbol() throws {
        let dir = try TemporaryDirectory()
        let library = try buildCounterPlugin(into: dir.path, flags: ["-DCOUNTER_NO_ENTRY"])
        #expect(PluginLoader.loadLibrary(at: library).loadError == .missingEntrySymbol)
    }

    @Test func reportsGarbageWithDlerror() throws {
        let dir = try TemporaryDirectory()
        let garbage = dir.file("libgarbage.so")
        FileManager.default.createFile(atPath: garbage, contents: Data((0..<4096).map { UInt8($0 % 251) }))
        guard case let .failure(.cannotLoad(message)) = PluginLoader.loadLibrary(at: garbage) else {
            Issue.record("garbage loaded")
            return
        }
        #expect(message.contains(garbage)) // dlerror names the file and says why
    }

    @Test func scansDirectoriesReportsFailuresAndSkipsDuplicates() throws {
        let dir = try TemporaryDirectory()
        let good = try buildCounterPlugin(into: dir.path, name: "a-counter.so")
        let duplicate = try buildCounterPlugin(into: dir.path, name: "b-counter.so")
        let old = try buildCounterPlugin(into: dir.path, name: "c-old.so", flags: ["-DCOUNTER_ABI_VERSION=0"])
        FileManager.default.createFile(atPath: dir.file("d-garbage.so"), contents: Data("nope".utf8))
        FileManager.default.createFile(atPath: dir.file("readme.txt"), contents: Data("not a library".utf8))

        let loader = PluginLoader(entries: [PluginDirectory(path: dir.path), PluginDirectory(path: dir.file("absent"))], secure: false)
        #expect(loader.candidateFiles() == [good, duplicate, old, dir.file("d-garbage.so")])
        let registry = SourceRegistry()
        let diagnostics = try loader.load(into: registry)
        #expect(registry.plugins.map(\.name) == ["Example::Counter"])
        #expect(registry.plugins[0].origin == .dynamic(path: good))
        #expect(diagnostics.map(\.path) == [duplicate, old, dir.file("d-garbage.so")])
        #expect(diagnostics[0].message == "plugin Example::Counter is already loaded from \(good); skipped")
        #expect(diagnostics[1].message.contains("plugin ABI 0.0"))
        #expect(diagnostics[2].message.hasPrefix("cannot load: "))
    }

    @Test func clashingPrefixesStopLoadingAndNameBothLibraries() throws {
        let dir = try TemporaryDirectory()
        let first = try buildCounterPlugin(into: dir.path, name: "a.so")
        let second = try buildCounterPlugin(into: dir.path, name: "b.so", flags: ["-DCOUNTER_NAME=\"Other::Counter\""])
        let registry = SourceRegistry()
        let error = #expect(throws: RegistryError.self) {
            try PluginLoader(entries: [PluginDirectory(path: dir.path)], secure: false).load(into: registry)
        }
        #expect(error == .prefixClash(prefix: "counter", first: "Example::Counter (\(first))", second: "Other::Counter (\(second))"))
    }

    @Test func executableDirectoryOnlyOffersTrawlLibraries() throws {
        let dir = try TemporaryDirectory()
        try buildCounterPlugin(into: dir.path, name: "libTrawlCounter.so")
        try buildCounterPlugin(into: dir.path, name: "libsomethingelse.so")
        let loader = PluginLoader.standard(pluginPath: nil, executablePath: dir.file("trawl"))
        #expect(loader.candidateFiles() == [dir.file("libTrawlCounter.so")])
        #expect(loader.entries.last?.path == dir.path + "/../lib/trawl/plugins")
    }

    @Test func pluginPathTakesDirectoriesAndFilesInOrder() throws {
        let dir = try TemporaryDirectory()
        let a = try buildCounterPlugin(into: dir.path, name: "a.so")
        try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: true)
        let b = try buildCounterPlugin(into: dir.file("sub"), name: "b.so")
        let loader = PluginLoader.standard(pluginPath: "\(dir.file("sub")):\(a)::\(a)", executablePath: nil)
        #expect(loader.candidateFiles() == [b, a]) // the same file twice is tried once
    }
}
