import Foundation

/// Runs shell scripts on the cluster's hosts: this machine's with /bin/sh, the others with
/// the system's ssh (BatchMode, as zeekctl: no password prompt can hang a command). One
/// script per host and command, all hosts at once: a command costs one round trip per
/// host whatever the number of nodes.
public struct HostShell: Sendable {
    public struct Result: Sendable {
        public let host: String
        public let status: Int32
        public let output: String
        public let errors: String
    }

    /// Extra ssh arguments (a test's key and known-hosts file, say).
    public var sshOptions: [String]
    /// The ssh program (TRAWLCTL_SSH: a wrapper that counts round trips, in the benchmark).
    public var ssh = "/usr/bin/ssh"
    public var connectTimeout: Int

    public init(sshOptions: [String] = [], connectTimeout: Int = 10) {
        self.sshOptions = sshOptions
        self.connectTimeout = connectTimeout
    }

    /// Runs `script` on `host`.
    public func run(_ script: String, on host: String) -> Result {
        let result: ChildProcess.Result
        if isLocalHost(host) {
            result = ChildProcess.run("/bin/sh", ["-s"], input: Array(script.utf8))
        } else {
            result = ChildProcess.run(ssh, ["-o", "BatchMode=yes", "-o", "ConnectTimeout=\(connectTimeout)"] + sshOptions
                                          + [host, "/bin/sh", "-s"], input: Array(script.utf8))
        }
        return Result(host: host, status: result.status, output: String(decoding: result.output, as: UTF8.self),
                      errors: String(decoding: result.errors, as: UTF8.self))
    }

    /// Runs each host's script, all at once; the results in the order given.
    public func runAll(_ scripts: [(host: String, script: String)]) -> [Result] {
        parallel(scripts.map { Job(host: $0.host, script: $0.script) }) { run($0.script, on: $0.host) }
    }

    private struct Job: Sendable {
        let host: String
        let script: String
    }
}

/// A word for a shell script, in single quotes.
func shellQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
