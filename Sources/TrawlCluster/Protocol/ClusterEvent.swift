import TrawlAnalysis
import TrawlCore

/// The events nodes publish through the manager's forwarder: who is alive, statistics, and
/// the proxies' work. Each is one message `[topic, payload]` (docs/cluster-protocol.md).
public enum ClusterEvent: Equatable, Sendable {
    /// "I am here": sent every heartbeat interval; `stopping` in the last one a node sends.
    case heartbeat(Heartbeat)
    /// A worker's counters since it started (the manager makes the per-interval rows).
    case statistics(NodeStatistics)
    /// A local host that completed a TCP handshake, for the proxy that owns it.
    case knownHost(node: String, host: IPAddress, time: UInt64)
    /// A worker's capture counters (packets, bytes, dropped, link), every heartbeat
    /// interval: what `trawlctl netstats` shows, through the manager.
    case capture(NodeStatistics)

    public struct Heartbeat: Equatable, Sendable {
        public var node: String
        public var role: NodeRole
        /// Zeek-like node id: trawl_NODE_HOST_PID_SESSION; it changes when the node restarts.
        public var id: String
        public var stopping: Bool
        public init(node: String, role: NodeRole, id: String, stopping: Bool = false) {
            self.node = node
            self.role = role
            self.id = id
            self.stopping = stopping
        }
    }

    public static let heartbeatTopic = "trawl.cluster.heartbeat"
    public static let managerTopic = "trawl.cluster.manager"
    public static func nodeTopic(_ name: String) -> String { "trawl.cluster.node." + name + "." }

    var kind: UInt8 {
        switch self {
        case .heartbeat: return 1
        case .statistics: return 2
        case .knownHost: return 3
        case .capture: return 4
        }
    }

    public var bytes: [UInt8] {
        var bytes = ClusterProtocol.eventMagic + [ClusterProtocol.version, kind, 0, 0]
        switch self {
        case let .heartbeat(beat):
            LogBatchEncoder.putName(beat.node, into: &bytes)
            bytes.append(UInt8(NodeRole.allCases.firstIndex(of: beat.role)!))
            LogBatchEncoder.putName(beat.id, into: &bytes)
            bytes.append(beat.stopping ? 1 : 0)
        case let .statistics(stats), let .capture(stats):
            LogBatchEncoder.putName(stats.node, into: &bytes)
            LogBatchEncoder.put(stats.time, into: &bytes)
            LogBatchEncoder.put(UInt16(stats.counters.count), into: &bytes)
            for (name, value) in stats.counters {
                LogBatchEncoder.putName(name, into: &bytes)
                LogBatchEncoder.put(value, into: &bytes)
            }
        case let .knownHost(node, host, time):
            LogBatchEncoder.putName(node, into: &bytes)
            withUnsafeBytes(of: host.high.bigEndian) { bytes += $0 }
            withUnsafeBytes(of: host.low.bigEndian) { bytes += $0 }
            LogBatchEncoder.put(time, into: &bytes)
        }
        return bytes
    }

    public init(_ bytes: [UInt8]) throws(ProtocolError) {
        var (reader, kind) = try WireReader.opening(bytes, magic: ClusterProtocol.eventMagic)
        switch kind {
        case 1:
            let node = try reader.name("node")
            let roleIndex = Int(try reader.u8("role"))
            guard roleIndex < NodeRole.allCases.count else { throw .invalid("role \(roleIndex)") }
            let id = try reader.name("id")
            let stopping = try reader.u8("stopping")
            guard stopping <= 1 else { throw .invalid("stopping flag") }
            self = .heartbeat(Heartbeat(node: node, role: NodeRole.allCases[roleIndex], id: id, stopping: stopping == 1))
        case 2, 4:
            let node = try reader.name("node")
            let time = try reader.u64("time")
            let count = Int(try reader.u16("counter count"))
            var counters: [(String, UInt64)] = []
            for _ in 0..<count { counters.append((try reader.name("counter"), try reader.u64("value"))) }
            let stats = NodeStatistics(node: node, time: time, counters: counters)
            self = kind == 2 ? .statistics(stats) : .capture(stats)
        case 3:
            let node = try reader.name("node")
            let high = try reader.integer("address", as: UInt64.self).byteSwapped
            let low = try reader.integer("address", as: UInt64.self).byteSwapped
            self = .knownHost(node: node, host: IPAddress(high: high, low: low), time: try reader.u64("time"))
        default:
            throw .invalid("unknown event kind \(kind)")
        }
        guard reader.position == bytes.count else { throw .invalid("\(bytes.count - reader.position) bytes after the event") }
    }
}

/// A node's counters at one moment, by name (see `NodeStatistics.Name`).
public struct NodeStatistics: Equatable, Sendable {
    public var node: String
    /// Wall-clock nanoseconds.
    public var time: UInt64
    public var counters: [(String, UInt64)]

    public init(node: String, time: UInt64, counters: [(String, UInt64)]) {
        self.node = node
        self.time = time
        self.counters = counters
    }

    public subscript(name: String) -> UInt64? { counters.first { $0.0 == name }?.1 }

    public static func == (a: NodeStatistics, b: NodeStatistics) -> Bool {
        a.node == b.node && a.time == b.time && a.counters.elementsEqual(b.counters) { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    /// The counters a worker sends; all are totals since it started, except the `active_*`
    /// and `mem_bytes` ones, which are what is there now.
    public enum Name {
        public static let packets = "packets", bytes = "bytes", dropped = "dropped", link = "link"
        public static let memory = "mem_bytes", fragmentBytes = "fragment_bytes"
        public static let tcpMade = "tcp_conns", udpMade = "udp_conns", icmpMade = "icmp_conns"
        public static let activeTCP = "active_tcp_conns", activeUDP = "active_udp_conns", activeICMP = "active_icmp_conns"
        public static let acks = "ack_events", gaps = "gap_events"
        public static let recordsSent = "records_sent", batchesSpooled = "batches_spooled", recordsDropped = "records_dropped"
    }
}
