import CTrawlSystem
import TrawlPluginSDK
#if canImport(Glibc)
import Glibc
#endif

/// Waits for a capture descriptor to become readable, or for `interrupt()` from another
/// thread: an eventfd beside the descriptor in one poll. The two pollfds are allocated
/// once, so a wait allocates nothing.
public final class WakeupWait: @unchecked Sendable {
    public enum Outcome: Equatable {
        /// The descriptor's poll events (0: the timeout passed with nothing).
        case polled(revents: Int16)
        /// `interrupt()` was called; the wake-up is used up.
        case interrupted
    }

    private let event: Int32
    private let descriptors: UnsafeMutablePointer<pollfd>

    public init(watching descriptor: Int32) throws(PluginError) {
        event = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard event >= 0 else { throw PluginError.system("eventfd", errno: errno) }
        descriptors = .allocate(capacity: 2)
        descriptors[0] = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        descriptors[1] = pollfd(fd: event, events: Int16(POLLIN), revents: 0)
    }

    deinit {
        close(event)
        descriptors.deallocate()
    }

    /// Waits up to `timeoutMilliseconds` (0: only looks). EINTR counts as a timeout.
    public func wait(timeoutMilliseconds: Int32) throws(PluginError) -> Outcome {
        descriptors[0].revents = 0
        descriptors[1].revents = 0
        if poll(descriptors, 2, timeoutMilliseconds) < 0 && errno != EINTR { throw PluginError.system("poll", errno: errno) }
        if descriptors[1].revents & Int16(POLLIN) != 0 {
            var counter: UInt64 = 0
            _ = read(event, &counter, 8)
            return .interrupted
        }
        return .polled(revents: descriptors[0].revents)
    }

    /// Makes a wait in progress (or the next one) return `.interrupted`. Any thread.
    public func interrupt() {
        var one: UInt64 = 1
        _ = write(event, &one, 8)
    }
}
