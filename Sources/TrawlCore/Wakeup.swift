#if canImport(Glibc)
import Glibc
#endif
import CTrawlSystem

/// An eventfd that one thread signals and another polls: how a producer wakes a thread
/// sleeping in `poll` (the run loop, the cluster's shipper).
public final class Wakeup: @unchecked Sendable {
    public let descriptor: Int32

    public init() throws(Errno) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw Errno.current }
        descriptor = fd
    }

    deinit { Glibc.close(descriptor) }

    /// Makes the descriptor readable; safe from any thread.
    public func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(descriptor, &one, 8)
    }

    /// Takes the signals so far; the descriptor is no longer readable after this.
    public func clear() {
        var count: UInt64 = 0
        _ = Glibc.read(descriptor, &count, 8)
    }
}
