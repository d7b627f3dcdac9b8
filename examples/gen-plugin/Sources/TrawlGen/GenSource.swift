#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TrawlPluginSDK
import TrawlSynth

/// `gen::NAME`: synthetic traffic as a packet source. `Gen::flows` conversations are in
/// progress at any time; as one ends, a new one starts, until `Gen::packets` have been sent.
/// As a live source it paces packets in real time at `Gen::rate` and stamps them with the
/// clock; as a trace it stamps them `1/rate` apart without waiting. NAME is only a label.
public final class GenSource: SourcePlugin {
    public static let metadata = PluginMetadata(
        name: "Example::Gen",
        description: "Synthetic TCP and UDP conversations for load tests",
        version: "1.0.0",
        optionNamespace: "Gen",
        componentName: "GenSource",
        prefix: "gen",
        modes: [.live, .offline],
        options: [Options.flows.declaration, Options.packets.declaration, Options.rate.declaration, Options.seed.declaration]
    )

    /// Each option once, with its default; `request[option]` reads it with its type.
    enum Options {
        static let flows = SourceOption("flows", default: UInt64(1000), "Conversations in progress at once")
        static let packets = SourceOption("packets", default: UInt64(100_000), "Packets to send in all; 0: no end (live only)")
        static let rate = SourceOption("rate", default: UInt64(100_000), "Packets per second; 0: as fast as possible")
        static let seed = SourceOption("seed", default: UInt64(1), "Seed of the deterministic generator")
    }

    public let info: PluginSourceInfo
    private var synthesizer: TrafficSynthesizer
    private let packetLimit: UInt64
    private let live: Bool
    private let gap: UInt64
    /// One frame slot per batch entry; valid until the next batch.
    private let arena: UnsafeMutableRawBufferPointer
    private let slots = 256
    private var startedAt: UInt64 = 0
    /// Set by interrupt(), which runs on another thread while nextBatch may run.
    private let stopping = Atomic<Bool>(false)

    public init(request: OpenRequest) throws(PluginError) {
        let rate = request[Options.rate]
        let flows = request[Options.flows]
        guard flows > 0 else { throw PluginError("Gen::flows must be at least 1", code: .invalid) }
        live = request.mode == .live
        gap = rate == 0 ? 0 : 1_000_000_000 / rate
        packetLimit = request[Options.packets]
        guard live || packetLimit > 0 else { throw PluginError("Gen::packets=0 (no end) works only for live input (-i)", code: .invalid) }
        var configuration = TrafficSynthesizer.Configuration(
            flows: Int.max, concurrency: Int(clamping: flows), seed: request[Options.seed], gapNanoseconds: gap
        )
        if live { configuration.startNanoseconds = Self.now(CLOCK_REALTIME) }
        synthesizer = TrafficSynthesizer(configuration)
        arena = .allocate(byteCount: slots * TrafficSynthesizer.maximumFrameLength, alignment: 16)
        info = PluginSourceInfo(linkType: 1, snaplen: UInt32(TrafficSynthesizer.maximumFrameLength), isLive: live)
        startedAt = Self.now(CLOCK_MONOTONIC)
    }

    deinit { arena.deallocate() }

    static func now(_ clock: clockid_t) -> UInt64 {
        var t = timespec()
        clock_gettime(clock, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    public func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool {
        if stopping.load(ordering: .relaxed) { return false }
        var allowed = min(batch.capacity, slots)
        if live && gap > 0 {
            // Hand out only what the schedule has reached; sleep briefly if nothing has.
            let due = (Self.now(CLOCK_MONOTONIC) - startedAt) / gap + 1
            let ready = due > synthesizer.packetsGenerated ? due - synthesizer.packetsGenerated : 0
            if ready == 0 { usleep(200); return true }
            allowed = min(allowed, Int(clamping: ready))
        }
        // Unpaced live packets carry the time they were made; paced ones their scheduled time.
        let clockStamp = live && gap == 0 ? Self.now(CLOCK_REALTIME) : nil
        for slot in 0..<allowed {
            if packetLimit > 0 && synthesizer.packetsGenerated >= packetLimit { break }
            let frame = UnsafeMutableRawBufferPointer(rebasing:
                arena[(slot * TrafficSynthesizer.maximumFrameLength)..<((slot + 1) * TrafficSynthesizer.maximumFrameLength)])
            guard let (length, timestamp) = synthesizer.next(into: frame) else { break }
            batch.append(timestampNanoseconds: clockStamp ?? timestamp, capturedLength: UInt32(length), wireLength: UInt32(length),
                         data: UnsafePointer(frame.baseAddress!.assumingMemoryBound(to: UInt8.self)))
        }
        // The end is said with the last packets: the SDK delivers them, then says the end.
        return packetLimit == 0 || synthesizer.packetsGenerated < packetLimit
    }

    public func setFilter(_ expression: String) throws(PluginError) {
        throw PluginError("gen:: sources do not filter; generate only what you need", code: .notSupported)
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        var stats = trawl_stats()
        stats.valid = UInt64(TRAWL_STAT_RECEIVED)
        stats.received = synthesizer.packetsGenerated
        return stats
    }

    public func interrupt() { stopping.store(true, ordering: .relaxed) }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(GenSource.self) }
