/// TCP endpoint states, as Zeek names them; conn_state is derived from the pair.
public enum TCPEndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset
}

/// One direction of a connection. Fields are ordered widest first, so that the struct packs
/// into 112 bytes.
struct Endpoint {
    var packets: UInt64 = 0
    var ipBytes: UInt64 = 0
    /// UDP and ICMP payload bytes.
    var payloadBytes: UInt64 = 0

    // TCP sequence space, relative to the first sequence number seen (the ISN after a SYN).
    var lastRelative: Int64 = 0     // relative position of lastRawSequence
    var highestEnd: Int64 = 0       // highest seq + length (+1 for SYN/FIN) seen
    var highestAck: Int64 = 0       // highest ack of this endpoint's data, from the peer
    /// Data seen, as merged ranges of relative sequence numbers (usually one).
    var seen = SeenRanges()
    var lastRawSequence: UInt32 = 0
    // History bookkeeping: the sequence (mod 2^32) of the last SYN, FIN and RST recorded.
    var lastSYN: UInt32 = .max, lastFIN: UInt32 = .max, lastRST: UInt32 = .max
    var retransmissions: UInt32 = 0, zeroWindows: UInt32 = 0, corrupt: UInt32 = 0
    /// History letters already recorded for this side, as HistoryLetter bits.
    var historySeen: UInt16 = 0
    var finCount: UInt16 = 0        // saturates
    var state = TCPEndpointState.inactive
    var sequenceKnown = false
    var startedWithSYN = false
    var gapReported = false

    /// Relative position of a raw sequence number, following wrap-around from the last one.
    mutating func relative(_ raw: UInt32) -> Int64 {
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
        guard sequenceKnown else { return 0 }
        var size = max(highestEnd, highestAck)
        if startedWithSYN { size -= 1 }
        if finCount > 0 && size > 0 { size -= 1 }
        return max(size, 0)
    }

    mutating func noteData(_ range: Range<Int64>) { seen.insert(range) }

    /// Data bytes below `end` that were never seen.
    func unseen(below end: Int64, from start: Int64) -> Int64 { seen.unseen(below: end, from: start) }
}

/// Merged ranges of sequence space seen. The first range is kept inline: in-order data,
/// the usual case, never allocates; holes spill into `more`.
struct SeenRanges {
    private var low: Int64 = 0, high: Int64 = 0 // empty while low == high
    private var more: [Range<Int64>] = []

    var isEmpty: Bool { low == high && more.isEmpty }

    mutating func insert(_ range: Range<Int64>) {
        guard !range.isEmpty else { return }
        if low == high && more.isEmpty {
            (low, high) = (range.lowerBound, range.upperBound)
            return
        }
        if more.isEmpty && range.lowerBound >= low && range.lowerBound <= high {
            high = max(high, range.upperBound) // in order, or overlapping the end
            return
        }
        var all = [low..<high] + more
        var merged = range
        var kept: [Range<Int64>] = []
        for existing in all where !existing.isEmpty {
            if existing.upperBound < merged.lowerBound || existing.lowerBound > merged.upperBound {
                kept.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            }
        }
        kept.append(merged)
        kept.sort { $0.lowerBound < $1.lowerBound }
        all = kept
        (low, high) = (all[0].lowerBound, all[0].upperBound)
        more = Array(all.dropFirst())
    }

    func unseen(below end: Int64, from start: Int64) -> Int64 {
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

/// The history letters of a connection: up to 16 inline, longer ones spill to the heap.
struct History {
    private var inline: (UInt64, UInt64) = (0, 0)
    private var count: UInt8 = 0
    private var spill: [UInt8] = []

    var isEmpty: Bool { count == 0 }

    mutating func append(_ letter: UInt8) {
        if count < 16 {
            let shift = UInt64(count % 8) * 8
            if count < 8 { inline.0 |= UInt64(letter) << shift } else { inline.1 |= UInt64(letter) << shift }
            count += 1
        } else {
            spill.append(letter)
        }
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(count) + spill.count)
        for i in 0..<Int(count) {
            let word = i < 8 ? inline.0 : inline.1
            out.append(UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8)))
        }
        return out + spill
    }

    init() {}
    init(_ letters: [UInt8]) { for letter in letters { append(letter) } }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// A connection being tracked.
struct Connection {
    /// Both ends and the protocol; which end is the originator is `origIsLow`.
    var key: ConnectionKey
    var origIsLow: Bool
    /// Formatted as a Zeek uid ("C" and base 62) only when logged.
    var uid: UInt64
    var start: UInt64
    var last: UInt64
    var orig = Endpoint()
    var resp = Endpoint()
    var history = History()
    /// The uid of the tunnel this connection travels in, if any.
    var tunnelParent: UInt64?
    /// When the connection is due to be logged and forgotten (inactivity or close delay).
    var expires: UInt64 = 0

    init(key: ConnectionKey, uid: UInt64, origAddress: IPAddress, origPort: UInt16, start: UInt64) {
        self.key = key
        origIsLow = key.lowAddress == origAddress && key.lowPort == origPort
        self.uid = uid
        self.start = start
        last = start
    }

    var proto: UInt8 { key.proto }
    var origAddress: IPAddress { origIsLow ? key.lowAddress : key.highAddress }
    var origPort: UInt16 { origIsLow ? key.lowPort : key.highPort }
    var respAddress: IPAddress { origIsLow ? key.highAddress : key.lowAddress }
    var respPort: UInt16 { origIsLow ? key.highPort : key.lowPort }

    mutating func flip() {
        origIsLow.toggle()
        swap(&orig, &resp)
        // Letters keep their case meaning: swap it, and mark the flip.
        history = History(history.bytes.map { letter in
            switch letter {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return letter + 32
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return letter - 32
            default: return letter
            }
        })
        history.append(UInt8(ascii: "^"))
    }

    /// Zeek's conn_state from the endpoint states.
    var state: String {
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
    static func looksLikeRSTOS0(_ history: History) -> Bool { looksLikeRSTOS0(history.bytes) }

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
