#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TrawlCore

/// Turns SIGINT and SIGTERM into a clean stop. The signals are blocked in every thread and
/// taken by one thread with `sigwait`, which sets the stop token and interrupts the sources,
/// so a read blocked in the kernel (a quiet interface) returns at once. This runs outside
/// signal context, so any code may run. A second signal exits immediately, unless it comes
/// within a second of the first: `timeout` and shells signal the command and then its whole
/// process group, which would otherwise cut the summary off.
final class StopSignals: @unchecked Sendable {
    private let sources: [any PacketSource]
    private let stop: StopToken
    /// Whether interrupts may still reach the sources; a Mutex, which keeps its own stable
    /// storage (a pthread_mutex_t property passed as &lock has no stable address in Swift).
    private let armed = Mutex(true)

    init(interrupting sources: [any PacketSource], stop: StopToken) {
        self.sources = sources
        self.stop = stop
        var set = Self.signals()
        // Also undoes a mask inherited from the parent: sigwait needs the signals blocked.
        pthread_sigmask(SIG_BLOCK, &set, nil)
        pthread_detach(startThread { [self] in waitForSignals() })
    }

    static func signals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        return set
    }

    private func waitForSignals() {
        var set = Self.signals()
        var signal: Int32 = 0
        var firstSignal: UInt64 = 0
        while sigwait(&set, &signal) == 0 {
            if stop.isStopped {
                if Progress.now() - firstSignal > 1_000_000_000 { _exit(128 + signal) }
                continue
            }
            firstSignal = Progress.now()
            stop.stop()
            armed.withLock { armed in if armed { sources.forEach { $0.interrupt() } } }
        }
    }

    /// Called before the sources close: no interrupt reaches them after this returns.
    func disarm() {
        armed.withLock { $0 = false }
    }
}
