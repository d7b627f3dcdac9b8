import Foundation
import Testing
import TrawlCore

/// Trawl::PF_Ring against a stand-in libpfring (Tests/Fixtures/pfring_double.c) built here
/// and loaded through TRAWL_PFRING_LIBRARY: the calls and their arguments are recorded, so
/// the tests see the cluster, the filter and the statistics reach the library.
@Suite(.serialized) struct PFRingTests {
    struct Double {
        let directory: TemporaryDirectory
        let library: String
        var log: String { directory.file("calls.log") }
        var calls: [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func environment(_ extra: [String: String] = [:]) -> [String: String] {
            ["TRAWL_PFRING_LIBRARY": library, "PFRING_DOUBLE_LOG": log].merging(extra) { $1 }
        }
    }

    static func buildDouble() throws -> Double {
        let directory = try TemporaryDirectory()
        let library = directory.file("libpfring_double.so")
        let build = try runProcess("/usr/bin/env", ["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", library,
                                                    Paths.packageRoot + "/Tests/Fixtures/pfring_double.c"])
        guard build.status == 0 else { throw TestFailure("cc failed: \(build.stderr)") }
        return Double(directory: directory, library: library)
    }

    @Test func aClusterAFilterAndStatisticsReachTheLibrary() throws {
        let double = try Self.buildDouble()
        let out = double.directory.file("out.pcap")
        let capture = try BackgroundTrawl(namespace: nil, arguments: [
            "-i", "pf_ring::eth7", "PF_Ring::cluster_id=21", "PF_Ring::cluster_type=4_tuple", "PF_Ring::snaplen=1500",
            "PF_Ring::promiscuous=F", "-f", "udp port 7000", "-w", out, "--no-analysis",
        ], environment: double.environment(["PFRING_DOUBLE_PACKETS": "100"]))
        #expect(capture.wait(for: "listening on pf_ring::eth7", seconds: 10), "trawl did not start: \(capture.stderr)")
        usleep(500_000)
        let (status, stdout) = capture.stop()
        #expect(status == 0, "\(capture.stderr)")
        let summary = summaryFields(stdout)
        #expect(summary["packets"]?.hasPrefix("50") == true, "\(stdout)")
        #expect(summary["dropped"]?.contains("7 by kernel") == true, "\(stdout)")
        // The frames the double numbered 1, 3, 5... went to port 7000, with their stamps.
        let packets = try readPackets(out)
        #expect(packets.count == 50)
        #expect(packets.enumerated().allSatisfy { index, packet in
            let n = UInt32(2 * index + 1)
            return packet.timestamp == 1_700_000_000_000_000_000 + UInt64(n) * 1000
                && packet.bytes.count == 46 && Array(packet.bytes[42..<46]) == withUnsafeBytes(of: n.littleEndian, Array.init)
        })
        // longHeader (4) | timestamp (16), no promiscuous (8); cluster type 4_tuple is 3.
        #expect(double.calls.prefix(6) == ["open eth7 caplen=1500 flags=20", "name trawl", "mode 1",
                                           "cluster 21 type=3", "filter udp port 7000", "enable"])
        #expect(double.calls.contains("stats") && double.calls.last == "close")
    }

    /// Also: SIGTERM ends a live capture with the analysis running as cleanly as SIGINT does
    /// (the summary, a complete conn.log), whichever thread the kernel hands the signal to.
    @Test func withoutAClusterIdNoClusterIsJoined() throws {
        let double = try Self.buildDouble()
        let capture = try BackgroundTrawl(namespace: nil, arguments: ["-i", "pf_ring::eth0"],
                                          environment: double.environment(["PFRING_DOUBLE_PACKETS": "10"]))
        #expect(capture.wait(for: "listening on pf_ring::eth0", seconds: 10), "\(capture.stderr)")
        usleep(300_000)
        let (status, stdout) = capture.stop(signal: SIGTERM)
        #expect(status == 0, "\(capture.stderr)")
        #expect(summaryFields(stdout)["packets"]?.hasPrefix("10") == true, "\(stdout)")
        // The double's frames: UDP from 10.0.0.1:40000 to 10.0.0.2, ports 7000 and 7001.
        let log = try String(contentsOfFile: try #require(capture.directory).file("conn.log"), encoding: .utf8)
        #expect(log.split(separator: "\n").filter { !$0.hasPrefix("#") }.count == 2)
        #expect(!double.calls.contains { $0.hasPrefix("cluster") })
        #expect(double.calls.first == "open eth0 caplen=65535 flags=28") // promiscuous by default
    }

    /// A script that starts trawl with `&` hands it SIGINT ignored; trawl still stops on it,
    /// cleanly, analysis and all: the signal is blocked in every thread and waited for, so
    /// it stays pending instead of being dropped (the live source here is the double,
    /// which needs no privileges).
    @Test func startedInTheBackgroundByAScriptItStillStopsOnSIGINT() throws {
        let double = try Self.buildDouble()
        let script = """
            cd \(double.directory.path) || exit 9
            \(Paths.trawl) -i pf_ring::eth0 > out.txt 2> err.txt &
            sleep 0.5; kill -INT $!
            for i in $(seq 100); do kill -0 $! 2> /dev/null || break; sleep 0.1; done
            kill -KILL $! 2> /dev/null && exit 8  # still running after 10 s: SIGINT was lost
            wait $!
            """
        let result = try runProcess("/bin/bash", ["-c", script], environment: double.environment(["PFRING_DOUBLE_PACKETS": "5"]))
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try String(contentsOfFile: double.directory.file("out.txt"), encoding: .utf8)
        #expect(summaryFields(summary)["packets"]?.hasPrefix("5") == true, "\(summary)")
        #expect(summary.contains("connections: 2 logged to ./conn.log"), "\(summary)")
    }

    @Test func failuresAreExplained() throws {
        let double = try Self.buildDouble()
        func run(_ arguments: [String], _ environment: [String: String]) throws -> ProcessResult {
            try runProcess(Paths.trawl, arguments + ["--no-analysis"], environment: environment)
        }
        let missing = try run(["-i", "pf_ring::eth0"], ["TRAWL_PFRING_LIBRARY": ""])
        if !FileManager.default.fileExists(atPath: "/usr/local/lib/libpfring.so") {
            #expect(missing.status == 69 && missing.stdout.isEmpty) // unavailable
            #expect(missing.stderr.contains("problem with interface pf_ring::eth0 (PF_RING is not available: libpfring.so not found"))
        }
        let wrongPath = try run(["-i", "pf_ring::eth0"], ["TRAWL_PFRING_LIBRARY": "/nonexistent/libpfring.so"])
        #expect(wrongPath.stderr.contains("PF_RING is not available: cannot load /nonexistent/libpfring.so (TRAWL_PFRING_LIBRARY)"))
        let noDevice = try run(["-i", "pf_ring::nope0"], double.environment(["PFRING_DOUBLE_FAIL": "open"]))
        #expect(noDevice.status == 66 && noDevice.stderr.contains("problem with interface pf_ring::nope0 (No such device)"))
        let cluster = try run(["-i", "pf_ring::eth0", "PF_Ring::cluster_id=5", "PF_Ring::cluster_type=round_robin"],
                              double.environment(["PFRING_DOUBLE_FAIL": "cluster"]))
        #expect(cluster.stderr.contains("cannot join PF_RING cluster 5 (PF_Ring::cluster_type=round_robin)"))
        #expect(double.calls.contains("cluster 5 type=1") && double.calls.last == "close")
        let filter = try run(["-i", "pf_ring::eth0", "-f", "udp port 9"], double.environment(["PFRING_DOUBLE_FAIL": "filter"]))
        #expect(filter.status == 1 && filter.stderr.contains("invalid filter 'udp port 9': PF_RING could not install it"))
        let badType = try run(["-i", "pf_ring::eth0", "PF_Ring::cluster_type=3_tuple"], double.environment())
        #expect(badType.status == 1 && badType.stderr.contains("invalid value '3_tuple' for PF_Ring::cluster_type"))
        let badSnaplen = try run(["-i", "pf_ring::eth0", "PF_Ring::snaplen=0"], double.environment())
        #expect(badSnaplen.stderr.contains("PF_Ring::snaplen must be from 1 to 262144, not 0"))
    }

    @Test func listedWithItsOptionsWithoutTheLibrary() throws {
        let listing = try runProcess(Paths.trawl, ["-NN"], environment: ["TRAWL_PFRING_LIBRARY": "/nonexistent/libpfring.so"])
        #expect(listing.status == 0)
        #expect(listing.stdout.contains("Trawl::PF_Ring - Packet acquisition via PF_RING (dynamic, version 1.0.0)"))
        #expect(listing.stdout.contains("PF_Ring::cluster_id (count, default 0)"))
        #expect(listing.stdout.contains("PF_Ring::cluster_type (enum: flow, round_robin, 2_tuple, 4_tuple, 5_tuple, tcp_5_tuple"))
    }
}
