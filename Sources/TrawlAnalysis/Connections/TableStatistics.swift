/// One of the tables that traffic can grow: how full it is, its bound, and what the bound
/// and expiry took away. Every such table has one (docs/limits.md lists them).
public struct TableStatistics: Sendable, Equatable {
    public var name: String
    public var entries: Int
    /// The most entries it held at once.
    public var peak: Int
    public var bound: Int
    /// Entries dropped because the bound was reached.
    public var evicted: UInt64
    /// Entries dropped because their time was up (not counted for tables whose entries
    /// leave otherwise).
    public var expired: UInt64?

    public init(name: String, entries: Int, peak: Int, bound: Int, evicted: UInt64, expired: UInt64? = nil) {
        (self.name, self.entries, self.peak, self.bound, self.evicted, self.expired) = (name, entries, peak, bound, evicted, expired)
    }
}

/// Connections by transport, as stats.log splits them.
public struct TransportCounts: Equatable, Sendable {
    public var tcp: UInt64 = 0, udp: UInt64 = 0, icmp: UInt64 = 0, other: UInt64 = 0

    public init() {}

    @inline(__always) mutating func count(proto: UInt8) {
        switch proto {
        case 6: tcp &+= 1
        case 17: udp &+= 1
        case 1, 58: icmp &+= 1
        default: other &+= 1
        }
    }
}

/// Connections made and ended, by transport: stats.log's new and active connection counts.
public struct ConnectionCounts: Equatable, Sendable {
    public var made = TransportCounts()
    public var ended = TransportCounts()

    public init() {}

    public var activeTCP: UInt64 { made.tcp &- ended.tcp }
    public var activeUDP: UInt64 { made.udp &- ended.udp }
    public var activeICMP: UInt64 { made.icmp &- ended.icmp }
}

/// What the tracker counts for the cluster's statistics, and the local hosts of newly
/// established TCP connections (known_hosts) when asked to watch for them.
public struct TrackerStatistics: Sendable {
    public var connections = ConnectionCounts()
    public var gaps = GapStatistics()
    /// Set by a cluster worker: collect `establishedHosts`.
    public var watchesEstablishedHosts = false
    /// Local hosts seen completing a TCP handshake since the last `takeEstablishedHosts`, at
    /// most `maximumEstablishedHosts`; beyond that they are counted in `establishedHostsMissed`.
    public var establishedHosts: [IPAddress] = []
    public var establishedHostsMissed: UInt64 = 0
    public static let maximumEstablishedHosts = 65_536

    public init() {}
}

/// Zeek's GapStats as capture_loss.log uses them: acknowledgment events, and those that
/// acknowledged data the capture never saw.
public struct GapStatistics: Equatable, Sendable {
    public var acks: UInt64 = 0
    public var gaps: UInt64 = 0
    public init(acks: UInt64 = 0, gaps: UInt64 = 0) {
        self.acks = acks
        self.gaps = gaps
    }
}

extension ConnectionTracker {
    /// Zeek's policy/protocols/conn/known-hosts: the local hosts of a connection that
    /// completed its handshake are candidates for known_hosts.log.
    func noteEstablishedHosts() {
        for address in [decoded.pointee.source, decoded.pointee.destination] where isLocal(address) {
            if statistics.establishedHosts.count < TrackerStatistics.maximumEstablishedHosts {
                statistics.establishedHosts.append(address)
            } else {
                statistics.establishedHostsMissed &+= 1
            }
        }
    }

    /// Turns on the collection of established hosts (for a cluster worker).
    public func watchEstablishedHosts() { statistics.watchesEstablishedHosts = true }

    /// The hosts collected since the last call.
    public func takeEstablishedHosts() -> [IPAddress] {
        defer { statistics.establishedHosts.removeAll(keepingCapacity: true) }
        return statistics.establishedHosts
    }
}
