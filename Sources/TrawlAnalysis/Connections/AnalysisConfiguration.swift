/// Settings of the connection analysis.
public struct AnalysisConfiguration: Sendable {
    /// False with -C: checksums are not verified.
    public var verifyChecksums = true
    /// -b: Zeek's bare mode, without the well-known-port guess of who is the server.
    public var bareMode = false
    /// Networks whose addresses count as local (local_orig, local_resp).
    public var localNetworks: [Subnet] = AnalysisConfiguration.privateAddressSpace
    public var tcpInactivityTimeout: UInt64 = 300_000_000_000
    /// Zeek's Conn::port_inactivity_timeouts: an established connection to one of these TCP
    /// ports (FTP, SSH, telnet, rlogin) may be quiet this long.
    public var interactiveInactivityTimeout: UInt64 = 3_600_000_000_000
    public var interactivePorts: Set<UInt16> = [21, 22, 23, 513]
    public var udpInactivityTimeout: UInt64 = 60_000_000_000
    public var icmpInactivityTimeout: UInt64 = 60_000_000_000
    public var unknownTransportInactivityTimeout: UInt64 = 60_000_000_000
    /// How long a closed or reset TCP connection lingers before it is logged.
    public var tcpCloseDelay: UInt64 = 5_000_000_000
    /// An unanswered connection attempt (SYN sent, nothing back) ends this long after its SYN.
    public var tcpAttemptDelay: UInt64 = 5_000_000_000
    /// Zeek's TCP expire timer: first this long after a connection is made, then every
    /// `tcpSessionTimer`, it ends a connection idle for `tcpConnectionLinger` that was
    /// half-closed and reset, or never got going.
    public var tcpSYNTimeout: UInt64 = 5_000_000_000
    public var tcpSessionTimer: UInt64 = 6_000_000_000
    public var tcpConnectionLinger: UInt64 = 5_000_000_000
    /// At most this many connections are tracked at once. Beyond it (a SYN flood, a scan) a
    /// tracked connection is evicted, preferably an unanswered attempt, logged, and counted
    /// as the weird `connection_evicted`, so memory stays bounded. The table holds at most
    /// 33 554 431 (2^25 - 1) whatever this says.
    public var maximumConnections = 2_000_000
    /// How weirds are sampled and logged (weird.log).
    public var weirds = WeirdSettings()
    /// History letters kept per connection; more are counted as `history_truncated`.
    public var maximumHistory = 256
    /// Separate ranges of data remembered per direction of a TCP connection (for content
    /// gaps); beyond it the two closest merge, counted as `too_many_holes`.
    public var maximumHoles = 256
    /// Which analyzer handles which protocol value, tunnel ports included.
    public var registry = AnalyzerRegistry.standard
    public var fragmentLimits = FragmentLimits()
    public var ipTunnelLimits = IPTunnelLimits()
    /// The short path for the usual TCP segment (off only to check it against the long way,
    /// as the tests and the analysis fuzzer do).
    public var headerPrediction = true
    /// Analyse only the flows of one part of the traffic, as one member of a fanout group
    /// would see them (`Cluster::shard=I/N`).
    public var shard = Shard.whole

    public init() {}

    /// Zeek's Site::private_address_space (scripts/base/utils/site.zeek), which it uses as
    /// the local networks when none are given: each IPv4 block also as its 6to4 prefix.
    public static let privateAddressSpace: [Subnet] = [
        "0.0.0.0/8", "2002::/24", "10.0.0.0/8", "2002:a00::/24", "100.64.0.0/10", "2002:6440::/26",
        "127.0.0.0/8", "2002:7f00::/24", "169.254.0.0/16", "2002:a9fe::/32", "172.16.0.0/12", "2002:ac10::/28",
        "192.0.0.0/24", "2002:c000::/40", "192.0.2.0/24", "2002:c000:200::/40", "192.168.0.0/16", "2002:c0a8::/32",
        "198.18.0.0/15", "2002:c612::/31", "198.51.100.0/24", "2002:c633:6400::/40", "203.0.113.0/24", "2002:cb00:7100::/40",
        "224.0.0.0/24", "2002:e000::/40", "239.0.0.0/8", "2002:ef00::/24", "240.0.0.0/4", "2002:f000::/20",
        "255.255.255.255/32", "2002:ffff:ffff::/48",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:2::/48", "2001:db8::/32", "fc00::/7",
        "fe80::/10", "fec0::/10",
    ].compactMap(Subnet.init)

    /// Zeek's likely_server_ports outside bare mode, by transport: the server ports its
    /// protocol analyzers register (scripts/base/protocols), built without Spicy (so not
    /// LDAP, QUIC, PostgreSQL, Redis or syslog over TCP). The tunnel ports are added from
    /// the registry, in bare mode too.
    public static let likelyTCPServerPorts: Set<UInt16> = [
        6666, 6667, 6668, 6669, 21, 2811, 22, 3389, 1434, 3306, 25, 587, 502, 80, 81, 631, 1080, 3128,
        8000, 8080, 8888, 143, 135, 88, 139, 445, 5222, 5269, 53, 79, 20000, 1883, 443, 465, 563, 585, 614,
        636, 989, 990, 992, 993, 995, 5223,
    ]
    public static let likelyUDPServerPorts: Set<UInt16> = [
        67, 4011, 3389, 514, 88, 123, 5060, 53, 137, 5353, 5355, 20000, 161, 162, 443, 1812,
    ]

    /// The likely server ports this configuration uses for `proto` (6 or 17).
    func likelyServerPorts(proto: UInt8) -> Set<UInt16> {
        let tunnels = proto == 17 ? registry.tunnelPorts : []
        if bareMode { return tunnels }
        return (proto == 6 ? Self.likelyTCPServerPorts : Self.likelyUDPServerPorts).union(tunnels)
    }
}

/// Part `index` of `count` of the traffic, split as a symmetric flow-hashing frontend
/// splits it: by the outermost IP header's address pair (both directions alike), so that
/// every packet of a flow, its fragments and whatever tunnels carry inside it land in the
/// same part. Packets without an IP header (ARP, say) are analysed by every part.
public struct Shard: Sendable, Equatable {
    public let index: UInt32
    public let count: UInt32

    public static let whole = Shard(index: 0, count: 1)

    public init(index: UInt32, count: UInt32) {
        precondition(count >= 1 && index < count)
        self.index = index
        self.count = count
    }

    /// "I/N" with 0 <= I < N <= 1024.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = UInt32(parts[0]), let count = UInt32(parts[1]),
              count >= 1, count <= 1024, index < count else { return nil }
        self.init(index: index, count: count)
    }

    /// Whether the flows between `a` and `b` are this part's.
    @inline(__always)
    public func contains(_ a: IPAddress, _ b: IPAddress) -> Bool {
        // XOR makes the pair's hash the same both ways; the multiply-xorshift spreads it.
        var h = (a.high ^ b.high) &* 0x9e37_79b9_7f4a_7c15 ^ (a.low ^ b.low)
        h = (h ^ (h >> 31)) &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 29
        return UInt32(truncatingIfNeeded: h % UInt64(count)) == index
    }
}
