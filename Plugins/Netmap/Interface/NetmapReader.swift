#if canImport(Glibc)
import Glibc
#endif

/// One read of a bound netmap port, batch by batch, apart from the file descriptor so that
/// tests can drive it over rings laid out in memory: the previous batch's slots go back to
/// the kernel, an empty port is waited on (waiting syncs the rings), and the packets found
/// are handed out in place, each with the time of the sync that brought it (netmap stamps
/// none).
public final class NetmapReader {
    public private(set) var rings: ReceiveRings
    /// Packets spread over several slots are put together here, for one batch at a time.
    private let scratch: UnsafeMutablePointer<UInt8>
    private let scratchSize: Int
    private var scratchUsed = 0

    public init(rings: ReceiveRings, scratchSize: Int = 1 << 20) {
        self.rings = rings
        self.scratchSize = scratchSize
        scratch = .allocate(capacity: scratchSize)
    }

    deinit { scratch.deallocate() }

    /// Hands the next packets to `deliver` (data, length, nanosecond stamp; false stops the
    /// batch). `wait` waits for packets and says whether any may have come (false: a timeout
    /// or an interrupt); `now` is the clock. Returns how many packets were handed out.
    @discardableResult
    public func next<Failure: Error>(wait: () throws(Failure) -> Bool, now: () -> UInt64,
                                     deliver: (UnsafePointer<UInt8>, Int, UInt64) -> Bool) throws(Failure) -> Int {
        rings.release() // the previous batch is done with: its slots go back
        scratchUsed = 0
        if !rings.hasPackets {
            guard try wait(), rings.hasPackets else { return 0 }
        }
        let stamp = now()
        return rings.read(scratch: { size in
            guard scratchUsed + size <= scratchSize else { return nil }
            defer { scratchUsed += size }
            return scratch + scratchUsed
        }, deliver: { data, length in deliver(data, length, stamp) })
    }

    /// CLOCK_REALTIME in nanoseconds.
    public static func wallClock() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}
