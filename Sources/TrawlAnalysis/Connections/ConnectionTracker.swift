#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Settings of the connection analysis.
public struct AnalysisConfiguration: Sendable {
    /// False with -C: checksums are not verified.
    public var verifyChecksums = true
    /// -b: Zeek's bare mode, without the well-known-port guess of who is the server.
    public var bareMode = false
    /// Networks whose addresses count as local (local_orig, local_resp).
    public var localNetworks: [Subnet] = AnalysisConfiguration.privateAddressSpace
    public var tcpInactivityTimeout: UInt64 = 300_000_000_000
    public var udpInactivityTimeout: UInt64 = 60_000_000_000
    public var icmpInactivityTimeout: UInt64 = 60_000_000_000
    /// How long a closed or reset TCP connection lingers before it is logged.
    public var tcpCloseDelay: UInt64 = 5_000_000_000
    /// An unanswered connection attempt (SYN sent, nothing back) ends this long after its start.
    public var tcpAttemptDelay: UInt64 = 5_000_000_000
    /// At most this many connections are tracked at once. Beyond it (a SYN flood, a scan) a
    /// tracked connection is evicted, preferably an unanswered attempt, logged, and counted
    /// as the weird `connection_evicted`, so memory stays bounded. The table holds at most
    /// 33 554 431 (2^25 - 1) whatever this says.
    public var maximumConnections = 2_000_000

    public init() {}

    /// Zeek's Site::private_address_space, which it uses as the local networks by default.
    public static let privateAddressSpace: [Subnet] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/24", "240.0.0.0/4", "255.255.255.255/32",
        "::/128", "::1/128", "100::/64", "2001:2::/48", "2001:db8::/32", "3fff::/20", "fc00::/7", "fe80::/10",
    ].compactMap(Subnet.init)

    /// UDP ports of the tunnels Zeek decapsulates, well known even in bare mode.
    public static let tunnelPorts: Set<UInt16> = [2152, 3544, 4789, 5072, 6081]

    /// Ports Zeek's protocol analyzers register, used outside bare mode to guess the server
    /// of a connection whose start was not seen.
    public static let likelyServerPorts: Set<UInt16> = [
        21, 22, 23, 25, 53, 67, 68, 69, 80, 88, 110, 111, 123, 137, 138, 139, 143, 161, 162, 179, 389, 443, 445,
        464, 465, 502, 512, 513, 514, 515, 587, 631, 636, 749, 853, 873, 989, 990, 992, 993, 995, 1080,
        1194, 1433, 1521, 1701, 1723, 1812, 1813, 2049, 2123, 2152, 3128, 3544, 5072, 3260, 3306, 3389, 3478, 4500, 4789,
        5060, 5061, 5222, 5223, 5269, 5353, 5355, 5432, 5671, 5672, 5900, 6081, 6379, 6443, 8000, 8008, 8080, 8081, 8443, 8888, 9200, 11211, 27017,
    ]
}

/// Where finished connections go. The tracker calls it on its log thread, one record at a
/// time, in order; `ConnectionTracker.finish()` returns after the last call.
public protocol ConnectionSink: AnyObject {
    func connectionEnded(_ record: ConnectionRecord)
}

/// A finished connection, as conn.log describes it.
public struct ConnectionRecord: Sendable {
    public var start: UInt64
    public var uid: String
    public var origAddress: IPAddress, origPort: UInt16
    public var respAddress: IPAddress, respPort: UInt16
    public var proto: UInt8
    public var duration: UInt64
    public var origBytes: UInt64, respBytes: UInt64
    public var state: String
    public var localOrig: Bool, localResp: Bool
    public var missedBytes: UInt64
    public var history: String
    public var origPackets: UInt64, origIPBytes: UInt64
    public var respPackets: UInt64, respIPBytes: UInt64
    /// Uids of the connections or tunnels this one was carried in.
    public var tunnelParents: [String] = []
}

/// Connection identity: transport protocol and both ends, in a fixed order.
struct ConnectionKey: Hashable {
    // Widest fields first: 40 bytes with padding, not 56.
    var lowAddress: IPAddress, highAddress: IPAddress
    var lowPort: UInt16, highPort: UInt16
    var proto: UInt8

    /// Three words into the hasher instead of seven fields (the ports and protocol fold
    /// into the low address word, which they never overlap in meaning).
    func hash(into hasher: inout Hasher) {
        hasher.combine(lowAddress.high ^ (highAddress.high &* 0x9e37_79b9_7f4a_7c15))
        hasher.combine(lowAddress.low ^ (UInt64(lowPort) << 48 | UInt64(highPort) << 32 | UInt64(proto) << 24))
        hasher.combine(highAddress.low)
    }

    init(proto: UInt8, _ a: IPAddress, _ pa: UInt16, _ b: IPAddress, _ pb: UInt16) {
        self.proto = proto
        if (a, pa) < (b, pb) {
            (lowAddress, lowPort, highAddress, highPort) = (a, pa, b, pb)
        } else {
            (lowAddress, lowPort, highAddress, highPort) = (b, pb, a, pa)
        }
    }
}

/// History letters, as bits per endpoint.
enum HistoryLetter: UInt16 {
    case syn = 1, synAck = 2, ack = 4, data = 8, fin = 16, rst = 32, corrupt = 64, retransmit = 128
    case zeroWindow = 256, gap = 512, inconsistent = 1024, multiFlag = 2048
}

/// Tracks connections from decoded packets, with Zeek's semantics for roles, TCP endpoint
/// states, history and sizes, and hands each finished connection to a sink.
public final class ConnectionTracker {
    public let configuration: AnalysisConfiguration
    /// Finished connections become records and reach the sink on this queue's thread.
    private let logStage: BackgroundQueue<LogItem>
    private let table: ConnectionTable
    // Touched for every packet: no dynamic exclusivity checks.
    @exclusivity(unchecked) private var decoded = DecodedPacket()
    private let decoder: PacketDecoder
    private let fragments = FragmentReassembler()
    /// Uids of GRE and IP-in-IP tunnels, which are no connections of their own.
    private var ipTunnels: [ConnectionKey: UInt64] = [:]
    @exclusivity(unchecked) private var uids: SplitMix64
    private var evictionRandom = SplitMix64(seed: 0x5eed) // its numbers pick eviction victims
    @exclusivity(unchecked) private var now: UInt64 = 0
    @exclusivity(unchecked) private var nextSweep: UInt64 = 0

    // The rare state of a few connections, by uid, so that every connection need not carry
    // room for it: history past 16 letters, holes in the data, the tunnel a connection
    // travels in, counts of bad checksums and zero windows.
    private var longHistories: [UInt64: [UInt8]] = [:]
    private var holes: [SideKey: [Range<Int64>]] = [:]
    private var tunnelParents: [UInt64: UInt64] = [:]
    private var rareCounts: [SideKey: RareCounts] = [:]

    /// Packets that did not reach connection tracking, by reason, as Zeek's weird names.
    public private(set) var weirds: [String: UInt64] = [:]
    @exclusivity(unchecked) public private(set) var packetsAnalyzed: UInt64 = 0
    public var activeConnections: Int { table.count }

    public init(configuration: AnalysisConfiguration = AnalysisConfiguration(), sink: ConnectionSink, seed: UInt64 = 0) {
        self.configuration = configuration
        let localNetworks = configuration.localNetworks
        logStage = BackgroundQueue { items in
            for item in items {
                switch item {
                case let .finished(connection): sink.connectionEnded(connection.record(localNetworks: localNetworks))
                case let .record(record): sink.connectionEnded(record)
                }
            }
        }
        decoder = PacketDecoder(verifyChecksums: configuration.verifyChecksums)
        let start = seed != 0 ? seed : SplitMix64.freshSeed()
        uids = SplitMix64(seed: start)
        table = ConnectionTable(seed: start ^ 0x7ab1e)
    }

    deinit { logStage.finish() }

    /// Analyses one packet of link type `linkType`.
    public func process(_ packet: Packet, linkType: UInt32) {
        now = packet.timestampNanoseconds
        if now >= nextSweep { sweep() }
        analyse(packet.bytes, linkType: linkType, flags: packet.flags.rawValue, parent: nil, depth: 0)
    }

    /// Decodes and tracks one packet, or the packet inside a tunnel, `depth` tunnels deep.
    private func analyse(_ bytes: UnsafeRawBufferPointer, linkType: UInt32, flags: UInt32, parent: UInt64?, depth: Int) {
        switch decoder.decode(bytes, linkType: linkType, flags: flags, into: &decoded) {
        case let .skipped(problem):
            weirds[(depth > 0 ? "tunnel_" : "") + problem.rawValue, default: 0] += 1
        case .packet:
            analyseIP(bytes, flags: flags, parent: parent, depth: depth)
        case let .fragment(ipStart):
            let ip = UnsafeRawBufferPointer(rebasing: bytes[ipStart...])
            guard let datagram = fragments.add(ip, decoded, at: now) else { return }
            datagram.withUnsafeBytes { whole in
                switch decoder.decodeIP(whole, flags: flags, into: &decoded) {
                case .packet:
                    decoded.ipStart = 0
                    analyseIP(whole, flags: flags, parent: parent, depth: depth)
                case let .skipped(problem):
                    weirds[problem.rawValue, default: 0] += 1
                case .fragment:
                    weirds["fragment_inside_fragment", default: 0] += 1
                }
            }
        }
    }

    /// Tracks a decoded IP packet; a tunnel's inner packet is analysed in turn, with the
    /// outer connection (or the IP tunnel) as its parent.
    private func analyseIP(_ bytes: UnsafeRawBufferPointer, flags: UInt32, parent: UInt64?, depth: Int) {
        if !decoded.transportIncomplete { packetsAnalyzed += 1 } // else counted as a weird
        guard depth < 4, decoded.checksumValid, !decoded.transportIncomplete,
              let tunnel = Tunnel.inner(proto: decoded.proto, ports: (decoded.sourcePort, decoded.destinationPort),
                                        payloadStart: decoded.ipStart + decoded.payloadStart,
                                        end: decoded.ipStart + decoded.ipCaptured, in: bytes) else {
            track(parent: parent)
            return
        }
        let outer: UInt64
        if tunnel.kind.outerIsConnection {
            outer = track(parent: parent)
        } else {
            let key = ConnectionKey(proto: decoded.proto, decoded.source, 0, decoded.destination, 0)
            if let uid = ipTunnels[key] { outer = uid } else {
                outer = newUID()
                ipTunnels[key] = outer
            }
        }
        analyse(tunnel.bytes, linkType: tunnel.linkType, flags: 0, parent: outer, depth: depth + 1)
    }

    /// Logs every connection still open, as at the end of input; returns once the sink has
    /// been given every record. The sink is called on the tracker's log thread.
    public func finish() {
        let order = table.slotsOldestFirst()
        // No packets are coming: this thread builds the records while the log thread writes.
        for slot in order { log(table.connection(slot).pointee, key: table.key(of: slot), buildRecord: true) }
        table.removeAll() // at once: no index work per connection
        logStage.finish()
    }

    /// 64 random bits, never 0 (the table's mark of a free slot).
    private func newUID() -> UInt64 {
        while true {
            let uid = uids.next()
            if uid != 0 { return uid }
        }
    }

    /// Makes room for one connection: looks at a few connections at random and evicts the
    /// first unanswered attempt among them, else the last one looked at. O(1), and under a
    /// flood the attempts are what it finds.
    private func evictOne() {
        var victim: ConnectionTable.Slot?
        var looked = 0
        while looked < 8 || victim == nil {
            let slot = ConnectionTable.Slot(evictionRandom.next() % UInt64(table.highWater))
            guard table.isLive(slot) else { continue }
            looked += 1
            victim = slot
            if table.connection(slot).pointee.resp.packets == 0 { break }
        }
        weirds["connection_evicted", default: 0] += 1
        logAndForget(victim!)
    }

    // MARK: Connections

    /// Adds the decoded packet to its connection; returns the connection's uid.
    @discardableResult
    private func track(parent: UInt64?) -> UInt64 {
        var origPort = decoded.sourcePort, respPort = decoded.destinationPort
        let proto = decoded.proto
        if proto == 1 || proto == 58 {
            respPort = ICMP.counterpart(type: decoded.icmpType, code: decoded.icmpCode, v6: proto == 58)
            origPort = UInt16(decoded.icmpType)
        }
        let key = ConnectionKey(proto: proto, decoded.source, origPort, decoded.destination, respPort)
        if let slot = table.find(key) {
            let c = table.connection(slot)
            if c.pointee.expires <= now || (proto == 6 && isReuse(c)) {
                logAndForget(slot)
            } else {
                if update(c, isOrig: isFromOriginator(c, key, origPort)) { table.reschedule(slot) }
                return c.pointee.uid
            }
        }
        let origIsLow = key.lowAddress == decoded.source && key.lowPort == origPort
        var connection = Connection(key: key, uid: newUID(), originatorIsLow: origIsLow, start: now)
        if shouldFlipNewConnection() { connection.flip() }
        if let parent {
            connection.flags.insert(.tunnelled)
            tunnelParents[connection.uid] = parent
        }
        if table.count >= min(configuration.maximumConnections, ConnectionTable.maximumSlots) { evictOne() }
        let slot = table.insert(connection, key: key)
        let c = table.connection(slot)
        _ = update(c, isOrig: isFromOriginator(c, key, origPort))
        table.schedule(slot)
        return connection.uid
    }

    /// Whether the decoded packet (whose source port, or ICMP type, is `sourcePort`) comes
    /// from the connection's originator.
    @inline(__always)
    private func isFromOriginator(_ c: UnsafeMutablePointer<Connection>, _ key: ConnectionKey, _ sourcePort: UInt16) -> Bool {
        (c.pointee.origIsLow ? key.lowAddress : key.highAddress) == decoded.source && c.pointee.origPort == sourcePort
    }

    /// Outside bare mode, a connection whose start was missed is turned around when its
    /// first packet comes from a well-known server port to one that is not.
    private func shouldFlipNewConnection() -> Bool {
        switch decoded.proto {
        case 6:
            let syn = decoded.tcpFlags & TCPFlag.syn != 0, ack = decoded.tcpFlags & TCPFlag.ack != 0
            guard !syn || ack else { return false }
        case 17: break
        default: return false
        }
        // Bare mode still knows the tunnel ports: Zeek's tunnel decapsulation is core.
        let ports = configuration.bareMode ? AnalysisConfiguration.tunnelPorts : AnalysisConfiguration.likelyServerPorts
        return ports.contains(decoded.sourcePort) && !ports.contains(decoded.destinationPort)
    }

    /// A new SYN on a connection whose endpoints have closed starts a new connection.
    private func isReuse(_ c: UnsafeMutablePointer<Connection>) -> Bool {
        guard decoded.tcpFlags & TCPFlag.syn != 0, decoded.tcpFlags & TCPFlag.ack == 0 else { return false }
        let done: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
        return done(c.pointee.orig.state) || done(c.pointee.resp.state)
    }

    /// Counts the decoded packet into its connection. Returns true when the connection's
    /// expiry came earlier (it is closing), so that the wheel moves it.
    private func update(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool) -> Bool {
        let before = c.pointee.expires
        if decoded.transportIncomplete {
            weirds["truncated_header", default: 0] += 1
            if c.pointee.expires == 0 { c.pointee.expires = now + configuration.tcpInactivityTimeout }
            return false
        }
        // Zeek's duration ends when both sides of a TCP connection have closed, by FIN or RST:
        // packets after that (the last ACK, a second RST) are counted, but do not lengthen it.
        let over: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
        let finished = decoded.proto == 6 && over(c.pointee.orig.state) && over(c.pointee.resp.state)
        if now > c.pointee.last && !finished { c.pointee.last = now }
        let endpoint = c.endpoint(isOrig: isOrig)
        switch decoded.proto {
        case 6:
            updateTCP(c, endpoint, c.endpoint(isOrig: !isOrig), isOrig: isOrig)
            let closing: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
            let orig = c.pointee.orig.state, resp = c.pointee.resp.state
            if orig == .synSent && resp == .inactive {
                c.pointee.expires = c.pointee.start + configuration.tcpAttemptDelay
            } else {
                c.pointee.expires = now + (closing(orig) || closing(resp)
                    ? configuration.tcpCloseDelay : configuration.tcpInactivityTimeout)
            }
        case 17:
            guard decoded.checksumValid else {
                countCorrupt(c, isOrig: isOrig)
                weirds["bad_UDP_checksum", default: 0] += 1
                return false
            }
            count(endpoint)
            endpoint.pointee.payloadBytes += UInt64(decoded.payloadLength)
            if endpoint.pointee.historySeen & HistoryLetter.data.rawValue == 0 {
                endpoint.pointee.historySeen |= HistoryLetter.data.rawValue
                appendLetter(c, isOrig: isOrig, "D")
            }
            c.pointee.expires = now + configuration.udpInactivityTimeout
        case 1, 58:
            guard decoded.checksumValid else {
                weirds["bad_ICMP_checksum", default: 0] += 1
                return false
            }
            count(endpoint)
            endpoint.pointee.payloadBytes += UInt64(decoded.payloadLength)
            c.pointee.expires = now + configuration.icmpInactivityTimeout
        default:
            count(endpoint)
            c.pointee.expires = now + configuration.udpInactivityTimeout
        }
        return c.pointee.expires < before
    }

    @inline(__always) private func count(_ endpoint: UnsafeMutablePointer<Endpoint>) {
        endpoint.pointee.packets += 1
        endpoint.pointee.ipBytes += UInt64(decoded.statedIPLength)
    }

    // MARK: TCP

    private func updateTCP(_ c: UnsafeMutablePointer<Connection>, _ endpoint: UnsafeMutablePointer<Endpoint>,
                           _ peer: UnsafeMutablePointer<Endpoint>, isOrig: Bool) {
        let flags = decoded.tcpFlags
        let syn = flags & TCPFlag.syn != 0, ack = flags & TCPFlag.ack != 0
        let fin = flags & TCPFlag.fin != 0, rst = flags & TCPFlag.rst != 0

        guard decoded.checksumValid else {
            countCorrupt(c, isOrig: isOrig)
            weirds["bad_TCP_checksum", default: 0] += 1
            return
        }
        count(endpoint)

        let sequence = decoded.sequence
        let length = Int64(decoded.payloadLength)
        var relative: Int64
        if !endpoint.pointee.flags.contains(.sequenceKnown) {
            endpoint.pointee.flags.insert(.sequenceKnown)
            if syn { endpoint.pointee.flags.insert(.startedWithSYN) }
            endpoint.pointee.lastRawSequence = sequence
            endpoint.pointee.lastRelative = 0
            relative = 0
        } else {
            relative = endpoint.pointee.relative(sequence)
        }
        endpoint.pointee.advance(raw: sequence, relative: relative)

        // History, by Zeek's rules: one letter per kind and direction, except that a SYN, FIN
        // or RST at a new sequence number is recorded again.
        let setFlags = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0)
        if setFlags > 1 {
            if fin && rst { addHistory(c, endpoint, isOrig: isOrig, .inconsistent, "I") }
            else { addHistory(c, endpoint, isOrig: isOrig, .multiFlag, "Q") }
        } else if setFlags == 1 {
            if syn {
                let letter: Unicode.Scalar = ack ? "H" : "S"
                let at = UInt32(truncatingIfNeeded: relative)
                if endpoint.pointee.historySeen & (ack ? HistoryLetter.synAck : .syn).rawValue != 0 {
                    if at != endpoint.pointee.lastSYN { appendLetter(c, isOrig: isOrig, letter) }
                } else {
                    addHistory(c, endpoint, isOrig: isOrig, ack ? .synAck : .syn, letter)
                }
                endpoint.pointee.lastSYN = at
            }
            if fin {
                // A FIN's sequence number comes after the data it carries.
                let at = UInt32(truncatingIfNeeded: relative + length)
                if endpoint.pointee.historySeen & HistoryLetter.fin.rawValue != 0 {
                    if at != endpoint.pointee.lastFIN { appendLetter(c, isOrig: isOrig, "F") }
                } else {
                    addHistory(c, endpoint, isOrig: isOrig, .fin, "F")
                }
                endpoint.pointee.lastFIN = at
            }
            if rst {
                let at = UInt32(truncatingIfNeeded: relative)
                if endpoint.pointee.historySeen & HistoryLetter.rst.rawValue != 0 {
                    if at != endpoint.pointee.lastRST { appendLetter(c, isOrig: isOrig, "R") }
                } else {
                    addHistory(c, endpoint, isOrig: isOrig, .rst, "R")
                }
                endpoint.pointee.lastRST = at
            }
        } else if length > 0 {
            addHistory(c, endpoint, isOrig: isOrig, .data, "D")
        } else if ack {
            addHistory(c, endpoint, isOrig: isOrig, .ack, "A")
        }
        if decoded.window == 0 && !syn && !fin && !rst {
            let count = bumpRareCount(c, isOrig: isOrig) { $0.zeroWindows += 1; return $0.zeroWindows }
            if isScaledMoment(count) { appendLetter(c, isOrig: isOrig, "W") }
        }

        // Sequence space: SYN and FIN each take one number; data its length (not a RST's).
        let dataStart = relative + (syn ? 1 : 0)
        let end = dataStart + (rst ? 0 : length) + (fin ? 1 : 0)
        // The highest end seen moves as in Zeek: not for a SYN or RST far from it, not after
        // this side reset; a FIN right after the SYN is believed even if it goes back. A
        // segment with data that ends at or below it is a retransmission (letter T), even
        // when it fills a hole.
        let delta = end - endpoint.pointee.highestEnd
        if (syn || rst) && (delta > Self.tooLargeSequenceDelta || delta < -Self.tooLargeSequenceDelta) {
            // not trusted
        } else if fin && endpoint.pointee.flags.contains(.startedWithSYN) && endpoint.pointee.highestEnd == 1 {
            endpoint.pointee.highestEnd = end
        } else if endpoint.pointee.state == .reset {
            // nothing after a reset is trusted
        } else if delta > 0 {
            endpoint.pointee.highestEnd = end
        } else if length > 0 {
            endpoint.pointee.retransmissions += 1
            if isScaledMoment(endpoint.pointee.retransmissions) { appendLetter(c, isOrig: isOrig, "T") }
        }
        if length > 0 { noteData(endpoint, dataStart..<(dataStart + length), c, isOrig: isOrig) }
        if fin { endpoint.pointee.flags.insert(.finSeen) }
        if ack && peer.pointee.flags.contains(.sequenceKnown) && !rst {
            let acked = peer.pointee.relative(decoded.acknowledgment)
            // An ack far outside what the peer sent is noise, not a size.
            if acked > peer.pointee.highestAck && acked <= peer.pointee.highestEnd + (1 << 30) { peer.pointee.highestAck = acked }
        }

        updateState(endpoint, peer, isOrig: isOrig, syn: syn, ack: ack, fin: fin, rst: rst, length: length)

        // Acknowledged data of the peer that never passed by is a content gap.
        if !peer.pointee.flags.contains(.gapReported) {
            let start: Int64 = peer.pointee.flags.contains(.startedWithSYN) ? 1 : 0
            // The acknowledged end of the peer's data; a FIN's octet carries none.
            let highestAck = peer.pointee.highestAck
            let ackedEnd = highestAck - (peer.pointee.flags.contains(.finSeen) && highestAck >= peer.pointee.highestEnd ? 1 : 0)
            if unseen(peer, below: ackedEnd, from: start, c, isOrig: !isOrig) > 0 {
                peer.pointee.flags.insert(.gapReported)
                appendLetter(c, isOrig: !isOrig, "G")
            }
        }
    }

    /// Zeek's TOO_LARGE_SEQ_DELTA: a SYN or RST this far from what was seen is not believed.
    private static let tooLargeSequenceDelta: Int64 = 1_048_576

    private func updateState(_ endpoint: UnsafeMutablePointer<Endpoint>, _ peer: UnsafeMutablePointer<Endpoint>, isOrig: Bool,
                             syn: Bool, ack: Bool, fin: Bool, rst: Bool, length: Int64) {
        switch endpoint.pointee.state {
        case .inactive:
            if syn && !isOrig {
                // The responder's SYN (with its ACK, normally) establishes both sides, as in
                // Zeek: a handshake without the final ACK is S1, not OTH.
                endpoint.pointee.state = .established
                if peer.pointee.state == .synSent { peer.pointee.state = .established }
                if fin { endpoint.pointee.state = .closed }
                if rst { endpoint.pointee.state = .reset }
            } else if syn {
                endpoint.pointee.state = ack ? .synAckSent : .synSent
            } else if rst {
                endpoint.pointee.state = .reset
            } else if fin {
                endpoint.pointee.state = .closed
            } else if length > 0 || ack {
                endpoint.pointee.state = .partial
            }
        case .synSent, .synAckSent:
            if rst {
                endpoint.pointee.state = .reset
            } else if fin {
                endpoint.pointee.state = .closed
            } else if syn && ack {
                endpoint.pointee.state = .synAckSent
            } else if (ack || length > 0) && peer.pointee.state != .inactive {
                // Established once the peer has answered; an unanswered SYN stays an attempt.
                endpoint.pointee.state = .established
                if peer.pointee.state == .synSent || peer.pointee.state == .synAckSent { peer.pointee.state = .established }
            }
        case .partial, .established:
            if rst { endpoint.pointee.state = .reset }
            else if fin { endpoint.pointee.state = .closed }
            else if endpoint.pointee.state == .partial && peer.pointee.state == .synAckSent && ack {
                endpoint.pointee.state = .established
                peer.pointee.state = .established
            }
        case .closed:
            // A RST after this side's FIN counts while the peer is still open; once both
            // have closed, the close was orderly.
            if rst && peer.pointee.state != .closed { endpoint.pointee.state = .reset }
        case .reset:
            break
        }
    }

    // MARK: History and the side tables

    /// Records `letter` the first time this endpoint does the thing.
    private func addHistory(_ c: UnsafeMutablePointer<Connection>, _ endpoint: UnsafeMutablePointer<Endpoint>,
                            isOrig: Bool, _ kind: HistoryLetter, _ letter: Unicode.Scalar) {
        guard endpoint.pointee.historySeen & kind.rawValue == 0 else { return }
        endpoint.pointee.historySeen |= kind.rawValue
        appendLetter(c, isOrig: isOrig, letter)
    }

    /// Bad checksums: the letter C at the 1st, 10th, 100th... of a direction.
    private func countCorrupt(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool) {
        let count = bumpRareCount(c, isOrig: isOrig) { $0.corrupt += 1; return $0.corrupt }
        if isScaledMoment(count) { appendLetter(c, isOrig: isOrig, "C") }
    }

    private func bumpRareCount(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool, _ bump: (inout RareCounts) -> UInt32) -> UInt32 {
        c.pointee.flags.insert(.rareCounts)
        return bump(&rareCounts[SideKey(uid: c.pointee.uid, isOrig: isOrig), default: RareCounts()])
    }

    /// Letters for repeated events are recorded at the 1st, 10th, 100th... occurrence.
    private func isScaledMoment(_ count: UInt32) -> Bool {
        var threshold: UInt64 = 1
        while threshold < count { threshold *= 10 }
        return threshold == count
    }

    private func appendLetter(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool, _ letter: Unicode.Scalar) {
        let upper = UInt8(ascii: letter)
        let cased = isOrig ? upper : upper | 0x20
        if !c.pointee.history.append(cased) {
            c.pointee.flags.insert(.longHistory)
            longHistories[c.pointee.uid, default: []].append(cased)
        }
    }

    private func noteData(_ endpoint: UnsafeMutablePointer<Endpoint>, _ range: Range<Int64>, _ c: UnsafeMutablePointer<Connection>, isOrig: Bool) {
        if !endpoint.pointee.flags.contains(.holes) && endpoint.pointee.seen.insertInline(range) { return }
        let side = SideKey(uid: c.pointee.uid, isOrig: isOrig)
        var more = holes.removeValue(forKey: side) ?? []
        if endpoint.pointee.seen.insert(range, more: &more) {
            holes[side] = more
            endpoint.pointee.flags.insert(.holes)
        } else {
            endpoint.pointee.flags.remove(.holes)
        }
    }

    private func unseen(_ endpoint: UnsafeMutablePointer<Endpoint>, below end: Int64, from start: Int64,
                        _ c: UnsafeMutablePointer<Connection>, isOrig: Bool) -> Int64 {
        guard endpoint.pointee.flags.contains(.holes) else { return endpoint.pointee.seen.unseen(below: end, from: start) }
        let more = holes[SideKey(uid: c.pointee.uid, isOrig: isOrig)] ?? []
        return endpoint.pointee.seen.unseen(below: end, from: start, more: more)
    }

    // MARK: Expiry and logging

    private func sweep() {
        nextSweep = (now / 1_000_000_000 + 1) * 1_000_000_000
        let due = table.due(at: now)
        if !due.isEmpty { logDue(due) }
    }

    private func logAndForget(_ slot: ConnectionTable.Slot) {
        let key = table.key(of: slot)
        log(table.remove(slot), key: key)
    }

    /// Logs the connections the wheel found due (and already let go of), oldest first, and
    /// takes them out of the table.
    private func logDue(_ slots: [ConnectionTable.Slot]) {
        var order = slots.map { (start: table.connection($0).pointee.start, slot: $0) }
        if order.count > 1 { order.sort { $0.start != $1.start ? $0.start < $1.start : $0.slot < $1.slot } }
        for (_, slot) in order {
            let key = table.key(of: slot)
            let connection = table.remove(slot, onWheel: false)
            log(connection, key: key)
        }
    }

    /// Takes what the record needs out of the side tables and hands it to the log stage.
    private func log(_ c: Connection, key: ConnectionKey, buildRecord: Bool = false) {
        var finished = FinishedConnection(connection: c, key: key)
        if c.flags.contains(.longHistory) { finished.moreHistory = longHistories.removeValue(forKey: c.uid) ?? [] }
        if c.flags.contains(.tunnelled) { finished.tunnelParent = tunnelParents.removeValue(forKey: c.uid) }
        if c.orig.flags.contains(.holes) { finished.origHoles = holes.removeValue(forKey: SideKey(uid: c.uid, isOrig: true)) ?? [] }
        if c.resp.flags.contains(.holes) { finished.respHoles = holes.removeValue(forKey: SideKey(uid: c.uid, isOrig: false)) ?? [] }
        if c.flags.contains(.rareCounts) {
            rareCounts[SideKey(uid: c.uid, isOrig: true)] = nil
            rareCounts[SideKey(uid: c.uid, isOrig: false)] = nil
        }
        logStage.append(buildRecord ? .record(finished.record(localNetworks: configuration.localNetworks)) : .finished(finished))
    }
}

/// What the log thread is given: a finished connection to make a record of, or the record.
enum LogItem {
    case finished(FinishedConnection)
    case record(ConnectionRecord)
}

/// A connection that has ended, with its rare state taken from the side tables: all that
/// its conn.log record is made of, built on the log thread.
struct FinishedConnection {
    var connection: Connection
    var key: ConnectionKey
    var moreHistory: [UInt8] = []
    var tunnelParent: UInt64?
    var origHoles: [Range<Int64>] = [], respHoles: [Range<Int64>] = []

    init(connection: Connection, key: ConnectionKey) {
        self.connection = connection
        self.key = key
    }

    func record(localNetworks: [Subnet]) -> ConnectionRecord {
        let c = connection
        var history = c.history.bytes
        history += moreHistory
        let duration = c.last - c.start
        var missed: Int64 = 0
        let origBytes: UInt64, respBytes: UInt64
        if c.proto == 6 {
            origBytes = UInt64(c.orig.tcpSize)
            respBytes = UInt64(c.resp.tcpSize)
            func missedBytes(_ endpoint: Endpoint, _ holes: [Range<Int64>]) -> Int64 {
                guard endpoint.flags.contains(.sequenceKnown) else { return 0 }
                let start: Int64 = endpoint.flags.contains(.startedWithSYN) ? 1 : 0
                return endpoint.seen.unseen(below: start + endpoint.tcpSize, from: start, more: holes)
            }
            missed = missedBytes(c.orig, origHoles) + missedBytes(c.resp, respHoles)
        } else {
            origBytes = c.orig.payloadBytes
            respBytes = c.resp.payloadBytes
        }
        let origAddress = c.origIsLow ? key.lowAddress : key.highAddress
        let respAddress = c.origIsLow ? key.highAddress : key.lowAddress
        return ConnectionRecord(
            start: c.start, uid: UIDGenerator.format(c.uid), origAddress: origAddress, origPort: c.origPort,
            respAddress: respAddress, respPort: c.respPort, proto: c.proto, duration: duration,
            origBytes: origBytes, respBytes: respBytes, state: c.state(history: history),
            localOrig: localNetworks.contains { $0.contains(origAddress) },
            localResp: localNetworks.contains { $0.contains(respAddress) },
            missedBytes: UInt64(max(missed, 0)), history: String(decoding: history, as: UTF8.self),
            origPackets: c.orig.packets, origIPBytes: c.orig.ipBytes, respPackets: c.resp.packets, respIPBytes: c.resp.ipBytes,
            tunnelParents: tunnelParent.map { [UIDGenerator.format($0)] } ?? []
        )
    }
}

/// One direction of one connection, as the side tables know it.
private struct SideKey: Hashable {
    var uid: UInt64
    var isOrig: Bool
}

private struct RareCounts {
    var corrupt: UInt32 = 0
    var zeroWindows: UInt32 = 0
}

extension UnsafeMutablePointer where Pointee == Connection {
    /// The originator's or responder's endpoint, in place.
    @inline(__always) func endpoint(isOrig: Bool) -> UnsafeMutablePointer<Endpoint> {
        // Both offsets are constants the optimizer folds: no lookup per packet.
        let offset = isOrig ? MemoryLayout<Connection>.offset(of: \.orig)! : MemoryLayout<Connection>.offset(of: \.resp)!
        return UnsafeMutableRawPointer(self).advanced(by: offset).assumingMemoryBound(to: Endpoint.self)
    }
}

/// ICMP "ports": the type, and for request/reply pairs the counterpart type (else the code).
enum ICMP {
    static func counterpart(type: UInt8, code: UInt8, v6: Bool) -> UInt16 {
        let other: UInt8?
        if v6 {
            switch type {
            case 128, 133, 135, 130, 139, 144: other = type + 1
            case 129, 134, 136, 131, 140, 145: other = type - 1
            default: other = nil
            }
        } else {
            switch type {
            case 8: other = 0
            case 0: other = 8
            case 13, 15, 17: other = type + 1
            case 14, 16, 18: other = type - 1
            case 10: other = 9
            case 9: other = 10
            default: other = nil
            }
        }
        return UInt16(other ?? code) // a one-way message: its code
    }
}

/// Zeek-style connection uids: 64 random bits, written as "C" and base-62 digits.
enum UIDGenerator {
    /// A uid as Zeek spells them: "C" and the number in base 62, lowest digit first.
    static func format(_ number: UInt64) -> String {
        // At most 1 + 11 characters: a small string, built in place without an allocation.
        // Two 64-bit divisions split the number into chunks of five digits, whose digits
        // then come from cheap 32-bit divisions.
        String(unsafeUninitializedCapacity: 12) { text in
            text[0] = UInt8(ascii: "C")
            var count = 1
            func put(_ chunk: UInt32, all: Bool) {
                var rest = chunk
                var written = 0
                repeat {
                    let digit = UInt8(rest % 62)
                    text[count] = digit < 10 ? 0x30 + digit : digit < 36 ? 0x41 + digit - 10 : 0x61 + digit - 36
                    count += 1
                    written += 1
                    rest /= 62
                } while all ? written < 5 : rest > 0
            }
            let fiveDigits: UInt64 = 916_132_832 // 62^5
            var value = number
            for _ in 0..<2 {
                let chunk = UInt32(value % fiveDigits)
                value /= fiveDigits
                if value == 0 {
                    put(chunk, all: false)
                    return count
                }
                put(chunk, all: true)
            }
            put(UInt32(value), all: false)
            return count
        }
    }
}
