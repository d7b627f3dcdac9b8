/// TCP endpoint states, as Zeek names them; conn_state is derived from the pair.
public enum TCPEndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset
}

/// One direction of a connection: 80 bytes, all inline. Rare state (holes in the data, bad
/// checksum and zero-window counts) lives in the tracker's side tables, so that a table of
/// a million connections costs what it must.
struct Endpoint {
    var packets: UInt64 = 0
    var ipBytes: UInt64 = 0

    // TCP sequence space, relative to the first sequence number seen (the ISN after a SYN).
    var lastRelative: Int64 = 0     // relative position of lastRawSequence
    /// Highest seq + length (+1 for SYN/FIN) seen. UDP and ICMP have no sequence space:
    /// for them it counts payload bytes (`payloadBytes`).
    var highestEnd: Int64 = 0
    var highestAck: Int64 = 0       // highest ack of this endpoint's data, from the peer
    /// The first range of data seen; more ranges (holes) are kept by the tracker.
    var seen = SeenRanges()
    var lastRawSequence: UInt32 = 0
    // History bookkeeping: the sequence (mod 2^32) of the last SYN, FIN and RST recorded.
    var lastSYN: UInt32 = .max, lastFIN: UInt32 = .max, lastRST: UInt32 = .max
    var retransmissions: UInt32 = 0
    /// History letters already recorded for this side, as HistoryLetter bits.
    var historySeen: UInt16 = 0
    var state = TCPEndpointState.inactive
    var flags = EndpointFlags()

    var payloadBytes: UInt64 {
        get { UInt64(bitPattern: highestEnd) }
        set { highestEnd = Int64(bitPattern: newValue) }
    }

    /// Relative position of a raw sequence number, following wrap-around from the last one.
    func relative(_ raw: UInt32) -> Int64 {
        let delta = Int64(Int32(bitPattern: raw &- lastRawSequence))
        return lastRelative + delta
    }

    mutating func advance(raw: UInt32, relative: Int64) {
        if relative > lastRelative {
            lastRawSequence = raw
            lastRelative = relative
        }
    }

    /// Payload bytes by Zeek's rule: the span of sequence space used (or acknowledged),
    /// less the SYN and FIN octets.
    var tcpSize: Int64 {
        guard flags.contains(.sequenceKnown) else { return 0 }
        var size = max(highestEnd, highestAck)
        if flags.contains(.startedWithSYN) { size -= 1 }
        if flags.contains(.finSeen) && size > 0 { size -= 1 }
        return max(size, 0)
    }
}

struct EndpointFlags: OptionSet {
    var rawValue: UInt8 = 0
    static let sequenceKnown = EndpointFlags(rawValue: 1)
    static let startedWithSYN = EndpointFlags(rawValue: 2)
    static let gapReported = EndpointFlags(rawValue: 4)
    static let finSeen = EndpointFlags(rawValue: 8)
    /// The data seen has holes: the ranges past `seen` are in the tracker's side table.
    static let holes = EndpointFlags(rawValue: 16)
}

/// Merged ranges of sequence space seen. The first range is inline; in-order data, the
/// usual case, stays there. Ranges beyond it (holes) live in `more`, kept by the caller.
struct SeenRanges {
    private(set) var low: Int64 = 0, high: Int64 = 0 // empty while low == high

    var isEmpty: Bool { low == high }

    /// Adds `range` in place if that leaves no hole; false if it would (use `insert(_:more:)`).
    mutating func insertInline(_ range: Range<Int64>) -> Bool {
        if range.isEmpty { return true }
        if low == high {
            (low, high) = (range.lowerBound, range.upperBound)
            return true
        }
        if range.lowerBound >= low && range.lowerBound <= high {
            high = max(high, range.upperBound) // in order, or overlapping the end
            return true
        }
        return false
    }

    /// Adds `range`, merging with what overlaps or touches it; `more` holds the ranges past
    /// the first, sorted. Returns whether holes remain.
    mutating func insert(_ range: Range<Int64>, more: inout [Range<Int64>]) -> Bool {
        if more.isEmpty && insertInline(range) { return false }
        var merged = range
        var kept: [Range<Int64>] = []
        for existing in [low..<high] + more where !existing.isEmpty {
            if existing.upperBound < merged.lowerBound || existing.lowerBound > merged.upperBound {
                kept.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            }
        }
        kept.append(merged)
        kept.sort { $0.lowerBound < $1.lowerBound }
        (low, high) = (kept[0].lowerBound, kept[0].upperBound)
        more = Array(kept.dropFirst())
        return !more.isEmpty
    }

    /// Joins the two ranges with the smallest gap between them (as if the gap had been
    /// seen): how the number of ranges kept stays bounded.
    mutating func mergeClosest(more: inout [Range<Int64>]) {
        guard !more.isEmpty else { return }
        var all = [low..<high] + more
        var best = 0
        for i in 1..<(all.count - 1) where all[i + 1].lowerBound - all[i].upperBound < all[best + 1].lowerBound - all[best].upperBound {
            best = i
        }
        all[best] = all[best].lowerBound..<all[best + 1].upperBound
        all.remove(at: best + 1)
        (low, high) = (all[0].lowerBound, all[0].upperBound)
        more = Array(all.dropFirst())
    }

    /// Bytes in start..<end that were never seen.
    func unseen(below end: Int64, from start: Int64, more: [Range<Int64>] = []) -> Int64 {
        guard end > start else { return 0 }
        var covered: Int64 = 0
        func add(_ l: Int64, _ h: Int64) {
            let a = max(l, start), b = min(h, end)
            if b > a { covered += b - a }
        }
        add(low, high)
        for range in more { add(range.lowerBound, range.upperBound) }
        return end - start - covered
    }
}

/// The first 16 history letters of a connection, inline in two words; the tracker keeps any
/// more. Letters are never 0, so the count is where the zero bytes begin.
struct History {
    private var words: (UInt64, UInt64) = (0, 0)

    static let capacity = 16

    var count: Int {
        words.1 != 0 ? 8 + (71 - words.1.leadingZeroBitCount) / 8 : (71 - words.0.leadingZeroBitCount) / 8
    }
    var isEmpty: Bool { words.0 == 0 }

    /// Whether the history is exactly this one letter.
    func isOnly(_ letter: UInt8) -> Bool { words.0 == UInt64(letter) && words.1 == 0 }

    /// Adds a letter; false when full.
    mutating func append(_ letter: UInt8) -> Bool {
        let n = count
        guard n < Self.capacity else { return false }
        let shift = UInt64(n % 8) * 8
        if n < 8 { words.0 |= UInt64(letter) << shift } else { words.1 |= UInt64(letter) << shift }
        return true
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        let n = count
        out.reserveCapacity(n)
        for i in 0..<n {
            let word = i < 8 ? words.0 : words.1
            out.append(UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8)))
        }
        return out
    }
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
    /// When the connection is due to be logged and forgotten (inactivity or close delay).
    var expires: UInt64 = 0
    /// Links of the expiry wheel's list this connection is in (slot + 1; 0 = none).
    var wheelPrevious: UInt32 = 0, wheelNext: UInt32 = 0
    var key: PackedKey
    var flags = ConnectionFlags()
    /// Which of the wheel's lists it is in.
    var wheelList: UInt8 = 0
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

    /// Zeek's conn_state from the endpoint states; `history` is the whole history.
    func state(history: [UInt8]) -> String {
        switch proto {
        case 6:
            let os = orig.state, rs = resp.state
            let oInactive = os == .inactive || os == .partial
            let rInactive = rs == .inactive || rs == .partial
            if rs == .reset {
                if os == .synSent || os == .synAckSent || (os == .reset && orig.tcpSize == 0 && resp.tcpSize == 0) { return "REJ" }
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
    static func looksLikeRSTOS0(_ history: [UInt8]) -> Bool {
        var i = 0
        if i < history.count && history[i] == UInt8(ascii: "^") { i += 1 }
        guard i < history.count, history[i] == UInt8(ascii: "S") else { return false }
        i += 1
        while i < history.count {
            switch history[i] {
            case UInt8(ascii: "R"): return true
            case UInt8(ascii: "H"), UInt8(ascii: "A"), UInt8(ascii: "F"), UInt8(ascii: "G"), UInt8(ascii: "I"), UInt8(ascii: "Q"): return false
            default: i += 1
            }
        }
        return false
    }
}

struct ConnectionFlags: OptionSet {
    var rawValue: UInt8 = 0
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

/// History letters, as bits per endpoint.
enum HistoryLetter: UInt16 {
    case syn = 1, ack = 4, data = 8, fin = 16, rst = 32, corrupt = 64, retransmit = 128
    case zeroWindow = 256, gap = 512, inconsistent = 1024, multiFlag = 2048
}

extension UnsafeMutablePointer where Pointee == Connection {
    /// The originator's or responder's endpoint, in place.
    @inline(__always) func endpoint(isOrig: Bool) -> UnsafeMutablePointer<Endpoint> {
        // Both offsets are constants the optimizer folds: no lookup per packet.
        let offset = isOrig ? MemoryLayout<Connection>.offset(of: \.orig)! : MemoryLayout<Connection>.offset(of: \.resp)!
        return UnsafeMutableRawPointer(self).advanced(by: offset).assumingMemoryBound(to: Endpoint.self)
    }
}
