/// Walks a packet's link-layer headers and shims, analyzer by analyzer as the registry
/// dispatches them, to the IP packet they carry.
struct LinkLayer {
    /// Zeek's PacketAnalyzer::max_depth: at most this many analyzers for one packet,
    /// tunnels included (a frame of nested PBB headers ends here).
    static let maximumAnalyzers = 100

    enum Outcome {
        /// An IP packet in `view`.
        case ip(ByteView)
        /// An 802.11 A-MSDU whose subframes are in `view`.
        case subframes(ByteView)
        /// Nothing for connection analysis, and something wrong: a weird says what.
        case none
        /// Nothing for connection analysis, and nothing wrong (ARP, 802.11 management frames).
        case ignored
    }

    let tables: DispatchTables
    /// Bytes the Skip analyzer skips.
    let skipBytes: Int

    init(registry: AnalyzerRegistry, tables: DispatchTables) {
        self.tables = tables
        skipBytes = registry.skipBytes
    }

    /// Starts at the root analyzer's choice for `linkType` (raw IP for unknown types).
    func walk(_ b: UnsafeRawBufferPointer, linkType: UInt32, view: ByteView, analyzers: inout Int, weirds: inout Weirds) -> Outcome {
        guard let first = tables.root(linkType) else { return .none }
        return walk(b, from: first, view: view, analyzers: &analyzers, weirds: &weirds)
    }

    /// Starts at `analyzer`; `analyzers` counts the analyzers this packet has gone through.
    func walk(_ b: UnsafeRawBufferPointer, from analyzer: PacketAnalyzer, view start: ByteView,
              analyzers: inout Int, weirds: inout Weirds) -> Outcome {
        var analyzer = analyzer
        var view = start
        while true {
            guard analyzers < Self.maximumAnalyzers else {
                weirds.note(.maxPacketAnalyzerDepthExceeded)
                return .none
            }
            analyzers += 1
            // The usual two first, as plain branches, before the jump table of the rest.
            if analyzer == .ip { return .ip(view) }
            let step: AnalyzerStep
            switch analyzer {
            case .ethernet: step = Ethernet.analyze(b, &view)
            case .vlan: step = VLAN.analyze(b, &view)
            case .mpls: step = MPLS.analyze(b, &view)
            case .pbb: step = PBB.analyze(b, &view)
            case .vntag: step = VNTag.analyze(b, &view)
            case .pppoe: step = PPPoE.analyze(b, &view)
            case .llc: step = LLC.analyze(b, &view)
            case .snap: step = SNAP.analyze(b, &view)
            case .novell8023: step = Novell8023.analyze(b, &view)
            case .fddi: step = FDDI.analyze(b, &view)
            case .ieee80211: step = IEEE80211.analyze(b, &view)
            case .radiotap: step = Radiotap.analyze(b, &view)
            case .nflog: step = NFLOG.analyze(b, &view)
            case .null: step = Null.analyze(b, &view)
            case .loop: step = Loop.analyze(b, &view)
            case .ppp: step = PPP.analyze(b, &view)
            case .pppSerial: step = PPPSerial.analyze(b, &view)
            case .linuxSLL: step = LinuxSLL.analyze(b, &view)
            case .linuxSLL2: step = LinuxSLL2.analyze(b, &view)
            case .skip: step = Skip.analyze(b, &view, bytes: skipBytes)
            case .arp, .igmp:
                return .ignored // analysed by Zeek for their own logs; never a connection
            case .ip, .ipTunnel, .gre, .vxlan, .geneve, .gtpv1, .teredo, .ayiya, .tcp, .udp, .icmp, .unknownTransport:
                return .none // never registered below IP
            }
            switch step {
            case let .dispatch(key):
                guard let next = tables.next(analyzer, key) else {
                    weirds.note(.unknownProtocol)
                    return .none
                }
                analyzer = next
            case .forward:
                guard let next = tables.fallback(analyzer) else {
                    weirds.note(.noSuitableAnalyzerFound)
                    return .none
                }
                analyzer = next
            case .stop:
                return .ignored
            case let .weird(weird):
                weirds.note(weird)
                return .none
            case let .violation(reason):
                weirds.note(named: reason) // never below IP: tunnels are UDP's
                return .none
            case .subframes:
                return .subframes(view)
            }
        }
    }
}
