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

@Suite struct TraceFormatTests {
    @Test func magicNumbers() {
        #expect(TraceFormat.identify(magic: 0xa1b2_c3d4) == .pcap(nanosecond: false, swapped: false))
        #expect(TraceFormat.identify(magic: 0xd4c3_b2a1) == .pcap(nanosecond: false, swapped: true))
        #expect(TraceFormat.identify(magic: 0xa1b2_3c4d) == .pcap(nanosecond: true, swapped: false))
        #expect(TraceFormat.identify(magic: 0x4d3c_b2a1) == .pcap(nanosecond: true, swapped: true))
        #expect(TraceFormat.identify(magic: 0x0a0d_0d0a) == .pcapng)
        #expect(TraceFormat.identify(magic: 0x7f45_4c46) == .unknown)
    }

    @Test func sniffsFilesOfEveryKind() throws {
        let dir = try TemporaryDirectory()
        func write(_ name: String, _ bytes: [UInt8]) -> String {
            let path = dir.file(name)
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return path
        }
        // Bytes as they lie on disk: big-endian files written on a big-endian machine read swapped here.
        #expect(TraceFormat.sniff(path: write("le.pcap", [0xd4, 0xc3, 0xb2, 0xa1, 2, 0])) == .success(.pcap(nanosecond: false, swapped: false)))
        #expect(TraceFormat.sniff(path: write("be.pcap", [0xa1, 0xb2, 0xc3, 0xd4, 0, 2])) == .success(.pcap(nanosecond: false, swapped: true)))
        #expect(TraceFormat.sniff(path: write("ns.pcap", [0x4d, 0x3c, 0xb2, 0xa1])) == .success(.pcap(nanosecond: true, swapped: false)))
        #expect(TraceFormat.sniff(path: write("nsbe.pcap", [0xa1, 0xb2, 0x3c, 0x4d])) == .success(.pcap(nanosecond: true, swapped: true)))
        #expect(TraceFormat.sniff(path: write("x.pcapng", [0x0a, 0x0d, 0x0d, 0x0a, 28, 0])) == .success(.pcapng))
        #expect(TraceFormat.sniff(path: write("text", Array("hello world".utf8))) == .success(.unknown))
        #expect(TraceFormat.sniff(path: write("short", [0xd4, 0xc3])) == .success(.unknown))
        #expect(TraceFormat.sniff(path: write("empty", [])) == .success(.unknown))
        #expect(TraceFormat.sniff(path: dir.file("missing")) == .failure(Errno(rawValue: ENOENT)))
        #expect(TraceFormat.sniff(path: dir.path) == .failure(Errno(rawValue: EISDIR)))
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
                namespace: String = "Test", options: [OptionDeclaration] = [],
                opened: (@Sendable (SourceOpenRequest) -> Void)? = nil) -> Plugin {
    Plugin(
        name: name, description: "test", version: "1", optionNamespace: namespace, options: options,
        components: prefixes.map { prefix in
            SourceComponent(name: prefix + "Reader", prefix: prefix, modes: modes, opener: ClosureSourceOpener { request in
                opened?(request)
                return NullSource(name: request.name)
            })
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
        #expect(throws: PacketSourceError.traceFile(text, reason: "unknown file format")) {
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
