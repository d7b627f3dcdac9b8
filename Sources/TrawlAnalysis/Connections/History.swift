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

    /// The letter at `index` (below `count`).
    @inline(__always) func letter(_ index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: (index < 8 ? words.0 : words.1) >> (UInt64(index % 8) * 8))
    }

    /// The history as text, with the letters past the inline ones after it; written in
    /// place (no array in between).
    func text(more: [UInt8]) -> String {
        let n = count
        return String(unsafeUninitializedCapacity: n + more.count) { buffer in
            for i in 0..<n { buffer[i] = letter(i) }
            for (i, byte) in more.enumerated() { buffer[n + i] = byte }
            return n + more.count
        }
    }
}

/// What a history letter records the first time it happens, one bit per kind and role
/// (Zeek's hist_seen masks): the originator's in the low 16 bits, the responder's above.
/// They belong to the roles, not to the endpoints: when a connection flips they stay.
enum HistoryMark: UInt32 {
    case syn = 1, fin = 2, rst = 4, finRST = 8, data = 16, ack = 32, multiFlag = 64

    func bit(isOrig: Bool) -> UInt32 { isOrig ? rawValue : rawValue << 16 }
}

/// Letters for repeated events (C, T, W, G) are recorded at the 1st, 10th, 100th...
/// occurrence in a direction (Zeek's scaled history entries).
@inline(__always) func isScaledMoment(_ count: UInt32) -> Bool {
    var threshold: UInt64 = 1
    while threshold < count { threshold *= 10 }
    return threshold == count
}
