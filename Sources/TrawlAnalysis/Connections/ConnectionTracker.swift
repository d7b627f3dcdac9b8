#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Tracks connections from decoded packets, with Zeek's semantics for roles, TCP endpoint
/// states, history and sizes, and hands each finished connection to a sink.
public final class ConnectionTracker {
    public let configuration: AnalysisConfiguration
    /// The configuration's local networks, ready for the question asked of every address logged.
    private let localNetworks: SubnetSet
    func isLocal(_ address: IPAddress) -> Bool { localNetworks.contains(address) }
    /// Finished connections become records and reach the sink on this queue's thread.
    /// Where finished connections go (the log thread).
    public let logStage: ConnectionLogStage
    let table: ConnectionTable
    /// The packet being analysed, at a stable address shared with the packet path.
    let decoded: UnsafeMutablePointer<DecodedPacket>
    /// Link layers, IP, fragments, transports and tunnels, up to `track`.
    let path: PacketPath
    @exclusivity(unchecked) var uids: SplitMix64
    var evictionRandom = SplitMix64(seed: 0x5eed) // its numbers pick eviction victims
    /// The packet's time, and the timers' clock: network time, which never goes back.
    @exclusivity(unchecked) private(set) var now: UInt64 = 0
    @exclusivity(unchecked) private(set) var clock: UInt64 = 0
    @exclusivity(unchecked) private var nextSweep: UInt64 = 0
    /// Set when a packet may have brought its connection's due time forward (a close, a
    /// reset), so that the wheel is told; most packets only push it later.
    @exclusivity(unchecked) var dueMayBeEarlier = false
    /// The shortest inactivity timeout of any transport: a connection seen more lately than
    /// this cannot have timed out.
    let shortestInactivityTimeout: UInt64
    /// `configuration.interactivePorts`, as a bitmap.
    let interactivePorts: PortSet
    private let likelyTCPServerPorts: PortSet
    private let likelyUDPServerPorts: PortSet

    /// The rare state of a few connections (SideTables.swift).
    var side = SideTables()

    /// Everything odd in the traffic, by Zeek's weird names, and the bounds that were hit;
    /// at a stable address shared with the packet path.
    let weirdCounter: UnsafeMutablePointer<Weirds>
    public var weirds: [String: UInt64] { weirdCounter.pointee.counts }
    /// Turns weirds into weird.log rows.
    let weirdReporter: WeirdReporter
    /// weird.log rows handed to the log stage, and weirds sampling or the policy left out.
    public var weirdsLogged: UInt64 { weirdReporter.logged }
    public var weirdsNotLogged: UInt64 { weirdReporter.sampledOut }
    /// Of those, the weirds not logged because a bounded table of the reporter was full.
    public var weirdsNotRemembered: UInt64 { weirdReporter.overflow }
    /// The names packet sources reported weirds under, each once, for sampling by name.
    private var sourceWeirdNames: [String: Int] = [:]
    static let sourceWeirdNameBound = 256

    /// A weird a packet source reported (Zeek's PktSrc::Weird): counted by its name, and
    /// logged as a weird about nothing in particular at the current network time, under
    /// Zeek's policy when the name is one of Zeek's. Past `sourceWeirdNameBound` other
    /// names, new ones are counted only.
    public func sourceWeird(_ weird: SourceWeird) {
        weirdCounter.pointee.note(named: weird.name)
        if let known = Weird(rawValue: weird.name), known != .sourceReported {
            return weirdReporter.sourceWeird(weird, known: known) // Zeek's policy for its own names
        }
        var index = sourceWeirdNames[weird.name]
        if index == nil && sourceWeirdNames.count < Self.sourceWeirdNameBound {
            index = sourceWeirdNames.count
            sourceWeirdNames[weird.name] = index
        }
        if let index { weirdReporter.sourceWeird(weird, index: index) }
    }
    @exclusivity(unchecked) public private(set) var packetsAnalyzed: UInt64 = 0
    /// What stats.log, capture_loss.log and known_hosts draw on (TrackerStatistics.swift).
    @exclusivity(unchecked) public internal(set) var statistics = TrackerStatistics()
    /// Bytes found missing by the acknowledgment being handled.
    @exclusivity(unchecked) var missingInTrim: UInt64 = 0
    /// Packets that made no connection, with nothing wrong with them (ARP, ESP, IGMP, ...).
    public var packetsIgnored: UInt64 { path.ignored }
    /// IP packets left to the other parts of the traffic (Cluster::shard).
    public var packetsOfOtherShards: UInt64 { path.otherShards }
    /// IP fragments handed to reassembly, and datagrams put together from them.
    public var fragmentsSeen: UInt64 { path.fragments.fragments }
    public var datagramsReassembled: UInt64 { path.fragments.reassembled }
    /// Bytes of fragments held for reassembly now.
    public var fragmentBytesHeld: Int { path.fragments.bytesHeld }
    public var activeConnections: Int { table.count }
    /// The most connections open at once so far.
    public private(set) var peakConnections = 0
    var evictedConnections: UInt64 = 0

    /// Tracks connections and hands the finished ones to a log stage of its own, feeding `sink`.
    public convenience init(configuration: AnalysisConfiguration = AnalysisConfiguration(), sink: ConnectionSink, seed: UInt64 = 0) {
        self.init(configuration: configuration, logStage: ConnectionLogStage(sink: sink, localNetworks: configuration.localNetworks,
                                                                          peer: configuration.weirds.peer),
                  seed: seed)
    }

    public init(configuration: AnalysisConfiguration, logStage: ConnectionLogStage, seed: UInt64 = 0) {
        self.configuration = configuration
        localNetworks = SubnetSet(configuration.localNetworks)
        self.logStage = logStage
        let start = seed != 0 ? seed : SplitMix64.freshSeed()
        uids = SplitMix64(seed: start)
        table = ConnectionTable(seed: start ^ 0x7ab1e)
        decoded = .allocate(capacity: 1)
        decoded.initialize(to: DecodedPacket())
        let reporter = WeirdReporter(settings: configuration.weirds, decoded: decoded)
        weirdReporter = reporter
        weirdCounter = .allocate(capacity: 1)
        weirdCounter.initialize(to: Weirds(reporter: reporter))
        shortestInactivityTimeout = min(configuration.tcpInactivityTimeout, configuration.udpInactivityTimeout,
                                        configuration.icmpInactivityTimeout, configuration.unknownTransportInactivityTimeout)
        interactivePorts = PortSet(configuration.interactivePorts)
        likelyTCPServerPorts = PortSet(configuration.likelyServerPorts(proto: 6))
        likelyUDPServerPorts = PortSet(configuration.likelyServerPorts(proto: 17))
        path = PacketPath(configuration: configuration, decoded: decoded, weirds: weirdCounter)
        path.attach(to: self)
        reporter.attach(to: self)
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
        // Zeek sees time in microseconds (libpcap's default precision cuts a nanosecond
        // timestamp down), so durations and timeouts are measured from the same instants.
        now = packet.timestampNanoseconds / 1000 &* 1000
        if now > clock { clock = now }
        if clock >= nextSweep { sweep() }
        path.process(packet, linkType: linkType, at: now)
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

    /// Has the log thread send on what it holds (the rows so far reach their writer's
    /// flush): for a timer, so that a quiet link's records do not wait for more.
    public func flushLogs() {
        logStage.flush()
    }

    // MARK: Connections

    /// Adds the decoded packet to its connection, which it makes if there is none; returns
    /// the connection's slot (valid until the next packet).
    @discardableResult
    func track(parent: UInt64?, stack: UInt64 = 0) -> ConnectionTable.Slot? {
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
            weirdCounter.pointee.connectionSlot = slot
            if fireTimers(c, at: clock) || (proto == 6 && d.pointee.tcpFlags & TCPFlag.syn != 0 && isReuse(c)) {
                logAndForget(slot)
            } else {
                if _slowPath(stack != 0 || c.pointee.flags.contains(.tunnelled)) { checkEncapsulation(c, parent: parent, stack: stack) }
                let last = c.pointee.last
                dueMayBeEarlier = false
                update(c, isOrig: isFromOriginator(c, key, origPort))
                if _slowPath(dueMayBeEarlier || c.pointee.last < last) { table.reschedule(slot, due: dueTime(c)) }
                return slot
            }
        }
        let origIsLow = key.lowAddress == d.pointee.source && key.lowPort == origPort
        var connection = Connection(key: key, uid: newUID(), originatorIsLow: origIsLow, start: now)
        if shouldFlipNewConnection() { connection.flip() }
        attachApplication(&connection)
        if proto == 6 {
            // Zeek's TCP expire timer, from the connection's making.
            connection.timerA = clock &+ configuration.tcpSYNTimeout
            connection.tcp.insert(.expireA)
        }
        if let parent {
            connection.flags.insert(.tunnelled)
            side.tunnels[connection.uid] = TunnelHistory(stack: stack, parents: [parent])
        }
        if table.count >= min(configuration.maximumConnections, ConnectionTable.maximumSlots) { evictOne() }
        statistics.connections.made.count(proto: proto)
        let slot = table.insert(connection, key: key)
        if table.count > peakConnections { peakConnections = table.count }
        let c = table.connection(slot)
        weirdCounter.pointee.connectionSlot = slot
        update(c, isOrig: isFromOriginator(c, key, origPort))
        table.schedule(slot, due: dueTime(c))
        return slot
    }

    /// Zeek's Connection::CheckEncapsulation: a packet in other tunnels than the last one
    /// (a reply through another VXLAN, say) changes the connection's encapsulation; the
    /// innermost tunnel joins its tunnel_parents, up to Zeek's
    /// Tunnel::max_changes_per_connection changes, past which it is an analyzer limit (X).
    private func checkEncapsulation(_ c: UnsafeMutablePointer<Connection>, parent: UInt64?, stack: UInt64) {
        let uid = c.pointee.uid
        var history = side.tunnels[uid] ?? TunnelHistory(stack: 0, parents: [])
        guard history.stack != stack else { return }
        if history.changes >= Self.maximumTunnelChanges {
            weirdCounter.pointee.note(.tunnelMaxChangesPerConnectionExceeded)
            markAnalyzerLimit(c)
        } else {
            history.changes += 1
            if let parent, !history.parents.contains(parent) { history.parents.append(parent) }
        }
        history.stack = stack
        side.tunnels[uid] = history
        c.pointee.flags.insert(.tunnelled)
    }

    /// Zeek's Tunnel::max_changes_per_connection.
    static let maximumTunnelChanges = 5

    // What the packet path asks of a connection it found, for the tunnel inside it.
    func uid(_ slot: ConnectionTable.Slot) -> UInt64 { table.connection(slot).pointee.uid }
    func responderPort(_ slot: ConnectionTable.Slot) -> UInt16 { table.connection(slot).pointee.respPort }
    func tunnelViolated(_ slot: ConnectionTable.Slot) -> Bool { table.connection(slot).pointee.flags.contains(.tunnelViolated) }
    func markTunnelViolated(_ slot: ConnectionTable.Slot) { table.connection(slot).pointee.flags.insert(.tunnelViolated) }

    /// Zeek's history letter X: an analyzer limit was reached (once per connection).
    func noteAnalyzerLimit(_ slot: ConnectionTable.Slot) { markAnalyzerLimit(table.connection(slot)) }

    func markAnalyzerLimit(_ c: UnsafeMutablePointer<Connection>) {
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

    func isLikelyServerPort(_ port: UInt16, proto: UInt8) -> Bool {
        proto == 6 ? likelyTCPServerPorts.contains(port) : likelyUDPServerPorts.contains(port)
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

    /// Zeek's IsReuse: a SYN (or a SYN-ACK before anything from the originator) that starts
    /// a new connection in place of this one: after a close, or with another initial
    /// sequence number.
    private func isReuse(_ c: UnsafeMutablePointer<Connection>) -> Bool {
        let d = decoded
        guard !d.pointee.badTCPOffset, d.pointee.tcpFlags & TCPFlag.syn != 0 else { return false }
        var first = c.pointee.orig
        if d.pointee.tcpFlags & TCPFlag.ack != 0 {
            guard c.pointee.orig.state == .inactive else { return false }
            first = c.pointee.resp
        }
        let closed = c.pointee.orig.flags.contains(.didClose) || c.pointee.resp.flags.contains(.didClose)
        if !closed {
            let base = d.pointee.sequence
            if base == first.startSeq { return false }
            if d.pointee.tcpFlags & TCPFlag.ack == 0 && first.state == .synAckSent && c.pointee.resp.state == .inactive
                && base == c.pointee.resp.startSeq { return false }
            weirdCounter.pointee.note(first.state == .synSent ? .synSeqJump : .activeConnectionReuse)
        }
        return true
    }

    /// Counts the decoded packet into its connection.
    private func update(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool) {
        let d = decoded
        // A TCP header cut short: the connection is there, the packet is not analysed.
        if d.pointee.unusable {
            weirdCounter.pointee.note(d.pointee.badTCPOffset ? .badTCPHeaderLen : .truncatedHeader, connectionSource: .tcp)
            return
        }
        // A packet with a bad checksum is noted and otherwise ignored: it does not count, nor
        // move the connection's last time.
        guard d.pointee.checksumValid else {
            switch d.pointee.proto {
            case 6, 17:
                bumpScaled(c, c.endpoint(isOrig: isOrig), letter: "C") { $0.corrupt += 1; return $0.corrupt }
                weirdCounter.pointee.note(d.pointee.proto == 6 ? .badTCPChecksum : .badUDPChecksum)
            default:
                weirdCounter.pointee.note(.badICMPChecksum)
            }
            return
        }
        let endpoint = c.endpoint(isOrig: isOrig)
        switch d.pointee.proto {
        case 6:
            count(endpoint)
            if !(configuration.headerPrediction && predicted(c, sentByOrig: isOrig)) { processTCP(c, sentByOrig: isOrig) }
        case 17:
            if _slowPath(d.pointee.udpStatedLength != d.pointee.udpLength) {
                weirdCounter.pointee.note(.udpDatagramLengthMismatch, detail: .pair(d.pointee.udpStatedLength, d.pointee.udpLength))
            }
            c.pointee.last = now
            let bit = HistoryMark.data.bit(isOrig: isOrig)
            if c.pointee.historySeen & bit == 0 {
                c.pointee.historySeen |= bit
                appendLetter(c, isOrig: isOrig, "D")
            }
            endpoint.pointee.payloadBytes += UInt64(d.pointee.payloadLength)
            // An application analyzer reads it before it is counted (it may turn the roles
            // around; the count then goes where this side's was, as in Zeek).
            if c.pointee.flags.contains(.applicationAnalyzer) { applicationMessage(c, isOrig: isOrig) }
            count(endpoint)
        case 1, 58:
            c.pointee.last = now
            if d.pointee.counted { count(endpoint) }
            endpoint.pointee.payloadBytes += UInt64(max(0, d.pointee.payloadLength))
        default:
            c.pointee.last = now
            count(endpoint)
        }
    }

    @inline(__always) private func count(_ endpoint: UnsafeMutablePointer<Endpoint>) {
        endpoint.pointee.packets += 1
        endpoint.pointee.ipBytes += UInt64(decoded.pointee.statedIPLength)
    }

    // MARK: Expiry and logging

    private func sweep() {
        nextSweep = (clock / 1_000_000_000 + 1) * 1_000_000_000
        let due = table.due(at: clock) { self.dueTime(self.table.connection($0)) }
        var ended: [ConnectionTable.Slot] = []
        for slot in due {
            let c = table.connection(slot)
            if fireTimers(c, at: clock) { ended.append(slot) } else { table.schedule(slot, due: dueTime(c)) }
        }
        if !ended.isEmpty { logDue(ended) }
        path.advance(to: now)
    }

    func logAndForget(_ slot: ConnectionTable.Slot) {
        let key = table.key(of: slot)
        log(table.remove(slot), key: key)
    }

    /// Logs the connections whose timers ended them (off the wheel already), oldest first,
    /// and takes them out of the table.
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
        statistics.connections.ended.count(proto: c.proto)
        if _slowPath(c.weirdsLogged & Weird.rememberedBit != 0) { weirdReporter.forget(connection: c.uid) }
        var finished = FinishedConnection(connection: c, key: key)
        side.take(for: c, into: &finished)
        logStage.append(finished, buildRecord: buildRecord)
    }
}
