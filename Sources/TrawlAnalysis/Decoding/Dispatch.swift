#if canImport(Glibc)
import Glibc
#endif

/// The packet analyzers, one per protocol Zeek decodes below the connection level. Each is
/// a small enum of its own (in Link/, IP/, Tunnels/, Transport/); the registry says which
/// one handles which protocol value.
public enum PacketAnalyzer: UInt8, CaseIterable, Sendable {
    // Link layers and the shims between them and IP.
    case ethernet, vlan, mpls, pbb, vntag, pppoe, llc, snap, novell8023, fddi
    case ieee80211, radiotap, nflog, null, loop, ppp, pppSerial, linuxSLL, linuxSLL2, skip
    /// Protocols that end the analysis of a packet without a connection.
    case arp, igmp
    case ip
    // Tunnels: the packet inside is analysed in turn.
    case ipTunnel, gre, vxlan, geneve, gtpv1, teredo, ayiya
    // Transports: connections.
    case tcp, udp, icmp, unknownTransport

    /// The name Zeek gives it (PacketAnalyzer::ANALYZER_...), for messages.
    public var zeekName: String { staticName.description }

    /// The same, as a static string (handed on without reference counting, as a weird's source).
    var staticName: StaticString {
        switch self {
        case .ethernet: "ETHERNET"
        case .vlan: "VLAN"
        case .mpls: "MPLS"
        case .pbb: "PBB"
        case .vntag: "VNTAG"
        case .pppoe: "PPPOE"
        case .llc: "LLC"
        case .snap: "SNAP"
        case .novell8023: "NOVELL_802_3"
        case .fddi: "FDDI"
        case .ieee80211: "IEEE802_11"
        case .radiotap: "IEEE802_11_RADIO"
        case .nflog: "NFLOG"
        case .null: "NULL"
        case .loop: "LOOP"
        case .ppp: "PPP"
        case .pppSerial: "PPPSERIAL"
        case .linuxSLL: "LINUXSLL"
        case .linuxSLL2: "LINUXSLL2"
        case .skip: "SKIP"
        case .arp: "ARP"
        case .igmp: "IGMP"
        case .ip: "IP"
        case .ipTunnel: "IPTUNNEL"
        case .gre: "GRE"
        case .vxlan: "VXLAN"
        case .geneve: "GENEVE"
        case .gtpv1: "GTPV1"
        case .teredo: "TEREDO"
        case .ayiya: "AYIYA"
        case .tcp: "TCP"
        case .udp: "UDP"
        case .icmp: "ICMP"
        case .unknownTransport: "UNKNOWN_IP_TRANSPORT"
        }
    }
}

/// Which analyzer handles which protocol value, for one analyzer's payload, and the
/// analyzer used when no value matches (Zeek's dispatchers and default analyzers).
public struct Dispatch: Sendable {
    public let entries: [(UInt64, PacketAnalyzer)]
    public let fallback: PacketAnalyzer?

    public init(_ entries: [(UInt64, PacketAnalyzer)], default fallback: PacketAnalyzer? = nil) {
        self.entries = entries
        self.fallback = fallback
    }

    public init(_ entries: KeyValuePairs<UInt64, PacketAnalyzer>, default fallback: PacketAnalyzer? = nil) {
        self.init(entries.map { ($0.key, $0.value) }, default: fallback)
    }

    /// The analyzer registered for `key`, if any (not the default). A linear search: for
    /// set-up and tests; packets go through `DispatchTables`.
    public func lookup(_ key: UInt64) -> PacketAnalyzer? { entries.last { $0.0 == key }?.1 }

    /// A copy with more registrations (a later one for the same key wins).
    public func adding(_ more: [(UInt64, PacketAnalyzer)]) -> Dispatch {
        Dispatch(entries.filter { entry in !more.contains { $0.0 == entry.0 } } + more, default: fallback)
    }
}

/// Every analyzer's dispatch, compiled into raw memory for the packet path: per analyzer a
/// direct table of the keys below 65 536 (EtherTypes, IP protocols, ports, link types: one
/// load), zero-filled by calloc so that only the pages of keys in use are ever touched, and
/// a small open-addressing table for larger keys (SNAP's OUI and type, byte-swapped address
/// families); no reference counting, no generic hashing. A plain value of pointers, copied
/// freely; its owner calls `deallocate()` once.
struct DispatchTables {
    private static let directKeys = 1 << 16
    /// Per table (each analyzer, and one more for the root, by link type): its direct
    /// table (analyzer + 1; 0: none), its large keys, and its default analyzer (+ 1; 0: none).
    private let direct: UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>
    private let large: UnsafeMutablePointer<UnsafeMutablePointer<(key: UInt64, value: UInt8)>?>
    private let largeCounts: UnsafeMutablePointer<Int>
    private let fallbacks: UnsafeMutablePointer<UInt8>
    private let count: Int
    /// The table of the root analyzer (dispatching by link type).
    static let root = PacketAnalyzer.allCases.count

    init(_ registry: AnalyzerRegistry) {
        let dispatches = PacketAnalyzer.allCases.map { registry.dispatch($0) } + [registry.root]
        count = dispatches.count
        direct = .allocate(capacity: count)
        large = .allocate(capacity: count)
        largeCounts = .allocate(capacity: count)
        fallbacks = .allocate(capacity: count)
        for (index, dispatch) in dispatches.enumerated() {
            fallbacks[index] = dispatch.fallback.map { $0.rawValue + 1 } ?? 0
            let small = dispatch.entries.filter { $0.0 < UInt64(Self.directKeys) }
            let big = dispatch.entries.filter { $0.0 >= UInt64(Self.directKeys) }
            if small.isEmpty {
                direct[index] = nil
            } else {
                let table = calloc(Self.directKeys, 1)!.assumingMemoryBound(to: UInt8.self)
                for (key, analyzer) in small { table[Int(key)] = analyzer.rawValue + 1 }
                direct[index] = table
            }
            largeCounts[index] = big.count
            if big.isEmpty {
                large[index] = nil
            } else {
                let table = UnsafeMutablePointer<(key: UInt64, value: UInt8)>.allocate(capacity: big.count)
                for (at, (key, analyzer)) in big.enumerated() { table[at] = (key, analyzer.rawValue + 1) }
                large[index] = table
            }
        }
    }

    func deallocate() {
        for index in 0..<count {
            free(direct[index])
            large[index]?.deallocate()
        }
        direct.deallocate()
        large.deallocate()
        largeCounts.deallocate()
        fallbacks.deallocate()
    }

    @inline(__always) private static func analyzer(_ value: UInt8) -> PacketAnalyzer? {
        value == 0 ? nil : unsafeBitCast(value &- 1, to: PacketAnalyzer.self)
    }

    /// The analyzer `table` registered for `key`, if any.
    @inline(__always) func lookup(_ table: Int, _ key: UInt64) -> PacketAnalyzer? {
        if key < UInt64(Self.directKeys) {
            guard let entries = direct[table] else { return nil }
            return Self.analyzer(entries[Int(key)])
        }
        guard let entries = large[table] else { return nil }
        for at in 0..<largeCounts[table] where entries[at].key == key { return Self.analyzer(entries[at].value) }
        return nil
    }

    @inline(__always) func lookup(_ analyzer: PacketAnalyzer, _ key: UInt64) -> PacketAnalyzer? { lookup(Int(analyzer.rawValue), key) }

    /// The analyzer for `key`, or `analyzer`'s default.
    @inline(__always) func next(_ analyzer: PacketAnalyzer, _ key: UInt64) -> PacketAnalyzer? {
        lookup(Int(analyzer.rawValue), key) ?? fallback(analyzer)
    }

    @inline(__always) func fallback(_ analyzer: PacketAnalyzer) -> PacketAnalyzer? { Self.analyzer(fallbacks[Int(analyzer.rawValue)]) }

    /// The first analyzer for a packet of link type `linkType` (raw IP when unknown).
    @inline(__always) func root(_ linkType: UInt32) -> PacketAnalyzer? {
        lookup(Self.root, UInt64(linkType)) ?? Self.analyzer(fallbacks[Self.root])
    }
}
