// swift-tools-version:6.0
import PackageDescription

// Trawl: a packet-capture framework whose packet sources are plugins.
//
//   Sources/CTrawlABI      the versioned C header: the only core <-> plugin contract
//   Sources/TrawlCore      PacketSource protocol, registry, plugin loader, options, trace I/O
//   Sources/TrawlPluginSDK writes a Swift plugin as one type plus one export line
//   Sources/TrawlABI       the ABI's Swift side for both: error codes, the compiling toolchain's name
//   Sources/TrawlPluginSupport  BPF filters (libpcap) and the interruptible wait, for capture plugins
//   Sources/TrawlCLI       the `trawl` command's logic; Sources/trawl is its entry point
//   Sources/TrawlAnalysis  decoding, connection tracking, conn.log writers
//   Sources/TrawlCluster   the cluster: layout, the ZeroMQ transport, log batches, node roles
//   Sources/TrawlControl   trawlctl's logic (Zeek's node.cfg and friends, commands, hosts);
//                          Sources/trawlctl is its entry point
//   Sources/TrawlSynth     synthetic traffic for fixtures, the sample trace and benchmarks
//   Plugins/Pcap           Trawl::Pcap, the default packet source (libpcap); Readers: its own
//                          pcap and pcapng readers
//   Plugins/AFPacket       Trawl::AF_Packet, TPACKET_V3 rings with fanout
//   Plugins/Netmap         Trawl::Netmap, netmap's rings through its kernel interface
//   Plugins/PFRing         Trawl::PF_Ring, PF_RING through libpfring loaded at run time
let package = Package(
    name: "Trawl",
    products: [
        .library(name: "TrawlCore", targets: ["TrawlCore"]),
        .library(name: "TrawlPluginSDK", targets: ["TrawlPluginSDK"]),
        .library(name: "TrawlPluginSupport", targets: ["TrawlPluginSupport"]),
        .library(name: "TrawlSynth", targets: ["TrawlSynth"]),
        .library(name: "TrawlAnalysis", targets: ["TrawlAnalysis"]),
        .library(name: "TrawlCluster", targets: ["TrawlCluster"]),
        .library(name: "TrawlPcap", type: .dynamic, targets: ["TrawlPcap"]),
        // The trace file readers of Trawl::Pcap, apart for the fuzzers (fuzz/).
        .library(name: "PcapReaders", targets: ["PcapReaders"]),
        .library(name: "TrawlAFPacket", type: .dynamic, targets: ["TrawlAFPacket"]),
        .library(name: "TrawlNetmap", type: .dynamic, targets: ["TrawlNetmap"]),
        .library(name: "TrawlPFRing", type: .dynamic, targets: ["TrawlPFRing"]),
        .executable(name: "trawl", targets: ["trawl"]),
        .executable(name: "trawl-mkpcap", targets: ["trawl-mkpcap"]),
        .executable(name: "trawlctl", targets: ["trawlctl"]),
    ],
    dependencies: [
        // The Prometheus text format for the nodes' metrics (a maintained package, not our own writer).
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        .target(name: "CTrawlABI"),
        .systemLibrary(
            name: "CLibpcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .target(name: "CTrawlSystem"),
        // The ABI's Swift side shared by trawl and the SDK: its error codes, and the name of
        // the Swift toolchain compiling it (trawl_plugin.runtime), compiled into trawl by
        // trawl's toolchain and into a Swift plugin by the plugin's.
        .target(name: "TrawlABI", dependencies: ["CTrawlABI"]),
        .target(name: "TrawlCore", dependencies: ["CTrawlABI", "CTrawlSystem", "TrawlABI"]),
        .target(name: "TrawlPluginSDK", dependencies: ["CTrawlABI", "TrawlABI"]),
        // What capture plugins share beside the SDK: libpcap's filter compiler and matcher,
        // the interruptible wait. Linked with libpcap, so apart from the SDK.
        .target(name: "TrawlPluginSupport", dependencies: ["TrawlPluginSDK", "CLibpcap", "CTrawlSystem"]),
        .target(name: "TrawlSynth", dependencies: ["TrawlCore"]),
        .target(name: "TrawlAnalysis", dependencies: ["TrawlCore"]),
        .systemLibrary(
            name: "CZeroMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(name: "TrawlCluster", dependencies: ["TrawlCore", "TrawlAnalysis", "CZeroMQ",
                                                     .product(name: "Prometheus", package: "swift-prometheus")]),
        .target(name: "PcapReaders", dependencies: ["TrawlPluginSDK"], path: "Plugins/Pcap/Readers"),
        .target(
            name: "TrawlPcap",
            dependencies: ["TrawlPluginSDK", "TrawlPluginSupport", "CLibpcap", "PcapReaders"],
            path: "Plugins/Pcap/Source"
        ),
        .target(name: "CLinuxPacket"),
        .target(
            name: "TrawlAFPacket",
            dependencies: ["TrawlPluginSDK", "TrawlPluginSupport", "CLibpcap", "CLinuxPacket"],
            path: "Plugins/AFPacket"
        ),
        // Trawl::Netmap: the kernel interface (C layouts, port names, ring walking) apart
        // from the plugin, so that tests can walk rings laid out in memory.
        .target(name: "CNetmap", path: "Plugins/Netmap/CNetmap"),
        .target(name: "NetmapInterface", dependencies: ["CNetmap"], path: "Plugins/Netmap/Interface"),
        .target(
            name: "TrawlNetmap",
            dependencies: ["TrawlPluginSDK", "TrawlPluginSupport", "CNetmap", "NetmapInterface"],
            path: "Plugins/Netmap/Source"
        ),
        // Trawl::PF_Ring: libpfring is loaded at run time, so nothing of PF_RING is needed to build.
        .target(name: "TrawlPFRing", dependencies: ["TrawlPluginSDK", "TrawlPluginSupport"], path: "Plugins/PFRing"),
        .target(name: "TrawlCLI", dependencies: ["TrawlCore", "TrawlAnalysis", "TrawlCluster", "CTrawlABI"]),
        .executableTarget(name: "trawl", dependencies: ["TrawlCLI"]),
        // trawlctl: node.cfg, networks.cfg and trawlctl.cfg, and the commands that run a cluster.
        .target(name: "TrawlControl", dependencies: ["TrawlCore", "TrawlAnalysis", "TrawlCluster"]),
        .executableTarget(name: "trawlctl", dependencies: ["TrawlControl"]),
        .executableTarget(
            name: "trawl-mkpcap",
            dependencies: ["TrawlCore", "TrawlSynth"],
            // Top-level script code; strict global-state checking buys nothing here.
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // Unit tests of the core, and end-to-end tests that run the built `trawl`, build C
        // plugins with cc and the example plugin package. Fixtures are generated in code;
        // Tests/Fixtures holds the C plugin source.
        .testTarget(
            name: "TrawlTests",
            dependencies: ["TrawlCLI", "TrawlCore", "TrawlAnalysis", "TrawlCluster", "TrawlControl", "TrawlSynth", "CTrawlABI",
                           "NetmapInterface", "CNetmap"]
        ),
    ]
)

// The fuzz targets (fuzz/): built only by scripts/fuzz, which sets TRAWL_FUZZ=1 and builds
// them with libFuzzer and AddressSanitizer into a build folder of their own.
if Context.environment["TRAWL_FUZZ"] == "1" {
    package.targets += [
        .target(name: "CFuzzDriver", path: "fuzz/Driver"),
        .executableTarget(name: "FuzzAnalysis", dependencies: ["TrawlAnalysis", "TrawlCore", "CFuzzDriver"], path: "fuzz/Analysis"),
        .executableTarget(name: "FuzzTraceReaders", dependencies: ["PcapReaders", "TrawlPluginSDK", "CTrawlABI", "CFuzzDriver"],
                          path: "fuzz/TraceReaders"),
        .executableTarget(name: "FuzzOptions", dependencies: ["TrawlCore", "CFuzzDriver"], path: "fuzz/Options"),
        .executableTarget(name: "FuzzClusterMessages", dependencies: ["TrawlCluster", "TrawlAnalysis", "CFuzzDriver"],
                          path: "fuzz/ClusterMessages"),
    ]
}

// The soak and cluster benchmarks (benchmarks/soak, benchmarks/cluster): built only by their
// run scripts, with TRAWL_BENCH=1.
if Context.environment["TRAWL_BENCH"] == "1" {
    package.targets.append(.executableTarget(name: "ClusterBench", dependencies: ["TrawlCluster", "TrawlAnalysis", "TrawlCore"],
                                             path: "benchmarks/cluster", exclude: ["run", "cluster_bench.py"],
                                             swiftSettings: [.swiftLanguageMode(.v5)]))
    package.targets.append(.executableTarget(name: "Soak", dependencies: ["TrawlAnalysis", "TrawlCore", "TrawlSynth"],
                                             path: "benchmarks/soak", exclude: ["run"],
                                             // Top-level script code; strict global-state checking buys nothing here.
                                             swiftSettings: [.swiftLanguageMode(.v5)]))
}
