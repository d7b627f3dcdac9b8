#if canImport(Glibc)
import Glibc
#endif

/// Starts a thread that runs `body`, with every signal blocked: SIGINT and SIGTERM are for
/// the thread that waits for them (trawl's `sigwait` thread, itself started here, which
/// needs them blocked anyway); a helper thread that let them through could take the process
/// down with the default action. Join or detach the thread returned.
public func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Body: @unchecked Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    var thread = pthread_t()
    var all = sigset_t(), previous = sigset_t()
    sigfillset(&all)
    pthread_sigmask(SIG_BLOCK, &all, &previous) // the new thread inherits the mask
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    let context = Unmanaged.passRetained(Body(body)).toOpaque()
    let status = pthread_create(&thread, nil, { context in
        Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
        return nil
    }, context)
    precondition(status == 0, "cannot start a thread: error \(status)")
    return thread
}
