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
    /// as the weird `connection_evicted`, so memory stays bounded.
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

/// Where finished connections go.
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
    private let sink: ConnectionSink
    /// Connections live in `storage` and are updated in place; `index` finds them by key.
    // Touched for every packet: no dynamic exclusivity checks.
    @exclusivity(unchecked) private var index: [ConnectionKey: Int] = [:]
    @exclusivity(unchecked) private var storage: [Connection] = []
    @exclusivity(unchecked) private var decoded = DecodedPacket()
    private let decoder: PacketDecoder
    private let fragments = FragmentReassembler()
    /// Uids of GRE and IP-in-IP tunnels, which are no connections of their own.
    private var ipTunnels: [ConnectionKey: UInt64] = [:]
    private var uids: UIDGenerator
    private var evictionRandom = UIDGenerator(seed: 0x5eed) // its numbers pick eviction victims
    @exclusivity(unchecked) private var now: UInt64 = 0
    @exclusivity(unchecked) private var nextSweep: UInt64 = 0
    /// Packets that did not reach connection tracking, by reason, as Zeek's weird names.
    public private(set) var weirds: [String: UInt64] = [:]
    public private(set) var packetsAnalyzed: UInt64 = 0
    public var activeConnections: Int { storage.count }

    public init(configuration: AnalysisConfiguration = AnalysisConfiguration(), sink: ConnectionSink, seed: UInt64 = 0) {
        self.configuration = configuration
        self.sink = sink
        decoder = PacketDecoder(verifyChecksums: configuration.verifyChecksums)
        uids = UIDGenerator(seed: seed)
    }

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
        guard depth < 4, decoded.checksumValid, !decoded.transportIncomplete, let tunnel = Tunnel.inner(of: decoded, in: bytes) else {
            track(parent: parent)
            return
        }
        let outer: UInt64
        if tunnel.kind.outerIsConnection {
            outer = track(parent: parent)
        } else {
            let key = ConnectionKey(proto: decoded.proto, decoded.source, 0, decoded.destination, 0)
            if let uid = ipTunnels[key] { outer = uid } else {
                outer = uids.nextNumber()
                ipTunnels[key] = outer
            }
        }
        analyse(tunnel.bytes, linkType: tunnel.linkType, flags: 0, parent: outer, depth: depth + 1)
    }

    /// Logs every connection still open, as at the end of input.
    public func finish() {
        index.removeAll()
        storage.sort { $0.start < $1.start } // in place: no second copy of every connection
        for connection in storage { log(connection) }
        storage.removeAll()
    }

    /// Makes room for one connection: looks at a few connections at random and evicts the
    /// first unanswered attempt among them, else the last one looked at. O(1), and under a
    /// flood the attempts are what it finds.
    private func evictOne() {
        var victim = 0
        for _ in 0..<8 {
            victim = Int(evictionRandom.nextNumber() % UInt64(storage.count))
            if storage[victim].resp.packets == 0 { break }
        }
        weirds["connection_evicted", default: 0] += 1
        log(remove(at: victim))
    }

    /// Takes the connection at `position` out of the table (the last one moves into its place).
    private func remove(at position: Int) -> Connection {
        let last = storage.count - 1
        if position != last {
            storage.swapAt(position, last)
            index[storage[position].key] = position
        }
        let removed = storage.removeLast()
        index[removed.key] = nil
        return removed
    }

    // MARK: Connections

    /// Adds the decoded packet to its connection; returns the connection's uid.
    @discardableResult
    private func track(parent: UInt64?) -> UInt64 {
        let p = decoded
        var origPort = p.sourcePort, respPort = p.destinationPort
        if p.proto == 1 || p.proto == 58 {
            respPort = ICMP.counterpart(type: p.icmpType, code: p.icmpCode, v6: p.proto == 58)
            origPort = UInt16(p.icmpType)
        }
        let key = ConnectionKey(proto: p.proto, p.source, origPort, p.destination, respPort)
        if let position = index[key] {
            if storage[position].expires <= now || (p.proto == 6 && isReuse(at: position, p)) {
                log(remove(at: position))
            } else {
                let isOrig = storage[position].origAddress == p.source && storage[position].origPort == origPort
                update(&storage[position], p, isOrig: isOrig)
                return storage[position].uid
            }
        }
        var connection = Connection(key: key, uid: uids.nextNumber(), origAddress: p.source, origPort: origPort, start: now)
        connection.tunnelParent = parent
        if shouldFlipNewConnection(p) { connection.flip() }
        update(&connection, p, isOrig: connection.origAddress == p.source && connection.origPort == origPort)
        if storage.count >= configuration.maximumConnections { evictOne() }
        index[key] = storage.count
        storage.append(connection)
        return connection.uid
    }

    /// Outside bare mode, a connection whose start was missed is turned around when its
    /// first packet comes from a well-known server port to one that is not.
    private func shouldFlipNewConnection(_ p: DecodedPacket) -> Bool {
        switch p.proto {
        case 6:
            let syn = p.tcpFlags & TCPFlag.syn != 0, ack = p.tcpFlags & TCPFlag.ack != 0
            guard !syn || ack else { return false }
        case 17: break
        default: return false
        }
        // Bare mode still knows the tunnel ports: Zeek's tunnel decapsulation is core.
        let ports = configuration.bareMode ? AnalysisConfiguration.tunnelPorts : AnalysisConfiguration.likelyServerPorts
        return ports.contains(p.sourcePort) && !ports.contains(p.destinationPort)
    }

    /// A new SYN on a connection whose endpoints have closed starts a new connection.
    private func isReuse(at position: Int, _ p: DecodedPacket) -> Bool {
        guard p.tcpFlags & TCPFlag.syn != 0, p.tcpFlags & TCPFlag.ack == 0 else { return false }
        let done: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
        return done(storage[position].orig.state) || done(storage[position].resp.state)
    }

    /// `p` is passed borrowed: the decoded packet is not copied again for each step.
    private func update(_ c: inout Connection, _ p: DecodedPacket, isOrig: Bool) {
        if p.transportIncomplete {
            weirds["truncated_header", default: 0] += 1
            if c.expires == 0 { c.expires = now + configuration.tcpInactivityTimeout }
            return
        }
        // Zeek's duration ends when both sides of a TCP connection have closed: packets after
        // that (the last ACK) are counted, but do not lengthen it.
        let finished = p.proto == 6 && c.orig.state == .closed && c.resp.state == .closed
        if now > c.last && !finished { c.last = now }
        switch p.proto {
        case 6:
            updateTCP(&c, p, isOrig: isOrig)
            let closing: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
            if c.orig.state == .synSent && c.resp.state == .inactive {
                c.expires = c.start + configuration.tcpAttemptDelay
            } else {
                c.expires = now + (closing(c.orig.state) || closing(c.resp.state)
                    ? configuration.tcpCloseDelay : configuration.tcpInactivityTimeout)
            }
        case 17:
            guard p.checksumValid else {
                addHistory(&c, isOrig: isOrig, .corrupt, "C", scaled: true)
                weirds["bad_UDP_checksum", default: 0] += 1
                return
            }
            count(&c, p, isOrig: isOrig)
            if isOrig { c.orig.payloadBytes += UInt64(p.payloadLength) } else { c.resp.payloadBytes += UInt64(p.payloadLength) }
            addHistory(&c, isOrig: isOrig, .data, "D")
            c.expires = now + configuration.udpInactivityTimeout
        case 1, 58:
            guard p.checksumValid else {
                weirds["bad_ICMP_checksum", default: 0] += 1
                return
            }
            count(&c, p, isOrig: isOrig)
            if isOrig { c.orig.payloadBytes += UInt64(p.payloadLength) } else { c.resp.payloadBytes += UInt64(p.payloadLength) }
            c.expires = now + configuration.icmpInactivityTimeout
        default:
            count(&c, p, isOrig: isOrig)
            c.expires = now + configuration.udpInactivityTimeout
        }
    }

    private func count(_ c: inout Connection, _ p: DecodedPacket, isOrig: Bool) {
        if isOrig {
            c.orig.packets += 1
            c.orig.ipBytes += UInt64(p.statedIPLength)
        } else {
            c.resp.packets += 1
            c.resp.ipBytes += UInt64(p.statedIPLength)
        }
    }

    // MARK: TCP

    private func updateTCP(_ c: inout Connection, _ p: DecodedPacket, isOrig: Bool) {
        let flags = p.tcpFlags
        let syn = flags & TCPFlag.syn != 0, ack = flags & TCPFlag.ack != 0
        let fin = flags & TCPFlag.fin != 0, rst = flags & TCPFlag.rst != 0

        guard p.checksumValid else {
            addHistory(&c, isOrig: isOrig, .corrupt, "C", scaled: true)
            weirds["bad_TCP_checksum", default: 0] += 1
            return
        }
        count(&c, p, isOrig: isOrig)
        // Moved out (not copied), so their arrays stay uniquely referenced and grow in place.
        var endpoint = Endpoint(), peer = Endpoint()
        if isOrig { swap(&endpoint, &c.orig); swap(&peer, &c.resp) } else { swap(&endpoint, &c.resp); swap(&peer, &c.orig) }
        defer {
            if isOrig { swap(&endpoint, &c.orig); swap(&peer, &c.resp) } else { swap(&endpoint, &c.resp); swap(&peer, &c.orig) }
        }

        let length = Int64(p.payloadLength)
        var relative: Int64
        if !endpoint.sequenceKnown {
            endpoint.sequenceKnown = true
            endpoint.lastRawSequence = p.sequence
            endpoint.lastRelative = 0
            endpoint.startedWithSYN = syn
            relative = 0
        } else {
            relative = endpoint.relative(p.sequence)
        }
        endpoint.advance(raw: p.sequence, relative: relative)

        // History, by Zeek's rules: one letter per kind and direction, except that a SYN, FIN
        // or RST at a new sequence number is recorded again.
        let setFlags = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0)
        if setFlags > 1 {
            if fin && rst { addHistory(&c, &endpoint, isOrig: isOrig, .inconsistent, "I") }
            else { addHistory(&c, &endpoint, isOrig: isOrig, .multiFlag, "Q") }
        } else if setFlags == 1 {
            if syn {
                let letter: Character = ack ? "H" : "S"
                let at = UInt32(truncatingIfNeeded: relative)
                if hasHistory(endpoint, ack ? .synAck : .syn) {
                    if at != endpoint.lastSYN { appendLetter(&c, isOrig: isOrig, letter) }
                } else {
                    addHistory(&c, &endpoint, isOrig: isOrig, ack ? .synAck : .syn, letter)
                }
                endpoint.lastSYN = at
            }
            if fin {
                // A FIN's sequence number comes after the data it carries.
                let at = UInt32(truncatingIfNeeded: relative + length)
                if hasHistory(endpoint, .fin) {
                    if at != endpoint.lastFIN { appendLetter(&c, isOrig: isOrig, "F") }
                } else {
                    addHistory(&c, &endpoint, isOrig: isOrig, .fin, "F")
                }
                endpoint.lastFIN = at
            }
            if rst {
                let at = UInt32(truncatingIfNeeded: relative)
                if hasHistory(endpoint, .rst) {
                    if at != endpoint.lastRST { appendLetter(&c, isOrig: isOrig, "R") }
                } else {
                    addHistory(&c, &endpoint, isOrig: isOrig, .rst, "R")
                }
                endpoint.lastRST = at
            }
        } else if length > 0 {
            addHistory(&c, &endpoint, isOrig: isOrig, .data, "D")
        } else if ack {
            addHistory(&c, &endpoint, isOrig: isOrig, .ack, "A")
        }
        if p.window == 0 && !syn && !fin && !rst {
            endpoint.zeroWindows += 1
            if isScaledMoment(Int(endpoint.zeroWindows)) { appendLetter(&c, isOrig: isOrig, "W") }
        }

        // Sequence space: SYN and FIN each take one number; data its length.
        let dataStart = relative + (syn ? 1 : 0)
        if length > 0 {
            let range = dataStart..<(dataStart + length)
            if endpoint.unseen(below: range.upperBound, from: range.lowerBound) == 0 && !endpoint.seen.isEmpty {
                endpoint.retransmissions += 1
                if isScaledMoment(Int(endpoint.retransmissions)) { appendLetter(&c, isOrig: isOrig, "T") }
            }
            endpoint.noteData(range)
        }
        let end = dataStart + length + (fin ? 1 : 0)
        if end > endpoint.highestEnd { endpoint.highestEnd = end }
        if fin && endpoint.finCount < .max { endpoint.finCount += 1 }
        if ack && peer.sequenceKnown && !rst {
            let acked = peer.relative(p.acknowledgment)
            // An ack far outside what the peer sent is noise, not a size.
            if acked > peer.highestAck && acked <= peer.highestEnd + (1 << 30) { peer.highestAck = acked }
        }

        updateState(&endpoint, &peer, syn: syn, ack: ack, fin: fin, rst: rst, length: length)

        // Acknowledged data of the peer that never passed by is a content gap.
        if !peer.gapReported {
            let start: Int64 = peer.startedWithSYN ? 1 : 0
            // The acknowledged end of the peer's data; a FIN's octet carries none.
            let ackedEnd = peer.highestAck - (peer.finCount > 0 && peer.highestAck >= peer.highestEnd ? 1 : 0)
            if peer.unseen(below: ackedEnd, from: start) > 0 {
                peer.gapReported = true
                appendLetter(&c, isOrig: !isOrig, "G")
            }
        }
    }

    private func updateState(_ endpoint: inout Endpoint, _ peer: inout Endpoint, syn: Bool, ack: Bool, fin: Bool, rst: Bool, length: Int64) {
        switch endpoint.state {
        case .inactive:
            if syn {
                endpoint.state = ack ? .synAckSent : .synSent
            } else if rst {
                endpoint.state = .reset
            } else if fin {
                endpoint.state = .closed
            } else if length > 0 || ack {
                endpoint.state = .partial
            }
        case .synSent, .synAckSent:
            if rst {
                endpoint.state = .reset
            } else if fin {
                endpoint.state = .closed
            } else if syn && ack {
                endpoint.state = .synAckSent
            } else if (ack || length > 0) && peer.state != .inactive {
                // Established once the peer has answered; an unanswered SYN stays an attempt.
                endpoint.state = .established
                if peer.state == .synSent || peer.state == .synAckSent { peer.state = .established }
            }
        case .partial, .established:
            if rst { endpoint.state = .reset }
            else if fin { endpoint.state = .closed }
            else if endpoint.state == .partial && peer.state == .synAckSent && ack {
                endpoint.state = .established
                peer.state = .established
            }
        case .closed:
            // A RST after this side's FIN counts while the peer is still open; once both
            // have closed, the close was orderly.
            if rst && peer.state != .closed { endpoint.state = .reset }
        case .reset:
            break
        }
    }

    private func hasHistory(_ endpoint: Endpoint, _ letter: HistoryLetter) -> Bool {
        endpoint.historySeen & letter.rawValue != 0
    }

    /// Records `letter` the first time this endpoint does the thing.
    private func addHistory(_ c: inout Connection, _ endpoint: inout Endpoint, isOrig: Bool, _ kind: HistoryLetter, _ letter: Character) {
        guard endpoint.historySeen & kind.rawValue == 0 else { return }
        endpoint.historySeen |= kind.rawValue
        appendLetter(&c, isOrig: isOrig, letter)
    }

    /// For UDP: the letter once per direction; `scaled` (bad checksums): at 1, 10, 100... times.
    private func addHistory(_ c: inout Connection, isOrig: Bool, _ kind: HistoryLetter, _ letter: Character, scaled: Bool = false) {
        if scaled {
            let count: Int
            if isOrig { c.orig.corrupt += 1; count = Int(c.orig.corrupt) } else { c.resp.corrupt += 1; count = Int(c.resp.corrupt) }
            if isScaledMoment(count) { appendLetter(&c, isOrig: isOrig, letter) }
            return
        }
        let seen = isOrig ? c.orig.historySeen : c.resp.historySeen
        guard seen & kind.rawValue == 0 else { return }
        if isOrig { c.orig.historySeen |= kind.rawValue } else { c.resp.historySeen |= kind.rawValue }
        appendLetter(&c, isOrig: isOrig, letter)
    }

    /// Letters for repeated events are recorded at the 1st, 10th, 100th... occurrence.
    private func isScaledMoment(_ count: Int) -> Bool {
        var threshold = 1
        while threshold < count { threshold *= 10 }
        return threshold == count
    }

    private func appendLetter(_ c: inout Connection, isOrig: Bool, _ letter: Character) {
        let upper = letter.asciiValue!
        c.history.append(isOrig ? upper : upper | 0x20)
    }

    // MARK: Expiry and logging

    private func sweep() {
        nextSweep = now + 1_000_000_000
        var finished: [Connection] = []
        var position = 0
        while position < storage.count {
            if storage[position].expires <= now { finished.append(remove(at: position)) } else { position += 1 }
        }
        if finished.isEmpty { return }
        finished.sort { $0.start < $1.start }
        for connection in finished { log(connection) }
    }

    private func log(_ c: Connection) {
        let duration = c.last - c.start
        var missed: Int64 = 0
        let origBytes: UInt64, respBytes: UInt64
        if c.proto == 6 {
            origBytes = UInt64(c.orig.tcpSize)
            respBytes = UInt64(c.resp.tcpSize)
            for endpoint in [c.orig, c.resp] where endpoint.sequenceKnown {
                let start: Int64 = endpoint.startedWithSYN ? 1 : 0
                missed += endpoint.unseen(below: start + endpoint.tcpSize, from: start)
            }
        } else {
            origBytes = c.orig.payloadBytes
            respBytes = c.resp.payloadBytes
        }
        let local = configuration.localNetworks
        sink.connectionEnded(ConnectionRecord(
            start: c.start, uid: UIDGenerator.format(c.uid), origAddress: c.origAddress, origPort: c.origPort,
            respAddress: c.respAddress, respPort: c.respPort, proto: c.proto, duration: duration,
            origBytes: origBytes, respBytes: respBytes, state: c.state,
            localOrig: local.contains { $0.contains(c.origAddress) }, localResp: local.contains { $0.contains(c.respAddress) },
            missedBytes: UInt64(max(missed, 0)), history: c.history.string,
            origPackets: c.orig.packets, origIPBytes: c.orig.ipBytes, respPackets: c.resp.packets, respIPBytes: c.resp.ipBytes,
            tunnelParents: c.tunnelParent.map { [UIDGenerator.format($0)] } ?? []
        ))
    }
}

/// ICMP "ports": the type, and for request/reply pairs the counterpart type (else the code).
enum ICMP {
    static func counterpart(type: UInt8, code: UInt8, v6: Bool) -> UInt16 {
        let pairs: [UInt8: UInt8] = v6
            ? [128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 139: 140, 140: 139, 144: 145, 145: 144]
            : [8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17, 10: 9, 9: 10]
        if let other = pairs[type] { return UInt16(other) }
        return UInt16(code) // a one-way message
    }
}

/// Zeek-style connection uids: 64 random bits, written as "C" and base-62 digits.
struct UIDGenerator {
    private var state: UInt64
    init(seed: UInt64) {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        state = seed != 0 ? seed : UInt64(t.tv_nsec) ^ UInt64(t.tv_sec) << 20 ^ UInt64(getpid())
    }

    mutating func nextNumber() -> UInt64 { random() }

    private mutating func random() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A uid as Zeek spells them: "C" and the number in base 62.
    static func format(_ number: UInt64) -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "C")]
        var value = number
        repeat {
            bytes.append(alphabet[Int(value % 62)])
            value /= 62
        } while value > 0
        return String(decoding: bytes, as: UTF8.self)
    }
}
