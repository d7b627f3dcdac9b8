#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Tracks connections from decoded packets, with Zeek's semantics for roles, TCP endpoint
/// states, history and sizes, and hands each finished connection to a sink.
public final class ConnectionTracker {
    public let configuration: AnalysisConfiguration
    /// Finished connections become records and reach the sink on this queue's thread.
    private let logStage: BackgroundQueue<LogItem>
    private let table: ConnectionTable
    /// The packet being analysed, at a stable address shared with the packet path.
    let decoded: UnsafeMutablePointer<DecodedPacket>
    /// Link layers, IP, fragments, transports and tunnels, up to `track`.
    private let path: PacketPath
    @exclusivity(unchecked) private var uids: SplitMix64
    private var evictionRandom = SplitMix64(seed: 0x5eed) // its numbers pick eviction victims
    @exclusivity(unchecked) private var now: UInt64 = 0
    @exclusivity(unchecked) private var nextSweep: UInt64 = 0
    private let likelyTCPServerPorts: Set<UInt16>
    private let likelyUDPServerPorts: Set<UInt16>

    // The rare state of a few connections, by uid, so that every connection need not carry
    // room for it: history past 16 letters, holes in the data, the tunnel a connection
    // travels in, counts of bad checksums and zero windows. Each entry goes with its
    // connection, so the connection bound bounds them too.
    private var longHistories: [UInt64: [UInt8]] = [:]
    private var holes: [SideKey: [Range<Int64>]] = [:]
    private var tunnelParents: [UInt64: UInt64] = [:]
    private var rareCounts: [SideKey: RareCounts] = [:]

    /// Everything odd in the traffic, by Zeek's weird names, and the bounds that were hit;
    /// at a stable address shared with the packet path.
    private let weirdCounter: UnsafeMutablePointer<Weirds>
    public var weirds: [String: UInt64] { weirdCounter.pointee.counts }
    @exclusivity(unchecked) public private(set) var packetsAnalyzed: UInt64 = 0
    /// Packets that made no connection, with nothing wrong with them (ARP, ESP, IGMP, ...).
    public var packetsIgnored: UInt64 { path.ignored }
    /// IP fragments handed to reassembly, and datagrams put together from them.
    public var fragmentsSeen: UInt64 { path.fragments.fragments }
    public var datagramsReassembled: UInt64 { path.fragments.reassembled }
    public var activeConnections: Int { table.count }
    /// The most connections open at once so far.
    public private(set) var peakConnections = 0
    private(set) var evictedConnections: UInt64 = 0

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
        let start = seed != 0 ? seed : SplitMix64.freshSeed()
        uids = SplitMix64(seed: start)
        table = ConnectionTable(seed: start ^ 0x7ab1e)
        decoded = .allocate(capacity: 1)
        decoded.initialize(to: DecodedPacket())
        weirdCounter = .allocate(capacity: 1)
        weirdCounter.initialize(to: Weirds())
        likelyTCPServerPorts = configuration.likelyServerPorts(proto: 6)
        likelyUDPServerPorts = configuration.likelyServerPorts(proto: 17)
        path = PacketPath(configuration: configuration, decoded: decoded, weirds: weirdCounter)
        path.attach(to: self)
    }

    deinit {
        logStage.finish()
        decoded.deinitialize(count: 1)
        decoded.deallocate()
        weirdCounter.deinitialize(count: 1)
        weirdCounter.deallocate()
    }

    /// Analyses one packet of link type `linkType`.
    public func process(_ packet: Packet, linkType: UInt32) {
        now = packet.timestampNanoseconds
        if now >= nextSweep { sweep() }
        path.process(packet, linkType: linkType)
    }

    /// The tables that traffic can grow, each with its bound and what hitting it or expiry
    /// took away: for the summary and the statistics.
    public var tables: [TableStatistics] {
        let fragments = path.fragments, tunnels = path.ipTunnels
        return [
            TableStatistics(name: "connections", entries: table.count, peak: peakConnections,
                            bound: min(configuration.maximumConnections, ConnectionTable.maximumSlots), evicted: evictedConnections),
            TableStatistics(name: "fragments", entries: fragments.pending, peak: fragments.peak,
                            bound: fragments.limits.maximumDatagrams, evicted: fragments.evicted, expired: fragments.expired),
            TableStatistics(name: "fragment bytes", entries: fragments.bytesHeld, peak: fragments.peakBytes,
                            bound: fragments.limits.maximumBytes, evicted: 0),
            TableStatistics(name: "ip tunnels", entries: tunnels.count, peak: tunnels.peak,
                            bound: tunnels.limits.maximumTunnels, evicted: tunnels.evicted, expired: tunnels.expired),
        ]
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
    func newUID() -> UInt64 {
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
        weirdCounter.pointee.note(.connectionEvicted)
        evictedConnections += 1
        logAndForget(victim!)
    }

    // MARK: Connections

    /// Adds the decoded packet to its connection, which it makes if there is none; returns
    /// the connection's slot (valid until the next packet).
    @discardableResult
    func track(parent: UInt64?) -> ConnectionTable.Slot? {
        let d = decoded
        var origPort = d.pointee.sourcePort, respPort = d.pointee.destinationPort
        let proto = d.pointee.proto
        var oneWay = false
        if proto == 1 || proto == 58 {
            // ICMP "ports": the type, and the counterpart type of a request or reply, else the
            // code; a one-way message's key keeps its direction, as Zeek's does.
            let counterpart = ICMP.counterpart(type: d.pointee.icmpType, v6: proto == 58)
            origPort = UInt16(d.pointee.icmpType)
            respPort = UInt16(counterpart ?? d.pointee.icmpCode)
            oneWay = counterpart == nil
        }
        if !d.pointee.unusable { packetsAnalyzed += 1 } // else counted as a weird
        let key = ConnectionKey(proto: proto, d.pointee.source, origPort, d.pointee.destination, respPort, oneWay: oneWay)
        if let slot = table.find(key) {
            let c = table.connection(slot)
            if c.pointee.expires <= now || (proto == 6 && isReuse(c)) {
                logAndForget(slot)
            } else {
                if update(c, isOrig: isFromOriginator(c, key, origPort)) { table.reschedule(slot) }
                return slot
            }
        }
        let origIsLow = key.lowAddress == d.pointee.source && key.lowPort == origPort
        var connection = Connection(key: key, uid: newUID(), originatorIsLow: origIsLow, start: now)
        if shouldFlipNewConnection() { connection.flip() }
        if let parent {
            connection.flags.insert(.tunnelled)
            tunnelParents[connection.uid] = parent
        }
        if table.count >= min(configuration.maximumConnections, ConnectionTable.maximumSlots) { evictOne() }
        let slot = table.insert(connection, key: key)
        if table.count > peakConnections { peakConnections = table.count }
        let c = table.connection(slot)
        _ = update(c, isOrig: isFromOriginator(c, key, origPort))
        table.schedule(slot)
        return slot
    }

    // What the packet path asks of a connection it found, for the tunnel inside it.
    func uid(_ slot: ConnectionTable.Slot) -> UInt64 { table.connection(slot).pointee.uid }
    func responderPort(_ slot: ConnectionTable.Slot) -> UInt16 { table.connection(slot).pointee.respPort }
    func tunnelViolated(_ slot: ConnectionTable.Slot) -> Bool { table.connection(slot).pointee.flags.contains(.tunnelViolated) }
    func markTunnelViolated(_ slot: ConnectionTable.Slot) { table.connection(slot).pointee.flags.insert(.tunnelViolated) }

    /// Zeek's history letter X: an analyzer limit was reached (once per connection).
    func noteAnalyzerLimit(_ slot: ConnectionTable.Slot) {
        let c = table.connection(slot)
        guard !c.pointee.flags.contains(.analyzerLimit) else { return }
        c.pointee.flags.insert(.analyzerLimit)
        appendLetter(c, isOrig: true, "X")
    }

    /// Whether the decoded packet (whose source port, or ICMP type, is `sourcePort`) comes
    /// from the connection's originator.
    @inline(__always)
    private func isFromOriginator(_ c: UnsafeMutablePointer<Connection>, _ key: ConnectionKey, _ sourcePort: UInt16) -> Bool {
        (c.pointee.origIsLow ? key.lowAddress : key.highAddress) == decoded.pointee.source && c.pointee.origPort == sourcePort
    }

    /// A connection whose start was missed is turned around by Zeek's rules: UDP when its
    /// first packet comes from a likely server port to one that is not; TCP when it did not
    /// start with a plain SYN and comes from a likely server port, unless both ports are
    /// likely and (a SYN-ACK, or) the source port is the higher. Never towards a broadcast.
    private func shouldFlipNewConnection() -> Bool {
        let d = decoded
        let source = d.pointee.sourcePort, destination = d.pointee.destinationPort
        let flip: Bool
        switch d.pointee.proto {
        case 6:
            let syn = d.pointee.tcpFlags & TCPFlag.syn != 0, ack = d.pointee.tcpFlags & TCPFlag.ack != 0
            guard !syn || ack, likelyTCPServerPorts.contains(source) else { return false }
            flip = likelyTCPServerPorts.contains(destination) ? !syn && source < destination : true
        case 17:
            flip = likelyUDPServerPorts.contains(source) && !likelyUDPServerPorts.contains(destination)
        default:
            return false
        }
        return flip && !d.pointee.destination.isBroadcast
    }

    /// A new SYN on a connection whose endpoints have closed starts a new connection.
    private func isReuse(_ c: UnsafeMutablePointer<Connection>) -> Bool {
        guard decoded.pointee.tcpFlags & TCPFlag.syn != 0, decoded.pointee.tcpFlags & TCPFlag.ack == 0 else { return false }
        let done: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
        return done(c.pointee.orig.state) || done(c.pointee.resp.state)
    }

    /// Counts the decoded packet into its connection. Returns true when the connection's
    /// expiry came earlier (it is closing), so that the wheel moves it.
    private func update(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool) -> Bool {
        let d = decoded
        let before = c.pointee.expires
        if d.pointee.unusable {
            if c.pointee.expires == 0 { c.pointee.expires = now + configuration.tcpInactivityTimeout }
            return false
        }
        // A packet with a bad checksum is noted and otherwise ignored: it does not count, nor
        // move the connection's last time.
        guard d.pointee.checksumValid else {
            switch d.pointee.proto {
            case 6:
                countCorrupt(c, isOrig: isOrig)
                weirdCounter.pointee.note(.badTCPChecksum)
            case 17:
                countCorrupt(c, isOrig: isOrig)
                weirdCounter.pointee.note(.badUDPChecksum)
            default:
                weirdCounter.pointee.note(.badICMPChecksum)
            }
            if c.pointee.expires == 0 {
                c.pointee.expires = now + (d.pointee.proto == 6 ? configuration.tcpInactivityTimeout : configuration.udpInactivityTimeout)
            }
            return false
        }
        // Zeek's duration ends when both sides of a TCP connection have closed, by FIN or RST:
        // packets after that (the last ACK, a second RST) are counted, but do not lengthen it.
        let over: (TCPEndpointState) -> Bool = { $0 == .closed || $0 == .reset }
        let finished = d.pointee.proto == 6 && over(c.pointee.orig.state) && over(c.pointee.resp.state)
        if now > c.pointee.last && !finished { c.pointee.last = now }
        let endpoint = c.endpoint(isOrig: isOrig)
        switch d.pointee.proto {
        case 6:
            updateTCP(c, endpoint, c.endpoint(isOrig: !isOrig), isOrig: isOrig)
            let orig = c.pointee.orig.state, resp = c.pointee.resp.state
            if orig == .synSent && resp == .inactive {
                c.pointee.expires = c.pointee.start + configuration.tcpAttemptDelay
            } else {
                c.pointee.expires = now + (over(orig) || over(resp)
                    ? configuration.tcpCloseDelay : configuration.tcpInactivityTimeout)
            }
        case 17:
            count(endpoint)
            endpoint.pointee.payloadBytes += UInt64(d.pointee.payloadLength)
            if endpoint.pointee.historySeen & HistoryLetter.data.rawValue == 0 {
                endpoint.pointee.historySeen |= HistoryLetter.data.rawValue
                appendLetter(c, isOrig: isOrig, "D")
            }
            c.pointee.expires = now + configuration.udpInactivityTimeout
        case 1, 58:
            if d.pointee.counted { count(endpoint) }
            endpoint.pointee.payloadBytes += UInt64(max(0, d.pointee.payloadLength))
            c.pointee.expires = now + configuration.icmpInactivityTimeout
        default:
            count(endpoint)
            c.pointee.expires = now + configuration.unknownTransportInactivityTimeout
        }
        return c.pointee.expires < before
    }

    @inline(__always) private func count(_ endpoint: UnsafeMutablePointer<Endpoint>) {
        endpoint.pointee.packets += 1
        endpoint.pointee.ipBytes += UInt64(decoded.pointee.statedIPLength)
    }

    // MARK: TCP

    private func updateTCP(_ c: UnsafeMutablePointer<Connection>, _ sender: UnsafeMutablePointer<Endpoint>,
                           _ receiver: UnsafeMutablePointer<Endpoint>, isOrig senderIsOrig: Bool) {
        var endpoint = sender, peer = receiver, isOrig = senderIsOrig
        let flags = decoded.pointee.tcpFlags
        let syn = flags & TCPFlag.syn != 0, ack = flags & TCPFlag.ack != 0
        let fin = flags & TCPFlag.fin != 0, rst = flags & TCPFlag.rst != 0

        count(endpoint)

        let sequence = decoded.pointee.sequence
        let length = Int64(decoded.pointee.payloadLength)
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
        if setFlags == 0 && (length > 0 || ack) && c.pointee.history.isOnly(UInt8(ascii: "H")) {
            // A connection that began with a SYN-ACK, now seeing an ACK or data: not a
            // stealth scan after all, so the SYN-ACK's sender was the responder (Zeek turns
            // it around here, and writes the history as if the SYN had been seen: "^h").
            flipAfterSYNACK(c)
            isOrig.toggle()
            endpoint = c.endpoint(isOrig: isOrig)
            peer = c.endpoint(isOrig: !isOrig)
        }
        if setFlags > 1 {
            if fin && rst { addHistory(c, endpoint, isOrig: isOrig, .inconsistent, "I") }
            else { addHistory(c, endpoint, isOrig: isOrig, .multiFlag, "Q") }
        } else if setFlags == 1 {
            if syn {
                // SYN and SYN-ACK share one "seen" mark, as in Zeek.
                let letter: Unicode.Scalar = ack ? "H" : "S"
                let at = UInt32(truncatingIfNeeded: relative)
                if endpoint.pointee.historySeen & HistoryLetter.syn.rawValue != 0 {
                    if at != endpoint.pointee.lastSYN { appendLetter(c, isOrig: isOrig, letter) }
                } else {
                    addHistory(c, endpoint, isOrig: isOrig, .syn, letter)
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
        if decoded.pointee.window == 0 && !syn && !fin && !rst {
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
            let acked = peer.pointee.relative(decoded.pointee.acknowledgment)
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

    /// Turns a connection around after its first packet, a SYN-ACK: the endpoints and the
    /// side tables' entries change places, and the history becomes "^h".
    private func flipAfterSYNACK(_ c: UnsafeMutablePointer<Connection>) {
        swap(&c.pointee.orig, &c.pointee.resp)
        c.pointee.flags.formSymmetricDifference(.origIsLow)
        c.pointee.history = History()
        _ = c.pointee.history.append(UInt8(ascii: "^"))
        _ = c.pointee.history.append(UInt8(ascii: "h"))
        let uid = c.pointee.uid
        let origSide = SideKey(uid: uid, isOrig: true), respSide = SideKey(uid: uid, isOrig: false)
        (rareCounts[origSide], rareCounts[respSide]) = (rareCounts[respSide], rareCounts[origSide])
        (holes[origSide], holes[respSide]) = (holes[respSide], holes[origSide])
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
            let uid = c.pointee.uid
            guard longHistories[uid, default: []].count + History.capacity < configuration.maximumHistory else {
                weirdCounter.pointee.note(.historyTruncated)
                return
            }
            longHistories[uid, default: []].append(cased)
        }
    }

    private func noteData(_ endpoint: UnsafeMutablePointer<Endpoint>, _ range: Range<Int64>, _ c: UnsafeMutablePointer<Connection>, isOrig: Bool) {
        if !endpoint.pointee.flags.contains(.holes) && endpoint.pointee.seen.insertInline(range) { return }
        let side = SideKey(uid: c.pointee.uid, isOrig: isOrig)
        var more = holes.removeValue(forKey: side) ?? []
        if endpoint.pointee.seen.insert(range, more: &more) {
            if more.count > configuration.maximumHoles {
                endpoint.pointee.seen.mergeClosest(more: &more)
                weirdCounter.pointee.note(.tooManyHoles)
            }
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
        path.advance(to: now)
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
