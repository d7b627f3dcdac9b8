import Foundation
import Testing
import TrawlCore
import TrawlSynth

/// Where the package and its build products are.
enum Paths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The directory of the test binary, which is also where `swift build` put `trawl`
    /// and the plugin libraries.
    static let buildDirectory: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // A bundle layout (name.xctest/Contents/...) keeps the products further up.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("trawl").path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.path
    }()

    static var trawl: String { buildDirectory + "/trawl" }
    static var trawlctl: String { buildDirectory + "/trawlctl" }
    static var pcapPlugin: String { buildDirectory + "/libTrawlPcap.so" }
    static var abiHeaderDirectory: String { packageRoot + "/Sources/CTrawlABI/include" }
    static var counterPluginSource: String { packageRoot + "/Tests/Fixtures/counter_plugin.c" }
}

/// A directory removed when the value goes away.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "trawl-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
    let stdoutData: Data
}

/// Runs a program to completion and collects its output.
@discardableResult
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                input: Data? = nil, directory: String? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: PluginLoader.pathVariable)
    for (key, value) in environment { env[key] = value }
    process.environment = env
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe(), inPipe = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try process.run()
    if let input {
        DispatchQueue.global().async {
            inPipe.fileHandleForWriting.write(input)
            try? inPipe.fileHandleForWriting.close()
        }
    }
    // Read both pipes concurrently so neither fills up and blocks the child.
    final class Collected: @unchecked Sendable { var data = Data() }
    let errData = Collected()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData.data, as: UTF8.self), stdoutData: outData)
}

/// Runs the built trawl in a fresh directory (where its conn.log lands), or in `directory`.
func trawl(_ arguments: [String], environment: [String: String] = [:], input: Data? = nil,
           directory: String? = nil) throws -> ProcessResult {
    let scratch = try TemporaryDirectory()
    return try runProcess(Paths.trawl, arguments, environment: environment, input: input, directory: directory ?? scratch.path)
}

/// The `key: value` lines of trawl's summary.
func summaryFields(_ output: String) -> [String: String] {
    var fields: [String: String] = [:]
    for line in output.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = String(line[line.index(colon, offsetBy: 2)...])
    }
    return fields
}

/// One packet as read back from a trace.
struct RecordedPacket: Equatable {
    let timestamp: UInt64
    let wireLength: Int
    let bytes: [UInt8]
}

/// What a generated trace holds, counted while it was written.
struct GeneratedTrace {
    let path: String
    let packets: [RecordedPacket]
    var byteCount: Int { packets.reduce(0) { $0 + $1.wireLength } }
    /// IPv4 protocol 17 at offset 23 of an Ethernet frame.
    var udpCount: Int { packets.filter { $0.bytes.count > 23 && $0.bytes[23] == 17 }.count }
}

/// Writes `flows` synthetic conversations (or `packets` of them) to `path`.
func generateTrace(at path: String, format: TraceFileFormat = .pcapNanosecond, flows: Int = 200,
                   packetLimit: Int? = nil, maxPayload: Int = 512, seed: UInt64 = 7) throws -> GeneratedTrace {
    var synthesizer = TrafficSynthesizer(.init(flows: flows, maxPayload: maxPayload, seed: seed))
    let writer = try TraceWriter(path: path, format: format, linkType: 1)
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: TrafficSynthesizer.maximumFrameLength, alignment: 8)
    defer { frame.deallocate() }
    var packets: [RecordedPacket] = []
    while packetLimit.map({ packets.count < $0 }) ?? true, let (length, timestamp) = synthesizer.next(into: frame) {
        let bytes = UnsafeRawBufferPointer(rebasing: frame[..<length])
        try writer.write(timestampNanoseconds: timestamp, wireLength: length, bytes: bytes)
        packets.append(RecordedPacket(timestamp: timestamp, wireLength: length, bytes: Array(bytes)))
    }
    try writer.finish()
    return GeneratedTrace(path: path, packets: packets)
}

/// The Pcap plugin, loaded once into the test process.
let pcapRegistry: SourceRegistry = {
    let registry = SourceRegistry()
    if case let .success(plugin) = PluginLoader.loadLibrary(at: Paths.pcapPlugin) {
        _ = try? registry.register(plugin)
    }
    return registry
}()

/// Reads every packet of `name` through the registry.
func readPackets(_ name: String, registry: SourceRegistry = pcapRegistry, filter: String? = nil,
                 settings: OptionSettings = OptionSettings(), batchCapacity: Int = 64) throws -> [RecordedPacket] {
    let source = try registry.open(name, mode: .offline, settings: settings)
    defer { source.close() }
    if let filter { try source.setFilter(filter) }
    let batch = PacketBatch(capacity: batchCapacity)
    var packets: [RecordedPacket] = []
    while try source.nextBatch(batch) {
        for i in 0..<batch.count {
            let p = batch[i]
            packets.append(RecordedPacket(timestamp: p.timestampNanoseconds, wireLength: p.wireLength, bytes: Array(p.bytes)))
        }
    }
    return packets
}

/// Compiles the C counter plugin into `directory/name`, with extra `cc` flags.
@discardableResult
/// Builds Tests/Fixtures/counter_plugin.c; `header` is the directory of the trawl_plugin.h
/// it is built against (today's, or the frozen one of ABI 1.0).
func buildCounterPlugin(into directory: String, name: String = "libcounter.so", flags: [String] = [],
                        header: String = Paths.abiHeaderDirectory) throws -> String {
    let output = directory + "/" + name
    let result = try runProcess("/usr/bin/env", ["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-I", header]
        + flags + ["-o", output, Paths.counterPluginSource])
    #expect(result.status == 0, "cc failed: \(result.stderr)")
    return output
}

var isRoot: Bool { getuid() == 0 }

extension Result where Success == Plugin, Failure == PluginLoadError {
    /// The load error, nil when the library loaded.
    var loadError: PluginLoadError? {
        if case let .failure(error) = self { return error }
        return nil
    }
}

/// pcapng blocks, little-endian, written by hand: for files libpcap would not write.
enum Pcapng {
    static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A block: type, total length, the body padded to 4 bytes, the total length again.
    static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let padded = body + [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
        let length = UInt32(12 + padded.count)
        return le32(type) + le32(length) + padded + le32(length)
    }

    static let sectionHeader = block(0x0a0d_0d0a, le32(0x1a2b_3c4d) + le16(1) + le16(0) + [UInt8](repeating: 0xff, count: 8))

    /// An interface description; `options` are (code, value) pairs, ended by opt_endofopt.
    static func interface(linkType: UInt16, snaplen: UInt32, options: [(UInt16, [UInt8])] = []) -> [UInt8] {
        var body = le16(linkType) + le16(0) + le32(snaplen)
        if !options.isEmpty {
            for (code, value) in options {
                body += le16(code) + le16(UInt16(value.count)) + value + [UInt8](repeating: 0, count: (4 - value.count % 4) % 4)
            }
            body += le16(0) + le16(0)
        }
        return block(1, body)
    }

    /// An enhanced packet block with `ticks` in the interface's resolution.
    static func packet(interface: UInt32, ticks: UInt64, _ data: [UInt8], captured: UInt32? = nil) -> [UInt8] {
        block(6, le32(interface) + le32(UInt32(ticks >> 32)) + le32(UInt32(ticks & 0xffff_ffff))
            + le32(captured ?? UInt32(data.count)) + le32(UInt32(data.count)) + data)
    }
}
