import Foundation
import Testing
@testable import TrawlCore

@Suite struct SourceSpecTests {
    @Test(arguments: [
        ("af_packet::eth0", "af_packet", "eth0"),
        ("netmap::em0-1", "netmap", "em0-1"),
        ("netmap::trawl}0/x", "netmap", "trawl}0/x"),
        ("pcap::-", "pcap", "-"),
        ("gen::", "gen", ""),
    ] as [(String, String, String)])
    func prefixed(name: String, prefix: String, path: String) {
        let spec = SourceSpec(name)
        #expect(spec.prefix == prefix)
        #expect(spec.path == path)
    }

    @Test(arguments: ["eth0", "netmap:em0", "trace.pcap", "-", "dir/with:colon.pcap"])
    func unprefixedNamesPassThroughWhole(name: String) {
        let spec = SourceSpec(name)
        #expect(spec.prefix == nil)
        #expect(spec.path == name)
    }
}

/// A trace file named without a prefix goes to the component whose declared magic it
/// starts with (as Zeek's components declare theirs); the longest magic wins.
@Suite struct FileMagicTests {
    static let pcapMagics: [[UInt8]] = [[0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4], [0x0a, 0x0d, 0x0d, 0x0a]]

    @Test func registryPicksTheComponentByItsMagic() throws {
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::Pcap", prefixes: ["pcap"], magics: Self.pcapMagics))
        // A format that starts like little-endian pcap, but longer: it wins for its files.
        try registry.register(makePlugin("Test::Special", prefixes: ["special"], magics: [[0xd4, 0xc3, 0xb2, 0xa1, 0x53, 0x50]]))
        try registry.register(makePlugin("Test::Live", prefixes: ["live"], modes: .live, magics: [[0x7f, 0x45]]))
        let dir = try TemporaryDirectory()
        func write(_ name: String, _ bytes: [UInt8]) -> String {
            let path = dir.file(name)
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return path
        }
        func prefix(_ path: String) throws -> String { try registry.resolve(path, mode: .offline).component.prefix }
        #expect(try prefix(write("le.pcap", [0xd4, 0xc3, 0xb2, 0xa1, 2, 0])) == "pcap")
        #expect(try prefix(write("be.pcap", [0xa1, 0xb2, 0xc3, 0xd4, 0, 2])) == "pcap")
        #expect(try prefix(write("x.pcapng", [0x0a, 0x0d, 0x0d, 0x0a, 28, 0])) == "pcap")
        #expect(try prefix(write("x.special", [0xd4, 0xc3, 0xb2, 0xa1, 0x53, 0x50, 1])) == "special")
        let path = try registry.resolve(dir.file("le.pcap"), mode: .offline).path
        #expect(path == dir.file("le.pcap"))
        for (name, bytes) in [("text", Array("hello world".utf8)), ("short", [0xd4, 0xc3]), ("empty", []),
                              ("elf", [0x7f, 0x45, 0x4c, 0x46])] as [(String, [UInt8])] {
            // A live-only component is never given a file.
            let file = write(name, bytes)
            #expect(throws: PacketSourceError.traceFile(file, reason: "unknown file format", code: .format)) { try prefix(file) }
        }
        let missing = dir.file("missing")
        let error = #expect(throws: PacketSourceError.self) { try prefix(missing) }
        #expect(error?.code == .noSuchFile)
        #expect(error?.description == "problem with trace file \(missing) (unable to open \(missing): No such file or directory)")
        #expect(throws: PacketSourceError.self) { try prefix(dir.path) }
    }
}

/// An in-process source for registry tests: delivers nothing.
final class NullSource: PacketSource {
    let name: String
    let info = SourceInfo(linkType: 1, snaplen: 100, isLive: false)
    init(name: String) { self.name = name }
    func nextBatch(_ batch: PacketBatch) throws(PacketSourceError) -> Bool { batch.count = 0; return false }
    func setFilter(_ expression: String) throws(PacketSourceError) {}
    func statistics() throws(PacketSourceError) -> CaptureStatistics { CaptureStatistics() }
    func interrupt() {}
    func close() {}
}

func makePlugin(_ name: String, prefixes: [String], modes: SourceModes = [.live, .offline],
                namespace: String = "Test", options: [OptionDeclaration] = [], magics: [[UInt8]] = FileMagicTests.pcapMagics,
                opened: (@Sendable (SourceOpenRequest) -> Void)? = nil) -> Plugin {
    Plugin(
        name: name, description: "test", version: "1", optionNamespace: namespace, options: options,
        components: prefixes.map { prefix in
            SourceComponent(name: prefix + "Reader", prefix: prefix, modes: modes, opener: ClosureSourceOpener { request in
                opened?(request)
                return NullSource(name: request.name)
            }, fileMagics: magics)
        }
    )
}

@Suite struct RegistryTests {
    @Test func resolvesPrefixesAndTheDefault() throws {
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::Pcap", prefixes: ["pcap"]))
        try registry.register(makePlugin("Test::AF", prefixes: ["af_packet"], modes: .live))
        #expect(try registry.resolve("af_packet::eth0", mode: .live).component.prefix == "af_packet")
        #expect(try registry.resolve("af_packet::eth0", mode: .live).path == "eth0")
        #expect(try registry.resolve("eth0", mode: .live).component.prefix == "pcap")
        #expect(try registry.resolve("netmap:em0", mode: .live).path == "netmap:em0")
        #expect(try registry.resolve("pcap::x.pcap", mode: .offline).path == "x.pcap") // explicit prefix: no sniffing
    }

    @Test func unknownPrefixOrModeIsZeeksError() throws {
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::AF", prefixes: ["af_packet"], modes: .live))
        #expect(throws: PacketSourceError.unsupportedSourceType(prefix: "foo", mode: .live)) {
            try registry.resolve("foo::bar", mode: .live)
        }
        #expect(throws: PacketSourceError.unsupportedSourceType(prefix: "af_packet", mode: .offline)) {
            try registry.resolve("af_packet::x.pcap", mode: .offline)
        }
        #expect(PacketSourceError.unsupportedSourceType(prefix: "foo", mode: .live).description
            == "type of packet source 'foo' not recognized, or mode not supported")
    }

    @Test func offlineNamesWithoutPrefixAreSniffed() throws {
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::Pcap", prefixes: ["pcap"]))
        let dir = try TemporaryDirectory()
        let text = dir.file("notes.txt")
        FileManager.default.createFile(atPath: text, contents: Data("not a trace".utf8))
        #expect(throws: PacketSourceError.traceFile(text, reason: "unknown file format", code: .format)) {
            try registry.resolve(text, mode: .offline)
        }
        let missing = dir.file("missing.pcap")
        let error = #expect(throws: PacketSourceError.self) { try registry.resolve(missing, mode: .offline) }
        #expect(error?.description == "problem with trace file \(missing) (unable to open \(missing): No such file or directory)")
        #expect(try registry.resolve("-", mode: .offline).path == "-") // standard input is not sniffed
    }

    @Test func duplicateNameFirstWins() throws {
        let registry = SourceRegistry()
        #expect(try registry.register(makePlugin("Test::A", prefixes: ["a"])) == .added)
        #expect(try registry.register(makePlugin("Test::A", prefixes: ["other"])) == .duplicateName(firstOrigin: .builtIn))
        #expect(registry.plugins.count == 1)
        #expect(registry.component(prefix: "other") == nil)
    }

    @Test func clashingPrefixesNameBothPlugins() throws {
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::A", prefixes: ["gen"]))
        let error = #expect(throws: RegistryError.self) { try registry.register(makePlugin("Test::B", prefixes: ["x", "gen"])) }
        #expect(error?.description.contains("'gen'") == true)
        #expect(error?.description.contains("Test::A") == true)
        #expect(error?.description.contains("Test::B") == true)
        #expect(registry.component(prefix: "x") == nil) // nothing of the refused plugin was added
    }

    @Test func openHandsTheComponentItsPathAndOptions() throws {
        let seen = RequestBox()
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::A", prefixes: ["a"], namespace: "A", options: [
            OptionDeclaration(name: "size", type: .count, defaultValue: .count(5), documentation: ""),
            OptionDeclaration(name: "mode", type: .enum, defaultValue: .enum("x"), documentation: "", choices: ["x", "y"]),
        ], opened: { seen.request = $0 }))
        let settings = try OptionSettings(assignments: ["A::mode=y"], registry: registry)
        _ = try registry.open("a::thing", mode: .live, settings: settings, timeoutMilliseconds: 7)
        #expect(seen.request?.path == "thing")
        #expect(seen.request?.name == "a::thing")
        #expect(seen.request?.timeoutMilliseconds == 7)
        #expect(seen.request?.options == [.count(5), .enum("y")])
    }
}

final class RequestBox: @unchecked Sendable {
    var request: SourceOpenRequest?
}

@Suite struct OptionTests {
    @Test func parsesEachType() {
        #expect(OptionValue.parse("T", as: .bool) == .bool(true))
        #expect(OptionValue.parse("false", as: .bool) == .bool(false))
        #expect(OptionValue.parse("maybe", as: .bool) == nil)
        #expect(OptionValue.parse("24", as: .count) == .count(24))
        #expect(OptionValue.parse("-1", as: .count) == nil)
        #expect(OptionValue.parse("-1", as: .int) == .int(-1))
        #expect(OptionValue.parse("1.5", as: .double) == .double(1.5))
        #expect(OptionValue.parse("inf", as: .double) == nil)
        #expect(OptionValue.parse("anything", as: .string) == .string("anything"))
        #expect(OptionValue.parse("lb", as: .enum, choices: ["hash", "lb"]) == .enum("lb"))
        #expect(OptionValue.parse("nope", as: .enum, choices: ["hash", "lb"]) == nil)
    }

    @Test func recognisesAssignments() {
        #expect(OptionAssignment.parse("AF_Packet::fanout_id=24")! == ("AF_Packet", "fanout_id", "24"))
        #expect(OptionAssignment.parse("Pcap::filter=tcp port 80")! == ("Pcap", "filter", "tcp port 80"))
        #expect(OptionAssignment.parse("a=b") == nil)
        #expect(OptionAssignment.parse("trace.pcap") == nil)
        #expect(OptionAssignment.parse("af_packet::eth0") == nil)
        #expect(OptionAssignment.parse("1x::y=2") == nil)
    }

    @Test func badSettingsListTheValidOptions() throws {
        let registry = SourceRegistry()
        try registry.register(makePlugin("Test::A", prefixes: ["a"], namespace: "A", options: [
            OptionDeclaration(name: "fanout_id", type: .count, defaultValue: .count(23), documentation: ""),
        ]))
        let unknown = #expect(throws: OptionError.self) { try OptionSettings(assignments: ["A::fanoutid=1"], registry: registry) }
        #expect(unknown?.description.contains("unknown option A::fanoutid") == true)
        #expect(unknown?.description.contains("A::fanout_id (count, default 23)") == true)
        let wrongType = #expect(throws: OptionError.self) { try OptionSettings(assignments: ["A::fanout_id=-3"], registry: registry) }
        #expect(wrongType?.description.contains("invalid value '-3' for A::fanout_id: expected count") == true)
        #expect(wrongType?.description.contains("valid options are:") == true)
        #expect(throws: OptionError.self) { try OptionSettings(assignments: ["B::x=1"], registry: registry) }
        let settings = try OptionSettings(assignments: ["A::fanout_id=24"], registry: registry)
        #expect(settings.values(for: registry.plugins[0]) == [.count(24)])
        #expect(OptionSettings().values(for: registry.plugins[0]) == [.count(23)])
    }
}
