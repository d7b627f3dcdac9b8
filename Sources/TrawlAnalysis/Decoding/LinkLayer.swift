/// Walks a packet's link-layer headers and shims, analyzer by analyzer as the registry
/// dispatches them, to the IP packet they carry.
struct LinkLayer {
    /// Zeek's PacketAnalyzer::max_depth (100), which counts its root analyzer: at most this
    /// many analyzers for one packet, tunnels included (a frame of nested PBB headers ends
    /// here, with the weird raised by the last analyzer let in, as Zeek raises it).
    static let maximumAnalyzers = 99

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
        var previous = analyzer // the analyzer that handed the packet on
        var view = start
        while true {
            guard analyzers < Self.maximumAnalyzers else {
                weirds.note(.maxPacketAnalyzerDepthExceeded, source: previous)
                return .none
            }
            analyzers += 1
            // The usual two first, as plain branches, before the jump table of the rest.
            if analyzer == .ip { return .ip(view) }
            let step: AnalyzerStep
            if analyzer == .ethernet {
                step = Ethernet.analyze(b, &view)
            } else {
                step = other(analyzer, b, &view)
            }
            switch step {
            case let .dispatch(key):
                guard let next = tables.next(analyzer, key) else {
                    weirds.note(.unknownProtocol)
                    return .none
                }
                previous = analyzer
                analyzer = next
            case .forward:
                guard let next = tables.fallback(analyzer) else {
                    weirds.note(.noSuitableAnalyzerFound, source: analyzer)
                    return .none
                }
                previous = analyzer
                analyzer = next
            case .stop:
                return .ignored
            case let .weird(weird, detail):
                weirds.note(weird, detail: detail)
                return .none
            case let .violation(reason):
                weirds.note(named: reason) // never below IP: tunnels are UDP's
                return .none
            case .subframes:
                return .subframes(view)
            }
        }
    }

    /// Every analyzer below IP but Ethernet (which `walk` calls directly, as the usual case).
    private func other(_ analyzer: PacketAnalyzer, _ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        switch analyzer {
        case .ethernet: return Ethernet.analyze(b, &view)
        case .vlan: return VLAN.analyze(b, &view)
        case .mpls: return MPLS.analyze(b, &view)
        case .pbb: return PBB.analyze(b, &view)
        case .vntag: return VNTag.analyze(b, &view)
        case .pppoe: return PPPoE.analyze(b, &view)
        case .llc: return LLC.analyze(b, &view)
        case .snap: return SNAP.analyze(b, &view)
        case .novell8023: return Novell8023.analyze(b, &view)
        case .fddi: return FDDI.analyze(b, &view)
        case .ieee80211: return IEEE80211.analyze(b, &view)
        case .radiotap: return Radiotap.analyze(b, &view)
        case .nflog: return NFLOG.analyze(b, &view)
        case .null: return Null.analyze(b, &view)
        case .loop: return Loop.analyze(b, &view)
        case .ppp: return PPP.analyze(b, &view)
        case .pppSerial: return PPPSerial.analyze(b, &view)
        case .linuxSLL: return LinuxSLL.analyze(b, &view)
        case .linuxSLL2: return LinuxSLL2.analyze(b, &view)
        case .skip: return Skip.analyze(b, &view, bytes: skipBytes)
        case .arp, .igmp:
            return .stop // analysed by Zeek for their own logs; never a connection
        case .ip, .ipTunnel, .gre, .vxlan, .geneve, .gtpv1, .teredo, .ayiya, .tcp, .udp, .icmp, .unknownTransport:
            return .stop // never registered below IP
        }
    }
}
