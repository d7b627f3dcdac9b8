/// TCP endpoint states, as Zeek numbers them; conn_state is derived from the pair.
public enum TCPEndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset

    /// Still in the handshake (Zeek's is_handshake).
    @inline(__always) var isHandshake: Bool { rawValue <= TCPEndpointState.synAckSent.rawValue }
}

/// One direction of a connection: 72 bytes, all inline. For TCP it is Zeek's TCP_Endpoint
/// with its reassembler's positions (the data itself is never kept: only where it was);
/// rare state (ranges of data above a hole, the scaled counts) lives in the tracker's side
/// tables, so that a table of a million connections costs what it must.
struct Endpoint {
    var packets: UInt64 = 0
    var ipBytes: UInt64 = 0
    /// TCP: the sequence number after the last one seen, with the times it wrapped above bit
    /// 32 (Zeek's last_seq and seq_wraps). UDP and ICMP: the payload bytes.
    var lastSeq: UInt64 = 0
    /// The highest acknowledgment of this endpoint's data, with its wraps (ack_seq, ack_wraps).
    var ackSeq: UInt64 = 0
    /// Reassembly: the relative sequence number up to which the data was seen in order or
    /// given up as a gap (last_reassem_seq).
    var delivered: UInt64 = 1
    /// The relative sequence number just past the last FIN (FIN_seq).
    var finSeq: UInt64 = 0
    var startSeq: UInt32 = 0
    /// Delivered bytes not yet acknowledged: `delivered` less the reassembler's trim_seq
    /// (negative in the one case where the trim runs ahead, a partial connection's start).
    var unacknowledged: Int32 = 0
    /// The relative sequence number (low 32 bits) of the last SYN, FIN and RST in the history.
    var lastSYN: UInt32 = 0, lastFIN: UInt32 = 0, lastRST: UInt32 = 0
    var state = TCPEndpointState.inactive
    var previousState = TCPEndpointState.inactive
    var flags = EndpointFlags()

    var payloadBytes: UInt64 {
        get { lastSeq }
        set { lastSeq = newValue }
    }

    var seqWraps: UInt32 { UInt32(truncatingIfNeeded: lastSeq >> 32) }
    var last32: UInt32 { UInt32(truncatingIfNeeded: lastSeq) }
    var ackWraps: UInt32 { UInt32(truncatingIfNeeded: ackSeq >> 32) }
    var ack32: UInt32 { UInt32(truncatingIfNeeded: ackSeq) }

    /// Zeek's InitStartSeq, InitAckSeq and InitLastSeq: the sequence space starts at `start`
    /// (the wraps counted so far stay).
    mutating func beginSequence(at start: UInt32, last: UInt32) {
        startSeq = start
        ackSeq = (ackSeq & ~0xffff_ffff) | UInt64(start)
        lastSeq = (lastSeq & ~0xffff_ffff) | UInt64(last)
    }

    /// Zeek's UpdateLastSeq: a lower number than the last means the space wrapped.
    mutating func advanceLastSeq(to sequence: UInt32) {
        if sequence < last32 { lastSeq &+= 1 << 32 }
        lastSeq = (lastSeq & ~0xffff_ffff) | UInt64(sequence)
    }

    /// Zeek's update_ack_seq: the peer acknowledged this endpoint's data up to `ack`, if that
    /// is further than before (an ack of 0 far ahead is more likely broken than a wrap).
    mutating func acknowledge(_ ack: UInt32) {
        let delta = Int32(bitPattern: ack &- ack32)
        guard delta > 0, !(ack == 0 && delta > ConnectionTracker.tooLargeSequenceDelta) else { return }
        if ack < ack32 { ackSeq &+= 1 << 32 }
        ackSeq = (ackSeq & ~0xffff_ffff) | UInt64(ack)
    }

    /// The reassembler's trim_seq: data below it was acknowledged and is no longer wanted.
    var trimSeq: UInt64 { delivered &- UInt64(bitPattern: Int64(unacknowledged)) }

    /// A sequence number in this endpoint's space, relative to its start (Zeek's
    /// ToRelativeSeqSpace: wrapping, as Zeek's unsigned arithmetic does).
    @inline(__always) func relative(_ sequence: UInt32, wraps: UInt32) -> UInt64 {
        (UInt64(wraps) << 32 | UInt64(sequence)) &- UInt64(startSeq)
    }

    /// Zeek's TCP_Endpoint::Size: the sequence space used or acknowledged, less the SYN
    /// and FIN octets; with Zeek's unsigned arithmetic, wrap-arounds included.
    func size(peer: TCPEndpointState) -> UInt64 {
        if previousState == .synSent && state == .reset && peer == .inactive && !noDataAcknowledged { return 0 }
        var size = max(lastSeq, ackSeq) &- UInt64(startSeq)
        if size != 0 { size -= 1 }
        if flags.contains(.finSeen) && size != 0 { size -= 1 }
        return size
    }

    /// None of this endpoint's data was acknowledged (one octet allowed for the SYN).
    var noDataAcknowledged: Bool {
        let start = UInt64(startSeq)
        return ackSeq == start || ackSeq == start + 1
    }

    /// Clean for gap accounting: established, or closed from established.
    var isClean: Bool { state == .established || (state == .closed && previousState == .established) }
}

struct EndpointFlags: OptionSet {
    var rawValue: UInt16 = 0
    /// A FIN was seen (FIN_cnt > 0).
    static let finSeen = EndpointFlags(rawValue: 1)
    /// Its close was reported (did_close).
    static let didClose = EndpointFlags(rawValue: 2)
    /// The reassembler gave up on this direction (skip_deliveries): too much data above a hole.
    static let skipDeliveries = EndpointFlags(rawValue: 4)
    /// Its end of data was reported (did_EOF).
    static let didEOF = EndpointFlags(rawValue: 8)
    /// Data above a hole: its ranges are in the tracker's side table.
    static let ranges = EndpointFlags(rawValue: 16)
}

/// A TCP connection's own state beside its endpoints' (Zeek's TCPSessionAdapter), and
/// which of its timers are set.
struct TCPConnectionFlags: OptionSet {
    var rawValue: UInt16 = 0
    /// Began without a clean SYN from the originator (is_partial).
    static let partial = TCPConnectionFlags(rawValue: 1)
    static let firstOrigPacket = TCPConnectionFlags(rawValue: 2)
    static let firstRespPacket = TCPConnectionFlags(rawValue: 4)
    /// A close waits for the data before it (close_deferred), and whether it was a FIN's.
    static let closeDeferred = TCPConnectionFlags(rawValue: 8)
    static let deferredFinish = TCPConnectionFlags(rawValue: 16)
    /// Finished or reset: the expire and attempt timers do nothing more (!is_active).
    static let notActive = TCPConnectionFlags(rawValue: 32)
    /// Past the handshake: the inactivity timeout is TCP's, not the initial (UDP's) one.
    static let longTimeout = TCPConnectionFlags(rawValue: 64)
    /// timerA is the expire timer's next run, or the delete timer of a completed close.
    static let expireA = TCPConnectionFlags(rawValue: 128)
    static let deleteArmed = TCPConnectionFlags(rawValue: 256)
    /// timerC is the attempt timer, or a second expire timer (after a half close).
    static let attemptArmed = TCPConnectionFlags(rawValue: 512)
    static let expireC = TCPConnectionFlags(rawValue: 1024)
    /// An interactive service (FTP, SSH, telnet, rlogin): Zeek's conn/inactivity.zeek gives
    /// it an hour of inactivity.
    static let interactive = TCPConnectionFlags(rawValue: 2048)
}

/// A connection's two addresses, ports and protocol as a table stores them: an IPv4
/// address takes its 4 bytes; an IPv6 connection keeps the low 4 bytes of each address
/// here and the full addresses in the table's side storage.
struct PackedKey: Equatable {
    var lowAddress: UInt32, highAddress: UInt32
    var lowPort: UInt16, highPort: UInt16
    var proto: UInt8
    var isV6: Bool

    init(_ key: ConnectionKey) {
        lowAddress = UInt32(truncatingIfNeeded: key.lowAddress.low)
        highAddress = UInt32(truncatingIfNeeded: key.highAddress.low)
        lowPort = key.lowPort
        highPort = key.highPort
        proto = key.proto
        isV6 = !(key.lowAddress.isV4 && key.highAddress.isV4)
    }
}

/// A connection being tracked: a plain value of 232 bytes, no references, so that the table
/// can keep it in raw memory and move it with a copy.
struct Connection {
    /// Zeek-style uid, formatted ("C" and base 62) only when logged; never 0 (0 marks a free slot).
    var uid: UInt64
    var start: UInt64
    var last: UInt64
    /// TCP timers (which is set: `tcp`): the expire timer's next run or the delete timer;
    /// the attempt timer or a second expire timer. UDP: the DNS analyzer's timer. Not set:
    /// UInt64.max, so that one comparison tells whether any is due.
    var timerA: UInt64 = .max, timerC: UInt64 = .max
    /// Links of the expiry wheel's list this connection is in (slot + 1; 0 = none).
    var wheelPrevious: UInt32 = 0, wheelNext: UInt32 = 0
    var key: PackedKey
    var flags = ConnectionFlags()
    /// Which of the wheel's lists it is in.
    var wheelList: UInt8 = 0
    /// The frequent connection weirds (`Weird.connectionBit`) already let into weird.log for
    /// this connection (a byte that was padding).
    var weirdsLogged: UInt8 = 0
    var tcp = TCPConnectionFlags()
    /// History letters already recorded, by kind and role (`HistoryMark`).
    var historySeen: UInt32 = 0
    var history = History()
    var orig = Endpoint()
    var resp = Endpoint()

    init(key: ConnectionKey, uid: UInt64, originatorIsLow: Bool, start: UInt64) {
        self.key = PackedKey(key)
        self.uid = uid
        self.start = start
        last = start
        if originatorIsLow { flags.insert(.origIsLow) }
    }

    var proto: UInt8 { key.proto }
    var origIsLow: Bool { flags.contains(.origIsLow) }
    var origPort: UInt16 { origIsLow ? key.lowPort : key.highPort }
    var respPort: UInt16 { origIsLow ? key.highPort : key.lowPort }

    /// Turns the roles around. Only a new connection is flipped, before its first packet is
    /// counted, so there is nothing to swap but the roles; the history records the flip.
    mutating func flip() {
        precondition(history.isEmpty && orig.packets == 0 && resp.packets == 0, "only a new connection is flipped")
        if origIsLow { flags.remove(.origIsLow) } else { flags.insert(.origIsLow) }
        _ = history.append(UInt8(ascii: "^"))
    }

    /// The payload bytes of each side as conn.log has them: for TCP, Zeek's endpoint sizes.
    var origSize: UInt64 { proto == 6 ? orig.size(peer: resp.state) : orig.payloadBytes }
    var respSize: UInt64 { proto == 6 ? resp.size(peer: orig.state) : resp.payloadBytes }

    /// Zeek's conn_state from the endpoint states; `history` is the whole history.
    func state<Letters: Collection>(history: Letters) -> String where Letters.Element == UInt8 {
        switch proto {
        case 6:
            let os = orig.state, rs = resp.state
            let oInactive = os == .inactive || os == .partial
            let rInactive = rs == .inactive || rs == .partial
            if rs == .reset {
                if os == .synSent || os == .synAckSent || (os == .reset && origSize == 0 && respSize == 0) { return "REJ" }
                return oInactive ? "RSTRH" : "RSTR"
            }
            if os == .reset {
                if rInactive {
                    return Self.looksLikeRSTOS0(history) ? "RSTOS0" : "OTH"
                }
                return "RSTO"
            }
            if rs == .closed && os == .closed { return "SF" }
            if os == .closed { return rInactive ? "SH" : "S2" }
            if rs == .closed { return oInactive ? "SHR" : "S3" }
            if os == .synSent && rs == .inactive { return "S0" }
            if os == .established && rs == .established { return "S1" }
            return "OTH"
        case 17:
            // A UDP side is active once it sent a packet (only valid ones are counted).
            if orig.packets > 0 { return resp.packets > 0 ? "SF" : "S0" }
            return resp.packets > 0 ? "SHR" : "OTH"
        default:
            return "OTH"
        }
    }

    /// /^\^?S[^HAFGIQ]*R.*/
    static func looksLikeRSTOS0<Letters: Collection>(_ history: Letters) -> Bool where Letters.Element == UInt8 {
        var letters = history.makeIterator()
        var letter = letters.next()
        if letter == UInt8(ascii: "^") { letter = letters.next() }
        guard letter == UInt8(ascii: "S") else { return false }
        while let next = letters.next() {
            switch next {
            case UInt8(ascii: "R"): return true
            case UInt8(ascii: "H"), UInt8(ascii: "A"), UInt8(ascii: "F"), UInt8(ascii: "G"), UInt8(ascii: "I"), UInt8(ascii: "Q"): return false
            default: continue
            }
        }
        return false
    }
}

struct ConnectionFlags: OptionSet {
    var rawValue: UInt16 = 0
    static let origIsLow = ConnectionFlags(rawValue: 1)
    /// Letters past the inline 16 are in the tracker's side table.
    static let longHistory = ConnectionFlags(rawValue: 2)
    /// Carried in a tunnel: the parent's uid is in the tracker's side table.
    static let tunnelled = ConnectionFlags(rawValue: 4)
    /// Has bad-checksum or zero-window counts in the tracker's side table.
    static let rareCounts = ConnectionFlags(rawValue: 8)
    /// A tunnel analyzer gave up on this connection (Zeek's analyzer violation).
    static let tunnelViolated = ConnectionFlags(rawValue: 16)
    /// The history has its X: an analyzer limit was reached.
    static let analyzerLimit = ConnectionFlags(rawValue: 32)
    /// UDP outside bare mode to a port of one of Zeek's analyzers that change conn.log (see
    /// `Application/`): which one, and whether it has seen its first message or turned the
    /// connection around.
    static let applicationAnalyzer = ConnectionFlags(rawValue: 64)
    static let dnsAnalyzer = ConnectionFlags(rawValue: 128)
    static let ntpAnalyzer = ConnectionFlags(rawValue: 256)
    static let applicationMessageSeen = ConnectionFlags(rawValue: 512)
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

    /// A key exactly as stored (the table's own copy of it).
    init(proto: UInt8, low: IPAddress, lowPort: UInt16, high: IPAddress, highPort: UInt16) {
        (self.proto, lowAddress, self.lowPort, highAddress, self.highPort) = (proto, low, lowPort, high, highPort)
    }

    /// Ends in a fixed order, so both directions find the same key; a one-way ICMP
    /// message's key keeps the packet's order, as Zeek's does.
    init(proto: UInt8, _ a: IPAddress, _ pa: UInt16, _ b: IPAddress, _ pb: UInt16, oneWay: Bool = false) {
        self.proto = proto
        if oneWay || (a, pa) < (b, pb) {
            (lowAddress, lowPort, highAddress, highPort) = (a, pa, b, pb)
        } else {
            (lowAddress, lowPort, highAddress, highPort) = (b, pb, a, pa)
        }
    }
}

extension UnsafeMutablePointer where Pointee == Connection {
    /// The originator's or responder's endpoint, in place.
    @inline(__always) func endpoint(isOrig: Bool) -> UnsafeMutablePointer<Endpoint> {
        // Both offsets are constants the optimizer folds: no lookup per packet.
        let offset = isOrig ? MemoryLayout<Connection>.offset(of: \.orig)! : MemoryLayout<Connection>.offset(of: \.resp)!
        return UnsafeMutableRawPointer(self).advanced(by: offset).assumingMemoryBound(to: Endpoint.self)
    }
}
