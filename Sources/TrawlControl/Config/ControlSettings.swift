/// trawlctl.cfg: zeekctl.cfg's keys where they mean something to Trawl, with zeekctl's
/// defaults. A key zeekctl knows that means nothing here, or a key nobody knows, is a warning
/// naming the file and line, never a silent ignore. `${Name}` in a value is another key's
/// value (`${SpoolDir}/tmp`), as in zeekctl.
public struct ControlSettings: Sendable, Equatable {
    /// Where trawlctl's installation lives (bin/, etc/, spool/, logs/ below it).
    public var prefix: String
    public var logDir: String
    public var spoolDir: String
    public var tmpDir: String
    /// Seconds between log rotations on the loggers (0: none).
    public var logRotationInterval = 3600
    /// Days archived logs are kept (0: for ever).
    public var logExpireDays = 0
    public var compressLogs = true
    public var compressCmd = "gzip"
    public var compressExtension = "gz"
    /// The percentage of free disk space under which `cron` and `df` warn.
    public var minDiskSpace = 5
    /// Seconds a stopping node is given before SIGKILL.
    public var stopTimeout = 60
    /// The manager's forwarder port (it also takes the next one); loggers listen after them.
    public var clusterPort = 27760
    public var metricsPort = 9991
    public var metricsAddress = "127.0.0.1"
    /// Environment variables every node gets (a node's own `env_vars` win).
    public var environment: [String] = []
    /// Days crash reports are kept in the spool (0: for ever).
    public var crashExpireDays = 0
    public var statsLogEnable = true
    public var privateAddressSpaceIsLocal = true
    /// PF_RING clusters for `lb_method=pf_ring`: the first id (one per interface and host).
    public var pfRingClusterID = 21
    public var pfRingClusterType = "4-tuple"
    /// CURVE between hosts: "auto" (when the cluster spans hosts), "1" or "0".
    public var curveEncryption = "auto"
    /// Where the cluster's CURVE keys are made and kept.
    public var curveDir: String
    /// More arguments for every `trawl` (zeekctl's ZeekArgs).
    public var trawlArgs: [String] = []
    /// Problems that do not stop anything.
    public private(set) var warnings: [ConfigProblem] = []

    public init(prefix: String) {
        self.prefix = prefix
        logDir = prefix + "/logs"
        spoolDir = prefix + "/spool"
        tmpDir = spoolDir + "/tmp"
        curveDir = spoolDir + "/keys"
    }

    /// Keys zeekctl has that mean nothing to Trawl (mail, Zeek scripts, Broker, the web socket...).
    static let zeekOnlyKeys: Set<String> = [
        "debug", "havenfs", "savetraces", "commtimeout", "controltopic", "commandtimeout", "makearchivename",
        "compresslogsinflight", "sendmail", "mailsubjectprefix", "mailreplyto", "mailto", "mailfrom", "mailalarmsto",
        "mailalarmsinterval", "mailconnectionsummary", "mailhostupdown", "mailarchivelogfail", "mailreceivingpackets",
        "keeplogs", "memlimit", "timefmt", "prefixes", "sitepolicyscripts", "statuscmdshowall", "stopwait", "croncmd",
        "pfringfirstappinstance", "timemachinehost", "timemachineport", "usewebsocket", "websockethost", "websocketport",
        "websocketurl", "websockettimeout", "sitepolicypath", "sitepluginpath", "zeekbase", "policydir", "statslogexpireinterval",
        "zeromq_disable_unencrypted_warning", "clusterbackend", "libdir", "libdirinternal", "bindir", "scriptsdir",
        "cfgdir", "zeek", "pcapsnaplen", "pcapbufsize", "ipv6comm", "statedir",
    ]

    /// Reads trawlctl.cfg's `text` (from `file`) over the defaults for `prefix`.
    public init(parsing text: String, file: String, prefix: String) throws(ConfigProblems) {
        self.init(prefix: prefix)
        let parsed: KeyValueFile
        do { parsed = try KeyValueFile(parsing: text, file: file) } catch { throw ConfigProblems([error]) }
        var values: [String: (value: String, line: Int)] = [:]
        for entry in parsed.entries { values[entry.key] = (entry.value, entry.line) }
        var problems: [ConfigProblem] = []
        func substituted(_ text: String, line: Int) -> String {
            var result = text
            while let open = result.range(of: "${"), let close = result[open.upperBound...].firstIndex(of: "}") {
                let name = result[open.upperBound..<close].lowercased()
                let value = values[name]?.value ?? builtIn(name)
                guard let value else {
                    problems.append(ConfigProblem(file, line, "${\(result[open.upperBound..<close])} names no setting"))
                    return result
                }
                result.replaceSubrange(open.lowerBound...close, with: value)
            }
            return result
        }
        func builtIn(_ name: String) -> String? {
            switch name {
            case "prefix", "trawlbase", "zeekbase": prefix
            case "spooldir": spoolDir
            case "logdir": logDir
            default: nil
            }
        }
        // The directories first: the others may name them.
        for key in ["spooldir", "logdir", "tmpdir"] {
            guard let (value, line) = values[key] else { continue }
            let path = substituted(value, line: line)
            switch key {
            case "spooldir":
                spoolDir = path
                if values["tmpdir"] == nil { tmpDir = path + "/tmp" }
                if values["zeromq_curve_dir"] == nil { curveDir = path + "/keys" }
            case "logdir": logDir = path
            default: tmpDir = path
            }
        }
        func number(_ key: String, _ value: String, _ line: Int) -> Int? {
            guard let n = Int(value), n >= 0 else {
                problems.append(ConfigProblem(file, line, "\(key): '\(value)' is not a whole number"))
                return nil
            }
            return n
        }
        func flag(_ key: String, _ value: String, _ line: Int) -> Bool? {
            switch value.lowercased() {
            case "1", "t", "true", "yes": return true
            case "0", "f", "false", "no": return false
            default:
                problems.append(ConfigProblem(file, line, "\(key): '\(value)' is not 1 or 0"))
                return nil
            }
        }
        for entry in parsed.entries {
            let key = entry.key, line = entry.line
            let value = substituted(entry.value, line: line)
            switch key {
            case "spooldir", "logdir", "tmpdir": break
            case "logrotationinterval": logRotationInterval = number(key, value, line) ?? logRotationInterval
            case "logexpireinterval":
                if let days = Self.days(value) { logExpireDays = days } else {
                    problems.append(ConfigProblem(file, line, "LogExpireInterval: '\(value)' is not a number of days (30, 30 day, 12 hr, 0 for never)"))
                }
            case "crashexpireinterval": crashExpireDays = number(key, value, line) ?? crashExpireDays
            case "compresslogs": compressLogs = flag(key, value, line) ?? compressLogs
            case "compresscmd": compressCmd = value
            case "compressextension": compressExtension = value
            case "mindiskspace": minDiskSpace = number(key, value, line) ?? minDiskSpace
            case "stoptimeout": stopTimeout = number(key, value, line) ?? stopTimeout
            case "zeekport", "trawlport":
                if let port = number(key, value, line), port > 0, port < 65_535 { clusterPort = port } else if Int(value) != nil {
                    problems.append(ConfigProblem(file, line, "\(key): \(value) is not a port (1-65534)"))
                }
            case "metricsport":
                if let port = number(key, value, line), port > 0, port <= 65_535 { metricsPort = port }
            case "metricsaddress": metricsAddress = value
            case "env_vars": environment = Self.environment(value)
            case "statslogenable": statsLogEnable = flag(key, value, line) ?? statsLogEnable
            case "privateaddressspaceislocal": privateAddressSpaceIsLocal = flag(key, value, line) ?? privateAddressSpaceIsLocal
            case "pfringclusterid": pfRingClusterID = number(key, value, line) ?? pfRingClusterID
            case "pfringclustertype": pfRingClusterType = value
            case "zeromq_use_curve_encryption", "curveencryption":
                guard ["auto", "1", "0"].contains(value.lowercased()) else {
                    problems.append(ConfigProblem(file, line, "\(key): '\(value)' is not auto, 1 or 0"))
                    continue
                }
                curveEncryption = value.lowercased()
            case "zeromq_curve_dir": curveDir = value
            case "zeekargs", "trawlargs": trawlArgs = value.split(separator: " ").map(String.init)
            default:
                if Self.zeekOnlyKeys.contains(key.replacingAll(".", with: "_")) {
                    warnings.append(ConfigProblem(file, line, "'\(key)' means nothing to Trawl (a setting of Zeek's); ignored"))
                } else {
                    warnings.append(ConfigProblem(file, line, "unknown setting '\(key)'; ignored"))
                }
            }
        }
        if !problems.isEmpty { throw ConfigProblems(problems) }
    }

    /// zeekctl's intervals for expiry: a number of days, or a number and day(s), hr(s) or min(s).
    static func days(_ text: String) -> Int? {
        let parts = text.split(separator: " ")
        guard let first = parts.first, let n = Double(first), n >= 0, parts.count <= 2 else { return nil }
        switch parts.count == 2 ? parts[1].lowercased() : "day" {
        case "day", "days": return Int(n.rounded(.up))
        case "hr", "hrs", "hour", "hours": return Int((n / 24).rounded(.up))
        case "min", "mins": return Int((n / 1440).rounded(.up))
        default: return nil
        }
    }

    /// "A=1, B=2" as ["A=1", "B=2"].
    static func environment(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingWhitespace }.filter { !$0.isEmpty }.map(String.init)
    }
}

/// Everything wrong in the configuration, each with its file and line.
public struct ConfigProblems: Error, Sendable, CustomStringConvertible {
    public let problems: [ConfigProblem]
    public init(_ problems: [ConfigProblem]) { self.problems = problems }
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
