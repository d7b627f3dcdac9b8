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
    public var zeekName: String {
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
/// small open-addressing table of keys and analyzers (one or two loads per lookup, no
/// reference counting, no generic hashing) and its default analyzer. A plain value of
/// pointers, copied freely; its owner calls `deallocate()` once.
struct DispatchTables {
    private static let empty: UInt8 = 0xff
    /// Keys below this are looked up directly (IP protocols, link types, address families);
    /// larger ones (EtherTypes, ports) by open addressing.
    private static let directKeys = 1024
    /// Per table (each analyzer, and one more for the root, by link type): where its slots
    /// start, their mask (-1: a direct table), and its default analyzer.
    private let offsets: UnsafeMutablePointer<Int>
    private let masks: UnsafeMutablePointer<Int>
    private let fallbacks: UnsafeMutablePointer<UInt8>
    private let keys: UnsafeMutablePointer<UInt64>
    private let values: UnsafeMutablePointer<UInt8>
    /// The table of the root analyzer (dispatching by link type).
    static let root = PacketAnalyzer.allCases.count

    init(_ registry: AnalyzerRegistry) {
        let dispatches = PacketAnalyzer.allCases.map { registry.dispatch($0) } + [registry.root]
        offsets = .allocate(capacity: dispatches.count)
        masks = .allocate(capacity: dispatches.count)
        fallbacks = .allocate(capacity: dispatches.count)
        var total = 0
        for (index, dispatch) in dispatches.enumerated() {
            offsets[index] = total
            fallbacks[index] = dispatch.fallback?.rawValue ?? Self.empty
            if dispatch.entries.allSatisfy({ $0.0 < UInt64(Self.directKeys) }) && dispatch.entries.count > 2 {
                masks[index] = -1
                total += Self.directKeys
            } else {
                var capacity = 4
                while capacity < dispatch.entries.count * 2 { capacity *= 2 }
                masks[index] = capacity - 1
                total += capacity
            }
        }
        keys = .allocate(capacity: total)
        keys.initialize(repeating: 0, count: total)
        values = .allocate(capacity: total)
        values.initialize(repeating: Self.empty, count: total)
        for (index, dispatch) in dispatches.enumerated() {
            let base = offsets[index], mask = masks[index]
            for (key, analyzer) in dispatch.entries {
                var at = mask < 0 ? Int(key) : Self.home(key, mask)
                while mask >= 0 && values[base + at] != Self.empty && keys[base + at] != key { at = (at + 1) & mask }
                keys[base + at] = key
                values[base + at] = analyzer.rawValue
            }
        }
    }

    func deallocate() {
        for pointer in [UnsafeMutableRawPointer(offsets), UnsafeMutableRawPointer(masks), UnsafeMutableRawPointer(fallbacks),
                        UnsafeMutableRawPointer(keys), UnsafeMutableRawPointer(values)] {
            pointer.deallocate()
        }
    }

    @inline(__always) private static func home(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9e37_79b9_7f4a_7c15) >> 40) & mask
    }

    /// The analyzer `table` registered for `key`, if any.
    @inline(__always) func lookup(_ table: Int, _ key: UInt64) -> PacketAnalyzer? {
        let base = offsets[table], mask = masks[table]
        if mask < 0 {
            guard key < UInt64(Self.directKeys) else { return nil }
            let value = values[base + Int(key)]
            return value == Self.empty ? nil : unsafeBitCast(value, to: PacketAnalyzer.self)
        }
        var at = Self.home(key, mask)
        while true {
            let value = values[base + at]
            if value == Self.empty { return nil }
            if keys[base + at] == key { return unsafeBitCast(value, to: PacketAnalyzer.self) }
            at = (at + 1) & mask
        }
    }

    @inline(__always) func lookup(_ analyzer: PacketAnalyzer, _ key: UInt64) -> PacketAnalyzer? { lookup(Int(analyzer.rawValue), key) }

    /// The analyzer for `key`, or `analyzer`'s default.
    @inline(__always) func next(_ analyzer: PacketAnalyzer, _ key: UInt64) -> PacketAnalyzer? {
        lookup(Int(analyzer.rawValue), key) ?? fallback(analyzer)
    }

    @inline(__always) func fallback(_ analyzer: PacketAnalyzer) -> PacketAnalyzer? { fallback(table: Int(analyzer.rawValue)) }

    @inline(__always) private func fallback(table: Int) -> PacketAnalyzer? {
        let value = fallbacks[table]
        return value == Self.empty ? nil : unsafeBitCast(value, to: PacketAnalyzer.self)
    }

    /// The first analyzer for a packet of link type `linkType` (raw IP when unknown).
    @inline(__always) func root(_ linkType: UInt32) -> PacketAnalyzer? {
        lookup(Self.root, UInt64(linkType)) ?? fallback(table: Self.root)
    }
}
