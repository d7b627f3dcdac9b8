#if canImport(Glibc)
import Glibc
#endif
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
        options: [
            PluginOption("flows", .count(default: 1000), "Conversations in progress at once"),
            PluginOption("packets", .count(default: 100_000), "Packets to send in all; 0: no end (live only)"),
            PluginOption("rate", .count(default: 100_000), "Packets per second; 0: as fast as possible"),
            PluginOption("seed", .count(default: 1), "Seed of the deterministic generator"),
        ]
    )

    public let info: PluginSourceInfo
    private var synthesizer: TrafficSynthesizer
    private let packetLimit: UInt64
    private let live: Bool
    private let gap: UInt64
    /// One frame slot per batch entry; valid until the next batch.
    private let arena: UnsafeMutableRawBufferPointer
    private let slots = 256
    private var startedAt: UInt64 = 0
    private var stopping = false

    public init(request: OpenRequest) throws(PluginError) {
        let rate = request.count("rate") ?? 100_000
        let flows = request.count("flows") ?? 1000
        guard flows > 0 else { throw PluginError("Gen::flows must be at least 1") }
        live = request.mode == .live
        gap = rate == 0 ? 0 : 1_000_000_000 / rate
        packetLimit = request.count("packets") ?? 100_000
        guard live || packetLimit > 0 else { throw PluginError("Gen::packets=0 (no end) works only for live input (-i)") }
        var configuration = TrafficSynthesizer.Configuration(
            flows: Int.max, concurrency: Int(clamping: flows), seed: request.count("seed") ?? 1, gapNanoseconds: gap
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
        if stopping { return false }
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
        return batch.count > 0
    }

    public func setFilter(_ expression: String) throws(PluginError) {
        throw PluginError("gen:: sources do not filter; generate only what you need")
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        var stats = trawl_stats()
        stats.valid = UInt64(TRAWL_STAT_RECEIVED)
        stats.received = synthesizer.packetsGenerated
        return stats
    }

    public func interrupt() { stopping = true }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(GenSource.self) }
