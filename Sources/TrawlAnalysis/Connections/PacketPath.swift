import TrawlCore

/// Carries each packet from its first byte to the connection it belongs to: link layers
/// and shims, IP (putting fragments together), the transport, and, for a tunnel, the packet
/// inside, which takes the same path with the tunnel as its parent. Which analyzer handles
/// what comes from the registry; the connections are the tracker's.
final class PacketPath {
    /// What a packet inside a tunnel carries with it.
    struct Encapsulation {
        /// The uid of the innermost tunnel (connection or IP tunnel), if any.
        var parent: UInt64?
        /// How many tunnels deep this packet is.
        var depth = 0
        /// The kind of the innermost tunnel.
        var kind: PacketAnalyzer?
        /// All the tunnels around the packet, outermost first, folded into one number: when
        /// it differs from a connection's last packet's, its encapsulation changed.
        var stack: UInt64 = 0

        /// One tunnel deeper, inside the tunnel `uid`.
        func inside(_ uid: UInt64, kind: PacketAnalyzer) -> Encapsulation {
            Encapsulation(parent: uid, depth: depth + 1, kind: kind, stack: (stack ^ uid) &* 0x9e37_79b9_7f4a_7c15 | 1)
        }
    }

    let registry: AnalyzerRegistry
    /// The registry's UDP analyzers found by looking at the payload, in the order tried.
    private let udpDetection: [PacketAnalyzer]
    private let tables: DispatchTables
    /// The tracker's weird counts, at a stable address.
    private let weirds: UnsafeMutablePointer<Weirds>
    private let links: LinkLayer
    let fragments: FragmentReassembler
    let ipTunnels: IPTunnels
    private let verifyChecksums: Bool
    /// Ethernet frames of IPv4 or IPv6 go to IP as the registry says (unless an embedder
    /// changed it): the usual frame skips the general walk.
    private let ethernetCarriesIP: Bool
    /// Zeek's Tunnel::max_depth.
    static let maximumTunnelDepth = 4
    /// The decoded packet, at a stable address shared with the tracker.
    let decoded: UnsafeMutablePointer<DecodedPacket>
    /// The fragment being handed to reassembly.
    @exclusivity(unchecked) private var fragment = FragmentInfo()
    /// The tracker that owns this path, set once right after it is made; held without
    /// reference counting (and used without, through `_withUnsafeGuaranteedRef`).
    private var owner: Unmanaged<ConnectionTracker>!
    func attach(to tracker: ConnectionTracker) { owner = .passUnretained(tracker) }
    @inline(__always) @discardableResult
    private func tracker<T>(_ body: (ConnectionTracker) -> T) -> T { owner._withUnsafeGuaranteedRef(body) }
    /// Packets (or packets inside tunnels) that made no connection and nothing wrong:
    /// ARP, ESP, IGMP, Teredo bubbles, 802.11 management frames.
    @exclusivity(unchecked) private(set) var ignored: UInt64 = 0
    /// Analyzers the current packet went through, tunnels included.
    @exclusivity(unchecked) private var analyzers = 0
    @exclusivity(unchecked) private var now: UInt64 = 0
    /// The part of the traffic this process analyses (Cluster::shard), and the packets
    /// left to the other parts.
    private let shard: Shard
    @exclusivity(unchecked) private(set) var otherShards: UInt64 = 0

    init(configuration: AnalysisConfiguration, decoded: UnsafeMutablePointer<DecodedPacket>, weirds: UnsafeMutablePointer<Weirds>) {
        self.decoded = decoded
        self.weirds = weirds
        registry = configuration.registry
        udpDetection = configuration.registry.udpDetection
        tables = DispatchTables(configuration.registry)
        links = LinkLayer(registry: configuration.registry, tables: tables)
        fragments = FragmentReassembler(limits: configuration.fragmentLimits)
        ipTunnels = IPTunnels(limits: configuration.ipTunnelLimits)
        verifyChecksums = configuration.verifyChecksums
        shard = configuration.shard
        ethernetCarriesIP = tables.root(1) == .ethernet && tables.next(.ethernet, 0x0800) == .ip
            && tables.next(.ethernet, 0x86dd) == .ip
    }

    deinit { tables.deallocate() }

    /// Analyses one captured packet of link type `linkType`, at the tracker's time `now`.
    func process(_ packet: Packet, linkType: UInt32, at now: UInt64) {
        self.now = now
        analyzers = 0
        // (Outside a tunnel, as every tunnel restores it; and a connection weird comes only
        // after the tracker has set this packet's connection.)
        weirds.pointee.packetHasIP = false
        let bytes = packet.bytes
        var context = IPContext()
        context.verifyChecksums = verifyChecksums
        context.headerVerified = packet.flags.rawValue & 0x1 != 0
        context.capturedLength = bytes.count
        context.wireLength = Int(packet.wireLength)
        let transportVerified = packet.flags.rawValue & 0x3 != 0
        // The usual frame: Ethernet II with IPv4 or IPv6, what the walk would find in two steps.
        if linkType == 1 && ethernetCarriesIP && bytes.count > 16 {
            let type = bytes.be16(12)
            if type == 0x0800 || type == 0x86dd {
                analyzers = 2 // Ethernet, IP
                ip(bytes, ByteView(start: 14, end: bytes.count), context: context, transportVerified: transportVerified,
                   encapsulation: Encapsulation())
                return
            }
        }
        let outcome = links.walk(bytes, linkType: linkType, view: ByteView(start: 0, end: bytes.count),
                                 analyzers: &analyzers, weirds: &weirds.pointee)
        // IP straight after the link layers, the usual case, without the general dispatch.
        if case let .ip(view) = outcome {
            ip(bytes, view, context: context, transportVerified: transportVerified, encapsulation: Encapsulation())
        } else {
            linkOutcome(outcome, bytes, context: context, transportVerified: transportVerified, encapsulation: Encapsulation())
        }
    }

    /// Once a second of traffic: lets expired fragments and tunnels go.
    func advance(to time: UInt64) {
        fragments.advance(to: time)
        ipTunnels.advance(to: time)
    }

    private func linkOutcome(_ outcome: LinkLayer.Outcome, _ b: UnsafeRawBufferPointer, context: IPContext,
                             transportVerified: Bool, encapsulation: Encapsulation) {
        switch outcome {
        case let .ip(view):
            ip(b, view, context: context, transportVerified: transportVerified, encapsulation: encapsulation)
        case let .subframes(view):
            if let problem = IEEE80211.forEachSubframe(b, view, { subframe in
                var inner = subframe
                guard case let .dispatch(type) = IEEE80211.innerPacket(b, &inner),
                      let next = tables.next(.ieee80211, type) else { return false }
                linkOutcome(links.walk(b, from: next, view: inner, analyzers: &analyzers, weirds: &weirds.pointee), b,
                            context: context, transportVerified: transportVerified, encapsulation: encapsulation)
                return true
            }) {
                weirds.pointee.note(problem)
            }
        case .ignored:
            ignored += 1
        case .none:
            break
        }
    }

    // MARK: IP and fragments

    @inline(__always)
    private func ip(_ b: UnsafeRawBufferPointer, _ view: ByteView, context: IPContext, transportVerified: Bool,
                    encapsulation: Encapsulation) {
        let outcome = IPLayer.analyze(b, view: view, context: context, into: &decoded.pointee, fragment: &fragment, weirds: &weirds.pointee)
        if _slowPath(shard.count > 1) && encapsulation.depth == 0 {
            if case .none = outcome {} else if !shard.contains(decoded.pointee.source, decoded.pointee.destination) {
                otherShards += 1
                return
            }
        }
        switch outcome {
        case .none:
            return
        case .ignored:
            ignored += 1
        case .transport:
            transport(b, context: context, transportVerified: transportVerified, encapsulation: encapsulation)
        case .fragment:
            let ipBytes = UnsafeRawBufferPointer(rebasing: b[decoded.pointee.ipStart..<view.end])
            guard let datagram = fragments.add(fragment, ip: ipBytes, at: now, weirds: &weirds.pointee) else { return }
            datagram.withUnsafeBytes { whole in
                var inner = context
                inner.reassembled = true
                inner.capturedLength = whole.count
                inner.wireLength = whole.count
                switch IPLayer.analyze(whole, view: ByteView(start: 0, end: whole.count), context: inner,
                                       into: &decoded.pointee, fragment: &fragment, weirds: &weirds.pointee) {
                case .transport: transport(whole, context: inner, transportVerified: transportVerified, encapsulation: encapsulation)
                case .ignored: ignored += 1
                case .none, .fragment: break
                }
            }
        }
    }

    /// Counts one more analyzer for this packet, handed the packet by `from`; false (with
    /// Zeek's weird, raised by `from`) past the limit.
    private func enter(from: PacketAnalyzer) -> Bool {
        guard analyzers < LinkLayer.maximumAnalyzers else {
            weirds.pointee.note(.maxPacketAnalyzerDepthExceeded, source: from)
            return false
        }
        analyzers += 1
        return true
    }

    // MARK: Transports

    @inline(__always)
    private func transport(_ b: UnsafeRawBufferPointer, context: IPContext, transportVerified: Bool, encapsulation: Encapsulation) {
        guard enter(from: .ip), let analyzer = tables.next(.ip, UInt64(decoded.pointee.proto)) else { return }
        let checksums = TransportChecksums(verify: context.verifyChecksums, transportVerified: transportVerified,
                                           wholePacket: context.wireLength <= context.capturedLength)
        switch analyzer {
        case .tcp:
            guard TCP.decode(b, &decoded.pointee, checksums: checksums, weirds: &weirds.pointee) else { return }
            tracker { $0.track(parent: encapsulation.parent, stack: encapsulation.stack) }
        case .udp:
            guard UDP.decode(b, &decoded.pointee, checksums: checksums, vxlanPorts: tables, weirds: &weirds.pointee) else { return }
            let slot = tracker { $0.track(parent: encapsulation.parent, stack: encapsulation.stack) }
            guard decoded.pointee.checksumValid, let slot else { return }
            udpTunnel(b, connection: slot, context: context, encapsulation: encapsulation)
        case .icmp:
            guard ICMP.decode(b, &decoded.pointee, verify: context.verifyChecksums, weirds: &weirds.pointee) else { return }
            tracker { $0.track(parent: encapsulation.parent, stack: encapsulation.stack) }
        case .unknownTransport:
            UnknownTransport.decode(&decoded.pointee)
            tracker { $0.track(parent: encapsulation.parent, stack: encapsulation.stack) }
        case .ipTunnel, .gre:
            let view = ByteView(start: decoded.pointee.transportStart,
                                end: decoded.pointee.transportStart + decoded.pointee.transportCaptured)
            ipTunnel(b, view, gre: analyzer == .gre, context: context, encapsulation: encapsulation)
        default:
            ignored += 1 // IGMP and the like: analysed by Zeek for logs of their own, no connection
        }
    }

    // MARK: Tunnels

    /// IP in IP, and GRE (over IP or UDP): the tunnel is the pair of outer addresses.
    private func ipTunnel(_ b: UnsafeRawBufferPointer, _ payload: ByteView, gre: Bool, context: IPContext,
                          encapsulation: Encapsulation) {
        var view = payload
        var first = PacketAnalyzer.ip
        var pptpVersion: UInt8?
        if gre {
            switch GRE.analyze(b, &view) {
            case let .weird(name, detail):
                weirds.pointee.note(name, detail: detail)
                return
            case let .payload(found):
                (first, pptpVersion) = (found.first, found.pptpVersion)
            }
            guard enter(from: .gre) else { return } // GRE hands over to the IP tunnel analyzer
        }
        guard encapsulation.depth < Self.maximumTunnelDepth else {
            weirds.pointee.note(.exceededTunnelMaxDepth, source: .ipTunnel)
            return
        }
        // Zeek checks the packet inside every IP tunnel but GRE version 0 (whose inner
        // packet may not be IP at all): IP in IP by the outer protocol, PPTP by its own.
        let innerIsV6: Bool? = gre ? pptpVersion.map { $0 == 6 } : decoded.pointee.proto == 41
        if let v6 = innerIsV6 {
            switch InnerIP.check(b, view, v6: v6) {
            case .ok: break
            case .badVersion: weirds.pointee.note(.invalidInnerIPVersion); return
            case .tooShort: weirds.pointee.note(.truncatedInnerIP); return
            case .tooLong: weirds.pointee.note(.innerIPPayloadLengthMismatch); return
            }
        }
        let uid = ipTunnels.uid(between: decoded.pointee.source, and: decoded.pointee.destination, at: now,
                                newUID: { self.tracker { $0.newUID() } })
        let inner = UnsafeRawBufferPointer(rebasing: b[view.start..<view.end])
        var context = context
        context.capturedLength = inner.count
        context.wireLength = inner.count
        context.insideTeredo = false
        context.headerVerified = false
        guard enter(from: .ipTunnel) else { return }
        // The packet inside is a packet of its own: no IP header read yet, in a tunnel.
        let outer = enterTunnel()
        defer { leaveTunnel(outer) }
        let outcome = links.walk(inner, from: first, view: ByteView(start: 0, end: inner.count), analyzers: &analyzers,
                                 weirds: &weirds.pointee)
        linkOutcome(outcome, inner, context: context, transportVerified: false,
                    encapsulation: encapsulation.inside(uid, kind: gre ? .gre : .ipTunnel))
    }

    /// The UDP tunnels: by the responder's port, else by Zeek's protocol detection.
    private func udpTunnel(_ b: UnsafeRawBufferPointer, connection slot: ConnectionTable.Slot, context: IPContext,
                           encapsulation: Encapsulation) {
        let payload = ByteView(start: decoded.pointee.payloadStart, end: max(decoded.pointee.payloadStart, decoded.pointee.payloadEnd))
        let respPort = tracker { $0.responderPort(slot) }
        var found = tables.lookup(.udp, UInt64(respPort))
        if found == nil && !udpDetection.isEmpty {
            for candidate in udpDetection where detects(candidate, b, payload) {
                found = candidate
                break
            }
        }
        guard let analyzer = found, enter(from: .udp) else { return }
        if analyzer == .gre {
            ipTunnel(b, payload, gre: true, context: context, encapsulation: encapsulation)
            return
        }
        if analyzer != .gtpv1 && tracker({ $0.tunnelViolated(slot) }) { return }
        guard encapsulation.depth < Self.maximumTunnelDepth else {
            if analyzer == .gtpv1 {
                weirds.pointee.note(.tunnelDepth)
            } else {
                tracker { $0.noteAnalyzerLimit(slot) }
                weirds.pointee.note(.exceededTunnelMaxDepth, source: analyzer)
            }
            return
        }
        var view = payload
        let step: AnalyzerStep
        switch analyzer {
        case .vxlan: step = VXLAN.analyze(b, &view)
        case .geneve: step = Geneve.analyze(b, &view)
        case .ayiya: step = AYIYA.analyze(b, &view)
        case .teredo: step = Teredo.analyze(b, &view, weirds: &weirds.pointee)
        case .gtpv1: step = GTPv1.analyze(b, &view, insideGTP: encapsulation.kind == .gtpv1)
        default: return
        }
        let next: PacketAnalyzer?
        switch step {
        case let .dispatch(key): next = tables.next(analyzer, key)
        case .forward: next = tables.fallback(analyzer)
        case .stop, .subframes: return
        case let .weird(name, detail):
            weirds.pointee.note(name, detail: detail)
            return
        case .violation:
            // Zeek logs the reason with the analyzer; the count is kept by analyzer here.
            if analyzer != .gtpv1 { tracker { $0.markTunnelViolated(slot) } }
            weirds.pointee.note(named: analyzer.zeekName + "_violation")
            return
        }
        guard let next, enter(from: analyzer) else { return }
        // The inner packet keeps the outer's wire length less what the outer headers took.
        let inner = UnsafeRawBufferPointer(rebasing: b[view.start..<view.end])
        var innerContext = context
        innerContext.capturedLength = inner.count
        innerContext.wireLength = context.wireLength - (context.capturedLength - inner.count)
        innerContext.insideTeredo = analyzer == .teredo
        innerContext.headerVerified = false
        let outer = enterTunnel()
        defer { leaveTunnel(outer) }
        let outcome = links.walk(inner, from: next, view: ByteView(start: 0, end: inner.count), analyzers: &analyzers,
                                 weirds: &weirds.pointee)
        linkOutcome(outcome, inner, context: innerContext, transportVerified: false,
                    encapsulation: encapsulation.inside(tracker { $0.uid(slot) }, kind: analyzer))
    }

    /// Weirds of a tunnel's inner packet are about that packet: no IP header read yet.
    private func enterTunnel() -> (hasIP: Bool, tunnelled: Bool, connection: UInt32) {
        let outer = (weirds.pointee.packetHasIP, weirds.pointee.insideTunnel, weirds.pointee.connectionSlot)
        weirds.pointee.packetHasIP = false
        weirds.pointee.insideTunnel = true
        weirds.pointee.connectionSlot = Weirds.noConnection
        return outer
    }

    private func leaveTunnel(_ outer: (hasIP: Bool, tunnelled: Bool, connection: UInt32)) {
        (weirds.pointee.packetHasIP, weirds.pointee.insideTunnel, weirds.pointee.connectionSlot) = outer
    }

    private func detects(_ analyzer: PacketAnalyzer, _ b: UnsafeRawBufferPointer, _ payload: ByteView) -> Bool {
        switch analyzer {
        case .teredo: return Teredo.detect(b, payload)
        case .ayiya: return AYIYA.detect(b, payload)
        default: return false
        }
    }
}
