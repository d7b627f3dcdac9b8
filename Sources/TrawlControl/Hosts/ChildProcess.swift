#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// A child process run to its end with posix_spawn: `input` written to its standard input,
/// its standard output and error read at once (poll), its exit status from waitpid. (Not
/// Foundation's Process, whose wait can miss a child's end when it is run off the main thread.)
struct ChildProcess {
    struct Result {
        var status: Int32
        var output: [UInt8]
        var errors: [UInt8]
    }

    static func run(_ path: String, _ arguments: [String], input: [UInt8] = []) -> Result {
        keepDescriptorsFromChildren()
        var stdinPipe: [Int32] = [0, 0], stdoutPipe: [Int32] = [0, 0], stderrPipe: [Int32] = [0, 0]
        guard pipe(&stdinPipe) == 0, pipe(&stdoutPipe) == 0, pipe(&stderrPipe) == 0 else {
            return Result(status: 127, output: [], errors: Array("cannot make pipes: \(Errno.current)".utf8))
        }
        // Not inherited by the child's own children (a node it starts must not hold them open).
        for fd in stdinPipe + stdoutPipe + stderrPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        var pid: pid_t = 0
        let spawned = spawn(&pid, path, arguments, &actions)
        for fd in [stdinPipe[0], stdoutPipe[1], stderrPipe[1]] { close(fd) }
        guard spawned == 0 else {
            for fd in [stdinPipe[1], stdoutPipe[0], stderrPipe[0]] { close(fd) }
            return Result(status: 127, output: [], errors: Array("cannot run \(path): \(Errno(rawValue: spawned))".utf8))
        }
        // Feed the input and read both outputs together, so that no pipe fills up.
        var output: [UInt8] = [], errors: [UInt8] = []
        var written = 0
        var inputFD: Int32 = stdinPipe[1]
        if input.isEmpty {
            close(inputFD)
            inputFD = -1
        } else {
            _ = fcntl(inputFD, F_SETFL, fcntl(inputFD, F_GETFL) | O_NONBLOCK)
        }
        var open: [Int32] = [stdoutPipe[0], stderrPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        signal(SIGPIPE, SIG_IGN) // a child that stops reading must not kill trawlctl
        while !open.isEmpty || inputFD >= 0 {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if inputFD >= 0 { fds.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 else {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == inputFD {
                    let n = input.withUnsafeBytes { write(inputFD, $0.baseAddress! + written, input.count - written) }
                    if n > 0 { written += n }
                    if n < 0 && errno != EAGAIN || written == input.count {
                        close(inputFD)
                        inputFD = -1
                    }
                    continue
                }
                let n = read(entry.fd, &buffer, buffer.count)
                if n > 0 {
                    if entry.fd == stdoutPipe[0] { output += buffer[0..<n] } else { errors += buffer[0..<n] }
                } else if n == 0 || errno != EINTR && errno != EAGAIN {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        return Result(status: wait(pid), output: output, errors: errors)
    }

    /// A process left running in `directory`, its standard output and error in files; its pid.
    static func start(_ path: String, _ arguments: [String], directory: String, output: String, errors: String) -> pid_t? {
        keepDescriptorsFromChildren()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil, chdir(directory) == 0 else { return nil }
        defer { _ = chdir(buffer) }
        var pid: pid_t = 0
        return spawn(&pid, path, arguments, &actions) == 0 ? pid : nil
    }

    /// The exit status of `pid` once it ends (128 + the signal that ended it, as a shell says).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    private static func spawn(_ pid: inout pid_t, _ path: String, _ arguments: [String],
                              _ actions: inout posix_spawn_file_actions_t) -> Int32 {
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        return posix_spawn(&pid, path, &actions, nil, argv, environ)
    }

    /// Marks every descriptor trawlctl has beyond 0-2 close-on-exec: what it was given by
    /// its own parent (a test harness's pipe or socket, say) must not reach the nodes it
    /// starts, which outlive it and would hold them open for ever.
    static func keepDescriptorsFromChildren() {
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        let own = dirfd(directory)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), fd > 2, fd != own else { continue }
            _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
        }
    }
}
