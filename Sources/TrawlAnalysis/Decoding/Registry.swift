/// Which analyzer handles which protocol value, as Zeek's scripts/base/packet-protocols
/// register them (its EtherTypes, link types, IP protocols and tunnel ports). Adding a tunnel
/// port, an EtherType or a link type is one line here.
public struct AnalyzerRegistry: Sendable {
    /// By link type (LINKTYPE_ values); anything else is read as raw IP, as in Zeek.
    public var root: Dispatch
    /// Each analyzer's dispatch of its payload, by `PacketAnalyzer.rawValue`.
    private var tables: [Dispatch]
    /// UDP analyzers tried on any port when the responder's port names none (Zeek's
    /// protocol detection), in this order.
    public var udpDetection: [PacketAnalyzer] = [.teredo, .ayiya]
    /// Bytes the Skip analyzer skips (Zeek's PacketAnalyzer::SKIP::skip_bytes).
    public var skipBytes = 0

    /// Zeek's forwarding keys for 802.3 frames, whose length field is no EtherType.
    public static let snapKey: UInt64 = 1, novellKey: UInt64 = 2, llcKey: UInt64 = 3

    public static let standard = AnalyzerRegistry()

    public init() {
        root = Dispatch([
            1: .ethernet, 10: .fddi, 105: .ieee80211, 127: .radiotap, 113: .linuxSLL, 276: .linuxSLL2,
            239: .nflog, 0: .null, 9: .ppp, 50: .pppSerial,
            108: .loop, // OpenBSD loopback: beyond Zeek, which reads it as raw IP and fails
        ], default: .ip)
        tables = Array(repeating: Dispatch([:]), count: PacketAnalyzer.allCases.count)
        let ipOrARP: KeyValuePairs<UInt64, PacketAnalyzer> = [0x0800: .ip, 0x86dd: .ip, 0x0806: .arp, 0x8035: .arp]
        let ipOrARPEntries = ipOrARP.map { ($0.key, $0.value) }
        let ethernetLike: [(UInt64, PacketAnalyzer)] = ipOrARPEntries + [
            (0x8847, .mpls), (0x88e7, .pbb), (0x8100, .vlan), (0x8864, .pppoe), (0x8926, .vntag),
            (Self.snapKey, .snap), (Self.novellKey, .novell8023), (Self.llcKey, .llc),
        ]
        let pppProtocols: KeyValuePairs<UInt64, PacketAnalyzer> = [0x0281: .mpls, 0x0021: .ip, 0x0057: .ip]
        set(.ethernet, Dispatch(ethernetLike + [(0x88a8, .vlan), (0x9100, .vlan)]))
        set(.vlan, Dispatch(ethernetLike))
        set(.vntag, Dispatch([0x8100: .vlan, 0x88a8: .vlan, 0x9100: .vlan]))
        set(.mpls, Dispatch([:], default: .ip))
        set(.pbb, Dispatch([:], default: .ethernet))
        set(.pppoe, Dispatch([0x0021: .ip, 0x0057: .ip]))
        set(.snap, Dispatch(ipOrARPEntries)) // the OUI is part of the key: 0 for these
        set(.fddi, Dispatch([:], default: .ip))
        set(.ieee80211, Dispatch(ipOrARPEntries))
        set(.radiotap, Dispatch([105: .ieee80211]))
        set(.nflog, Dispatch([2: .ip, 10: .ip]))
        // Address families in the capturing host's byte order: Zeek knows little-endian
        // hosts only; a big-endian host's (the second four) are decoded too.
        set(.null, Dispatch([2: .ip, 24: .ip, 28: .ip, 30: .ip,
                             0x0200_0000: .ip, 0x1800_0000: .ip, 0x1c00_0000: .ip, 0x1e00_0000: .ip]))
        set(.loop, Dispatch([2: .ip, 24: .ip, 28: .ip, 30: .ip]))
        set(.ppp, Dispatch(pppProtocols))
        set(.pppSerial, Dispatch(pppProtocols))
        set(.linuxSLL, Dispatch(ipOrARPEntries))
        set(.linuxSLL2, Dispatch(ipOrARPEntries))
        set(.skip, Dispatch([:], default: .ip))
        set(.ip, Dispatch([4: .ipTunnel, 41: .ipTunnel, 47: .gre, 6: .tcp, 17: .udp, 1: .icmp, 58: .icmp,
                           2: .igmp], default: .unknownTransport))
        set(.gre, Dispatch([:], default: .ipTunnel))
        // UDP tunnels, by the responder's port (these ports are likely server ports too).
        set(.udp, Dispatch([4789: .vxlan, 6081: .geneve, 2152: .gtpv1, 2123: .gtpv1, 3544: .teredo,
                            5072: .ayiya, 4754: .gre]))
        set(.vxlan, Dispatch([:], default: .ethernet))
        set(.geneve, Dispatch([0x6558: .ethernet, 0x0800: .ip, 0x86dd: .ip, 0x0806: .arp]))
        set(.ayiya, Dispatch([4: .ip, 41: .ip]))
        set(.gtpv1, Dispatch([:], default: .ip))
        set(.teredo, Dispatch([:], default: .ip))
    }

    @inline(__always) public func dispatch(_ analyzer: PacketAnalyzer) -> Dispatch { tables[Int(analyzer.rawValue)] }

    public mutating func set(_ analyzer: PacketAnalyzer, _ dispatch: Dispatch) { tables[Int(analyzer.rawValue)] = dispatch }

    /// The UDP ports of the tunnels, which Zeek counts as likely server ports even in bare mode.
    public var tunnelPorts: Set<UInt16> { Set(dispatch(.udp).entries.map { UInt16(truncatingIfNeeded: $0.0) }) }
}
