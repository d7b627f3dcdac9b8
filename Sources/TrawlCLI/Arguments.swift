import TrawlCore
import TrawlAnalysis

/// What the user asked `trawl` to do.
public enum Command: Equatable {
    case help
    case version
    /// `-N` (verbose false) or `-NN` (verbose true), optionally for one plugin.
    case listPlugins(verbose: Bool, name: String?, json: Bool)
    case capture(NodeConfiguration)
    /// `--check-fanout af_packet::IFACE`: is the kernel's fanout hash symmetric?
    case checkFanout(FanoutCheckOptions)
    /// `--generate-cluster-keys DIR`: CURVE keys for a cluster.
    case generateClusterKeys(String)
}

public struct FanoutCheckOptions: Equatable {
    public var interface: String
    public var seconds: Double = 5
    public var members = 2
    /// Make TCP conversations on the loopback interface while watching it.
    public var generate: Bool
    public var optionAssignments: [String] = []
    public var pinCPUs: [Int]?

    public init(interface: String) {
        self.interface = interface
        generate = SourceSpec(interface).path == "lo"
    }
}

public struct UsageError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Parses Zeek-style flags: `-i IFACE` or `-iIFACE`, repeatable `-i`/`-r`, `-N`/`-NN [NAME]`,
/// and trailing `Namespace::name=value` option assignments.
public func parseArguments(_ arguments: [String]) throws(UsageError) -> Command {
    var options = NodeConfiguration()
    var listing: (verbose: Bool, name: String?)?
    var json = false
    var checkFanout: String?
    var duration: Double?
    var members: Int?
    var index = 0

    func value(for flag: String, attached: Substring) throws(UsageError) -> String {
        if !attached.isEmpty { return String(attached) }
        index += 1
        guard index < arguments.count else { throw UsageError("option \(flag) needs an argument") }
        return arguments[index]
    }

    while index < arguments.count {
        let word = arguments[index]
        switch word {
        case "-h", "--help": return .help
        case "-v", "--version": return .version
        case "-N", "-NN":
            listing = (word == "-NN", nil)
            if index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-"),
               OptionAssignment.parse(arguments[index + 1]) == nil {
                index += 1
                listing?.name = arguments[index]
            }
        case "--json": json = true
        case "-C": options.analysis.verifyChecksums = false
        case "-b": options.analysis.bareMode = true
        case "--progress": options.progress = true
        case "--no-progress": options.progress = false
        case "--check-fanout": checkFanout = try value(for: word, attached: "")
        case "--duration":
            let text = try value(for: word, attached: "")
            guard let seconds = Double(text), seconds > 0, seconds.isFinite else { throw UsageError("--duration takes a positive number of seconds, not '\(text)'") }
            duration = seconds
        case "--members":
            let text = try value(for: word, attached: "")
            guard let count = Int(text), (2...64).contains(count) else { throw UsageError("--members takes a number from 2 to 64, not '\(text)'") }
            members = count
        case "--no-analysis": options.analyses = false
        case "--logdir":
            options.logDirectory = try value(for: word, attached: "")
            options.logDirectoryGiven = true
        case "--cluster-layout": options.clusterLayout = try value(for: word, attached: "")
        case "--node": options.nodeName = try value(for: word, attached: "")
        case "--generate-cluster-keys": return .generateClusterKeys(try value(for: word, attached: ""))
        case "--pin-cpu":
            let text = try value(for: word, attached: "")
            guard let cpus = CPUAffinity.parse(text) else { throw UsageError("--pin-cpu takes CPU numbers such as 2, 0,2 or 0-3, not '\(text)'") }
            options.pinCPUs = cpus
        default:
            if word.hasPrefix("-") && word.count >= 2 && !word.hasPrefix("--") {
                let flag = String(word.prefix(2))
                let attached = word.dropFirst(2)
                switch flag {
                case "-i": options.interfaces.append(try value(for: flag, attached: attached))
                case "-r": options.traces.append(try value(for: flag, attached: attached))
                case "-f": options.filter = try value(for: flag, attached: attached)
                case "-w": options.writePath = try value(for: flag, attached: attached)
                default: throw UsageError("unknown option \(word)")
                }
            } else if try takeAnalysisSetting(word, into: &options.analysisSettings) {
                // taken
            } else if let (namespace, name, text) = OptionAssignment.parse(word), namespace == "LogAscii" {
                // Zeek's own switch for JSON logs.
                guard name == "use_json", let value = OptionValue.parse(text, as: .bool), case let .bool(json) = value else {
                    throw UsageError("the only LogAscii option is LogAscii::use_json=T|F, not '\(word)'")
                }
                options.jsonLogs = json
            } else if let (namespace, name, text) = OptionAssignment.parse(word), namespace == "Cluster" {
                guard name == "shard", let shard = Shard(text) else {
                    throw UsageError("the Cluster option is Cluster::shard=I/N (part I of N, 0 <= I < N <= 1024), not '\(word)'")
                }
                options.analysis.shard = shard
            } else if OptionAssignment.parse(word) != nil {
                options.optionAssignments.append(word)
            } else {
                throw UsageError(word.hasPrefix("--") ? "unknown option \(word)" : "unexpected argument '\(word)'")
            }
        }
        index += 1
    }
    if let listing { return .listPlugins(verbose: listing.verbose, name: listing.name, json: json) }
    if let checkFanout {
        guard options.interfaces.isEmpty && options.traces.isEmpty else { throw UsageError("--check-fanout takes no -i or -r") }
        var check = FanoutCheckOptions(interface: checkFanout)
        check.seconds = duration ?? check.seconds
        check.members = members ?? check.members
        check.optionAssignments = options.optionAssignments
        check.pinCPUs = options.pinCPUs
        return .checkFanout(check)
    }
    if duration != nil || members != nil { throw UsageError("--duration and --members go with --check-fanout") }
    if json { throw UsageError("--json goes with -N or -NN") }
    if options.nodeName != nil && options.clusterLayout == nil { throw UsageError("--node goes with --cluster-layout") }
    // A cluster's logger, manager and proxy read no packets: the layout says which this is.
    if options.interfaces.isEmpty && options.traces.isEmpty && options.clusterLayout == nil {
        throw UsageError("nothing to read: give -r FILE or -i INTERFACE")
    }
    if !options.interfaces.isEmpty && !options.traces.isEmpty {
        throw UsageError("-r and -i cannot be mixed in one run")
    }
    return .capture(options)
}

/// An analysis setting (AnalysisSettings) in `word`: taken, or not one, or a usage error.
func takeAnalysisSetting(_ word: String, into settings: inout AnalysisSettings) throws(UsageError) -> Bool {
    do { return try settings.take(word) } catch { throw UsageError(error.description) }
}

public let usageText = """
usage: trawl [options] [Namespace::option=value ...]
  -r FILE        read a trace file (pcap or pcapng; "-" is standard input); repeatable
  -i IFACE       capture live from an interface; "prefix::name" picks a plugin (af_packet::eth0); repeatable
  -f FILTER      BPF filter in tcpdump syntax
  -w FILE        write the packets read to a pcap file ("-" is standard output)
  -C             ignore checksums
  -b             bare mode: no well-known-port guesses of which side is the server
  --logdir DIR   write conn.log into DIR, made if missing (default: the current directory)
  LogAscii::use_json=T   write the logs as JSON lines instead of Zeek's TSV
  --no-analysis  only read packets: no connection analysis, no conn.log
  -N [NAME]      list the packet-source plugins (or one of them); -NN adds components and options
  --json         with -N/-NN: machine-readable output
  --progress     report progress on standard error (default when it is a terminal)
  --pin-cpu LIST run on these CPUs only (sched_setaffinity), e.g. 2 or 0,2 or 0-3
  --cluster-layout FILE --node NAME
                 run as node NAME of the cluster FILE describes (docs/cluster.md); NAME may
                 also come from $CLUSTER_NODE. A worker reads -r/-i and ships its logs to the
                 loggers; a logger writes them; the manager and proxies serve until stopped
  Site::local_nets=CIDR,...   tcp_inactivity_timeout=5min   (also udp_ and icmp_inactivity_timeout)
                 the local networks (added to the private address space unless
                 Site::private_address_space_is_local=F) and the inactivity timeouts, as Zeek names them
  Cluster::shard=I/N
                 analyse only part I (0-based) of N of the traffic, split by address pair as a
                 fanout frontend would: N workers reading one trace act as N fanout members
  --generate-cluster-keys DIR
                 write the CURVE keys that encrypt and authenticate a cluster's links into DIR
  --check-fanout af_packet::IFACE [--duration S] [--members N]
                 check that the kernel's fanout hash sends both directions of every flow to
                 one member (on lo it makes its own TCP traffic)
  -h, --help     this text;  -v, --version  the version

Plugins are loaded from $TRAWL_PLUGIN_PATH (colon-separated directories or .so files), from beside
the trawl executable, and from <prefix>/lib/trawl/plugins. Options declared by plugins are set as
Namespace::name=value, for example  trawl -i af_packet::eth0 AF_Packet::fanout_id=24
"""

public let trawlVersion = "0.1.0"
