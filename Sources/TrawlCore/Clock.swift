#if canImport(Glibc)
import Glibc
#endif

/// The two clocks Trawl reads: wall time for what people see (log stamps, seeds) and the
/// monotonic clock for intervals (progress, rates).
public enum Clock {
    /// Nanoseconds since the epoch.
    public static func wallNanoseconds() -> UInt64 { read(CLOCK_REALTIME) }

    /// Nanoseconds since an arbitrary start; never goes back.
    public static func monotonicNanoseconds() -> UInt64 { read(CLOCK_MONOTONIC) }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var t = timespec()
        clock_gettime(clock, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast, well-mixed generator, for test
/// traffic, uids and hash seeds. Not for secrets.
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    /// A seed that differs between runs and processes.
    public static func freshSeed() -> UInt64 {
        var mixer = SplitMix64(seed: Clock.wallNanoseconds() ^ UInt64(getpid()) << 40)
        return mixer.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
