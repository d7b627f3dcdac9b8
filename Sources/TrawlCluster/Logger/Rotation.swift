#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCore

/// When a logger rotates: every `interval`, aligned as Zeek aligns it (Log::rotate_base_time
/// "0:00"): on multiples of the interval counted from local midnight, so hourly rotation
/// happens on the hour.
public struct RotationSchedule: Equatable, Sendable {
    public let interval: UInt64

    public init(interval: UInt64) { self.interval = interval }

    /// The first rotation time after `now` (wall ns).
    public func next(after now: UInt64) -> UInt64 {
        let midnight = Self.localMidnight(of: now)
        let sinceMidnight = now - midnight
        return midnight + (sinceMidnight / interval + 1) * interval
    }

    static func localMidnight(of time: UInt64) -> UInt64 {
        var seconds = time_t(time / 1_000_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        let midnight = mktime(&parts)
        return midnight < 0 ? 0 : UInt64(midnight) * 1_000_000_000
    }
}

/// What happens to a rotated file: by default it is compressed into the log directory's
/// archive, `LOGDIR/YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS[-LOGGER].log.gz` (zeekctl's names;
/// the logger's name when the cluster has several, so that their archives never collide);
/// or an operator's command is run on it. The work runs in child processes, so the logger
/// goes on taking logs; a failure is said (with the command's status) and the rotated file
/// is left where it is, never deleted.
public final class Archiver {
    public enum Action: Equatable, Sendable {
        /// Into the archive, compressed with `compressor` (a command that writes the
        /// compressed file to its standard output when given `-c FILE`, as gzip; nil: as it
        /// is) under the name ending `.log.EXTENSION`, with the logger's name in the file
        /// name when `suffix` is set.
        case archive(suffix: String?, compressor: String? = "gzip", extension: String = "gz")
        /// `sh -c COMMAND trawl-rotate FILE STREAM OPENED CLOSED TERMINATING`: the rotated file, the stream, the
        /// opening and closing times as YYYY-MM-DD-HH-MM-SS, and 1 at shutdown, else 0.
        case command(String)
    }

    let directory: String
    let action: Action
    private var running: [pid_t: (file: String, description: String)] = [:]
    private let report: Reporter
    public private(set) var archived: UInt64 = 0
    public private(set) var failed: UInt64 = 0

    public init(directory: String, action: Action, report: @escaping Reporter) {
        self.directory = directory
        self.action = action
        self.report = report
    }

    /// The archive name of a rotated log (for `.archive`).
    public static func archivePath(directory: String, _ log: RotatedLog, suffix: String?, extension: String? = "gz") -> String {
        let opened = localParts(log.opened), closed = localParts(log.closed)
        func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : String(v) }
        let day = "\(opened.tm_year + 1900)-\(pad(opened.tm_mon + 1))-\(pad(opened.tm_mday))"
        let span = "\(pad(opened.tm_hour)):\(pad(opened.tm_min)):\(pad(opened.tm_sec))-\(pad(closed.tm_hour)):\(pad(closed.tm_min)):\(pad(closed.tm_sec))"
        return directory + "/" + day + "/" + log.stream + "." + span + (suffix.map { "-" + $0 } ?? "") + ".log"
            + (`extension`.map { "." + $0 } ?? "")
    }

    static func localParts(_ time: UInt64) -> tm {
        var seconds = time_t(time / 1_000_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return parts
    }

    /// Starts the post-processing of a rotated log.
    public func process(_ log: RotatedLog, terminating: Bool) {
        let arguments: [String]
        switch action {
        case let .archive(suffix, compressor, `extension`):
            let target = Self.archivePath(directory: directory, log, suffix: suffix, extension: compressor == nil ? nil : `extension`)
            let folder = String(target[..<target.lastIndex(of: "/")!])
            // A partial archive never has the final name; the rotated file goes once it is safe.
            let copy = compressor.map { "\($0) -c \"$2\" > \"$3.tmp\"" } ?? "cp \"$2\" \"$3.tmp\""
            arguments = ["/bin/sh", "-c", "mkdir -p \"$1\" && \(copy) && mv \"$3.tmp\" \"$3\" && rm -f \"$2\"",
                         "trawl-archive", folder, log.file, target]
        case let .command(command):
            arguments = ["/bin/sh", "-c", command + " \"$@\"", "trawl-rotate", log.file, log.stream,
                         ZeekASCIIWriter.stamp(log.opened), ZeekASCIIWriter.stamp(log.closed), terminating ? "1" : "0"]
        }
        switch spawn(arguments) {
        case let .success(pid): running[pid] = (log.file, arguments[2])
        case let .failure(error):
            failed += 1
            report("cannot post-process \(log.file): \(error); the file stays there")
        }
    }

    /// Collects the post-processors that have ended; says which failed.
    public func reap() {
        for (pid, job) in running {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { continue }
            running.removeValue(forKey: pid)
            let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
            if exited && code == 0 {
                archived += 1
            } else {
                failed += 1
                report("post-processing \(job.file) failed (\(exited ? "exit status \(code)" : "signal \(status & 0x7f)")); the rotated file stays there")
            }
        }
    }

    /// Waits for every post-processor, at most `timeout`.
    public func wait(timeout: UInt64) {
        let deadline = Clock.monotonicNanoseconds() &+ timeout
        while !running.isEmpty && Clock.monotonicNanoseconds() < deadline {
            reap()
            if !running.isEmpty { usleep(20_000) }
        }
    }

    private func spawn(_ arguments: [String]) -> Result<pid_t, Errno> {
        var pid: pid_t = 0
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The child must not inherit our blocked signals, or gzip would ignore SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let status = posix_spawn(&pid, "/bin/sh", nil, &attributes, &argv, environ)
        return status == 0 ? .success(pid) : .failure(Errno(rawValue: status))
    }
}
