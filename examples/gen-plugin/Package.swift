// swift-tools-version:6.0
import PackageDescription

// An out-of-tree Trawl packet-source plugin: `gen::NAME` synthesizes TCP and UDP
// conversations at a chosen rate and flow count, for load tests. It depends only on the
// plugin SDK (and Trawl's traffic synthesizer); the result is a shared library that any
// trawl built against the same plugin ABI loads from TRAWL_PLUGIN_PATH.
let package = Package(
    name: "TrawlGenPlugin",
    products: [
        .library(name: "TrawlGen", type: .dynamic, targets: ["TrawlGen"]),
    ],
    dependencies: [
        // A plugin published elsewhere would name Trawl's repository and a version here.
        .package(name: "Trawl", path: "../.."),
    ],
    targets: [
        .target(
            name: "TrawlGen",
            dependencies: [
                .product(name: "TrawlPluginSDK", package: "Trawl"),
                .product(name: "TrawlSynth", package: "Trawl"),
            ]
        ),
    ]
)
