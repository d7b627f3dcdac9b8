import Foundation
import Testing
import TrawlCore

/// Two network namespaces joined by a veth pair, created for one test and removed after.
final class VethPair {
    let namespaceA: String, namespaceB: String
    let interfaceA: String, interfaceB: String
    let addressA = "10.231.77.1", addressB = "10.231.77.2"

    /// Pairs made by this process so far: suites run in parallel, so names must not collide.
    private static let counter = Counter()
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    }

    init() throws {
        // Interface names have at most 15 bytes: "tva" + 5 digits of the pid + 2 of the counter.
        let tag = String(getpid() % 100_000) + String(format: "%02d", Self.counter.next() % 100)
        namespaceA = "trawl-test-a-\(tag)"
        namespaceB = "trawl-test-b-\(tag)"
        interfaceA = "tva\(tag)"
        interfaceB = "tvb\(tag)"
        try ip(["netns", "add", namespaceA])
        try ip(["netns", "add", namespaceB])
        try ip(["link", "add", interfaceA, "netns", namespaceA, "type", "veth", "peer", "name", interfaceB, "netns", namespaceB])
        for (namespace, interface, address) in [(namespaceA, interfaceA, addressA), (namespaceB, interfaceB, addressB)] {
            try ip(["-n", namespace, "addr", "add", address + "/24", "dev", interface])
            try ip(["-n", namespace, "link", "set", interface, "up"])
            try ip(["-n", namespace, "link", "set", "lo", "up"])
        }
    }

    deinit {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        _ = try? runProcess("/usr/bin/env", ["ip", "netns", "del", namespaceA])
        _ = try? runProcess("/usr/bin/env", ["ip", "netns", "del", namespaceB])
    }

    private func ip(_ arguments: [String]) throws {
        let result = try runProcess("/usr/bin/env", ["ip"] + arguments)
        guard result.status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    /// Runs a command inside a namespace and waits for it.
    @discardableResult
    func run(in namespace: String, _ command: [String]) throws -> ProcessResult {
        let result = try runProcess("/usr/bin/env", ["ip", "netns", "exec", namespace] + command)
        guard result.status == 0 else { throw TestFailure("\(command.joined(separator: " ")) in \(namespace): \(result.stderr)") }
        return result
    }

    /// Sends `count` UDP datagrams "message N" from B to A's `port`, with bash's /dev/udp.
    func sendUDP(count: Int, port: Int) throws {
        let script = "for i in $(seq 1 \(count)); do echo \"message $i\" > /dev/udp/\(addressA)/\(port); done"
        let result = try runProcess("/usr/bin/env", ["ip", "netns", "exec", namespaceB, "bash", "-c", script])
        guard result.status == 0 else { throw TestFailure("sending failed: \(result.stderr)") }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A `trawl` running in the background, whose stderr is watched.
final class BackgroundTrawl: @unchecked Sendable {
    let process = Process()
    private let errPipe = Pipe(), outPipe = Pipe()
    private let lock = NSLock()
    private var errText = ""
    /// The working directory, where conn.log is written, when the caller names none.
    let directory: TemporaryDirectory?

    /// Runs trawl in network namespace `namespace`, or in this one when nil, with extra
    /// `environment` variables, in `workingDirectory` (else a temporary one of its own).
    init(namespace: String?, arguments: [String], environment: [String: String] = [:],
         workingDirectory: String? = nil) throws {
        directory = workingDirectory == nil ? try? TemporaryDirectory() : nil
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        if let path = workingDirectory ?? directory?.path { process.currentDirectoryURL = URL(fileURLWithPath: path) }
        let settings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        process.arguments = settings + (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + [Paths.trawl] + arguments
        process.standardError = errPipe
        process.standardOutput = outPipe
        errPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.errText += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
    }

    var stderr: String { lock.lock(); defer { lock.unlock() }; return errText }

    /// Waits until stderr contains `text`, at most `seconds`.
    func wait(for text: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if !process.isRunning { return stderr.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// SIGINT (or `signal`), then the exit status and stdout. A trawl that has not stopped after 10 s is
    /// killed and reported with status -1, so a hang fails the test instead of stalling it.
    func stop(signal: Int32 = SIGINT, seconds: Double = 10) -> (status: Int32, stdout: String) {
        kill(process.processIdentifier, signal)
        return finish(seconds: seconds)
    }

    /// Waits for trawl to end by itself, at most `seconds` (then SIGKILL, status -1).
    func finish(seconds: Double) -> (status: Int32, stdout: String) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return (-1, "")
        }
        let output = outPipe.fileHandleForReading.readDataToEndOfFile()
        errPipe.fileHandleForReading.readabilityHandler = nil
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

@Suite(.serialized) struct LiveCaptureTests {
    /// The same capture through libpcap (no prefix) and through AF_PACKET.
    @Test(.enabled(if: isRoot, "live capture needs root to create network namespaces and veth pairs"),
          arguments: ["", "af_packet::"])
    func capturesUDPOnAVethPairWithAFilter(prefix: String) throws {
        let pair = try VethPair()
        let dir = try TemporaryDirectory()
        let out = dir.file("live.pcap")
        let name = prefix + pair.interfaceA
        let capture = try BackgroundTrawl(namespace: pair.namespaceA,
                                          arguments: ["-i", name, "-f", "udp port 9999", "-w", out])
        #expect(capture.wait(for: "listening on \(name)", seconds: 10), "trawl did not start: \(capture.stderr)")
        try pair.sendUDP(count: 25, port: 9999)
        try pair.sendUDP(count: 5, port: 8888) // filtered out
        usleep(600_000) // more than the 100 ms block timeout: everything has been delivered
        let (status, stdout) = capture.stop()
        #expect(status == 0, "\(capture.stderr)")
        let fields = summaryFields(stdout)
        #expect(fields["sources"] == name)
        #expect(fields["packets"] == "25")
        #expect(fields["dropped"] == "0 by kernel, 0 by interface")
        #expect(Int(fields["received by capture"] ?? "") ?? 0 >= 25)
        let packets = try readPackets(out)
        #expect(packets.count == 25)
        // Ethernet + IPv4 + UDP headers, then "message N\n", in the order sent.
        let payloads = packets.map { String(decoding: $0.bytes.dropFirst(42), as: UTF8.self) }
        #expect(payloads == (1...25).map { "message \($0)\n" })
        #expect(packets.map(\.timestamp) == packets.map(\.timestamp).sorted())
    }

    @Test(.enabled(if: isRoot, "live capture needs root to create network namespaces and veth pairs"))
    func readsTwoInterfacesAtOnce() throws {
        let pair = try VethPair()
        let capture = try BackgroundTrawl(namespace: pair.namespaceA,
                                          arguments: ["-i", pair.interfaceA, "-i", "pcap::lo", "-f", "udp port 9999"])
        #expect(capture.wait(for: "listening on", seconds: 10), "trawl did not start: \(capture.stderr)")
        try pair.sendUDP(count: 12, port: 9999)
        let local = try runProcess("/usr/bin/env", ["ip", "netns", "exec", pair.namespaceA, "bash", "-c",
                                                    "for i in 1 2 3; do echo x > /dev/udp/127.0.0.1/9999; done"])
        #expect(local.status == 0)
        usleep(600_000)
        let (status, stdout) = capture.stop()
        #expect(status == 0, "\(capture.stderr)")
        #expect(summaryFields(stdout)["packets"] == "15")
        #expect(summaryFields(stdout)["sources"] == "\(pair.interfaceA), pcap::lo")
    }
}
