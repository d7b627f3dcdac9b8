/// TCP endpoint states, as Zeek names them; conn_state is derived from the pair.
public enum TCPEndpointState: UInt8, Sendable {
    case inactive, synSent, synAckSent, partial, established, closed, reset
}

/// One direction of a connection.
struct Endpoint {
    var packets: UInt64 = 0
    var ipBytes: UInt64 = 0
    /// UDP and ICMP payload bytes.
    var payloadBytes: UInt64 = 0
    var active = false

    // TCP sequence space, relative to the first sequence number seen (the ISN after a SYN).
    var state = TCPEndpointState.inactive
    var sequenceKnown = false
    var lastRawSequence: UInt32 = 0
    var lastRelative: Int64 = 0     // relative position of lastRawSequence
    var startedWithSYN = false
    var highestEnd: Int64 = 0       // highest seq + length (+1 for SYN/FIN) seen
    var highestAck: Int64 = 0       // highest ack of this endpoint's data, from the peer
    var finCount = 0
    /// Data seen, as merged ranges of relative sequence numbers (usually one).
    var seen: [Range<Int64>] = []
    var gapReported = false
    var missed: Int64 = 0
    // History bookkeeping: letters already recorded, and the sequence of the last SYN/FIN/RST.
    var historySeen: UInt16 = 0
    var lastSYN: Int64 = -1, lastFIN: Int64 = -1, lastRST: Int64 = -1
    var retransmissions = 0, zeroWindows = 0, corrupt = 0

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

    mutating func noteData(_ range: Range<Int64>) {
        guard !range.isEmpty else { return }
        // The common case, in-order data: extend the last range in place.
        if let last = seen.last, last.lowerBound <= range.lowerBound, range.lowerBound <= last.upperBound,
           seen.count == 1 || seen[seen.count - 2].upperBound < last.lowerBound {
            if range.upperBound > last.upperBound { seen[seen.count - 1] = last.lowerBound..<range.upperBound }
            return
        }
        var merged = range
        var kept: [Range<Int64>] = []
        kept.reserveCapacity(seen.count + 1)
        for existing in seen {
            if existing.upperBound < merged.lowerBound || existing.lowerBound > merged.upperBound {
                kept.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)..<max(existing.upperBound, merged.upperBound)
            }
        }
        kept.append(merged)
        if kept.count > 1 { kept.sort { $0.lowerBound < $1.lowerBound } }
        seen = kept
    }

    /// Data bytes below `end` that were never seen.
    func unseen(below end: Int64, from start: Int64) -> Int64 {
        guard end > start else { return 0 }
        var covered: Int64 = 0
        for range in seen {
            let low = max(range.lowerBound, start), high = min(range.upperBound, end)
            if high > low { covered += high - low }
        }
        return end - start - covered
    }
}

/// A connection being tracked.
struct Connection {
    var key: ConnectionKey
    var uid: String
    var proto: UInt8
    var isIPv6: Bool
    var origAddress: IPAddress
    var origPort: UInt16
    var respAddress: IPAddress
    var respPort: UInt16
    var start: UInt64
    var last: UInt64
    var orig = Endpoint()
    var resp = Endpoint()
    var history: [UInt8] = []
    /// The uid of the tunnel this connection travels in, if any.
    var tunnelParent: String?
    /// When the connection is due to be logged and forgotten (inactivity or close delay).
    var expires: UInt64 = 0

    mutating func flip() {
        swap(&origAddress, &respAddress)
        swap(&origPort, &respPort)
        swap(&orig, &resp)
        // Letters keep their case meaning: swap it, and mark the flip.
        history = history.map { letter in
            switch letter {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return letter + 32
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return letter - 32
            default: return letter
            }
        }
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
            if orig.active { return resp.active ? "SF" : "S0" }
            return resp.active ? "SHR" : "OTH"
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
