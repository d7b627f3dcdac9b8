/// Zeek's core weird sampling (Weird::sampling_threshold, _rate, _duration): of one weird
/// name in one place (the whole sensor, a flow, a connection) the first `threshold` are
/// reported, then every `rate`-th; `duration` after the count began it starts again.
public struct WeirdSampling: Equatable, Sendable {
    public var threshold: UInt64 = 1000
    public var rate: UInt64 = 1000
    /// Nanoseconds of network time.
    public var duration: UInt64 = 600_000_000_000

    public init() {}
}

/// A place a weird is about: a connection's uid (0 for the whole sensor), or a flow.
/// Each hashes itself cheaply: a weird can come with every packet, and Swift's Hasher
/// would cost more than the rest of its handling.
protocol WeirdPlace: Equatable {
    var mixed: UInt64 { get }
}

extension UInt64: WeirdPlace {
    @inline(__always) var mixed: UInt64 { self &* 0x9e37_79b9_7f4a_7c15 }
}

/// A flow, as a flow weird names it: its two addresses, in the packet's direction.
struct WeirdFlow: WeirdPlace {
    var source: IPAddress
    var destination: IPAddress

    @inline(__always) var mixed: UInt64 {
        (source.high ^ source.low &* 0x9e37_79b9_7f4a_7c15 ^ destination.high &* 0xc2b2_ae3d_27d4_eb4f
            ^ destination.low &* 0x1656_67b1_9e37_79f9) &* 0xff51_afd7_ed55_8ccd
    }
}

/// What the reporter remembers of each weird name in each place (the sensor, a flow, a
/// connection), in one table so that a weird costs one lookup: Zeek's core sampling count,
/// and when weird.zeek last let the weird through (its weird_ignore, which holds repeats
/// back for ten minutes). Open addressing with linear probing, at most half full, grown
/// by doubling up to `bound` places; over the bound a place is not remembered and its
/// weirds are not logged (counted as `overflow`). A connection's entry is 32 bytes, so
/// that the table stays small beside the connections in the caches; a place's entries
/// hash alike, so that all of them can be forgotten at once (a connection that ended).
struct WeirdPlaces<Place: WeirdPlace> {
    private struct Entry {
        var place: Place
        /// The name's code plus one; 0: a free slot.
        var name: UInt16
        var seen: UInt32
        var since: UInt64
        /// When it was last let through (held back as a repeat until `hold` after), or never.
        var passed: UInt64
    }
    private var slots: [Entry]
    private(set) var count = 0
    let bound: Int
    /// Weirds not logged because the table was full.
    private(set) var overflow: UInt64 = 0
    private var lastSweep: UInt64 = 0
    /// A free slot's contents (any place: the name says it is free).
    private let free: Entry

    init(bound: Int, anyPlace: Place) {
        self.bound = bound
        free = Entry(place: anyPlace, name: 0, seen: 0, since: 0, passed: .max)
        slots = [Entry](repeating: free, count: 64)
    }

    enum Verdict: Equatable {
        /// Zeek's core would not report it (beyond the sampling threshold, not the rate-th).
        case sampledOut
        /// The script would not log it: the same weird here passed less than `hold` ago.
        case repeated
        case passes
    }

    /// The slot of `place` and `name`, or the free slot where they would go.
    @inline(__always)
    private func slot(_ place: Place, _ name: UInt16) -> Int {
        slots.withUnsafeBufferPointer { slots in
            let mask = slots.count - 1
            var i = home(place, mask)
            while slots[i].name != 0 {
                if slots[i].name == name && slots[i].place == place { return i }
                i = (i + 1) & mask
            }
            return i
        }
    }

    @inline(__always) private func home(_ place: Place, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: place.mixed >> 24) & mask
    }

    /// Counts one more `name` in `place` at `now` and says what becomes of it; weirds that
    /// pass are held back as repeats for `hold` (0: never) once `pass` is called.
    mutating func check(_ name: WeirdName, in place: Place, at now: UInt64, _ sampling: WeirdSampling, hold: UInt64) -> Verdict {
        let code = UInt16(name.code + 1)
        var i = slot(place, code)
        if slots[i].name == 0 {
            if count >= bound {
                sweep(at: now, sampling, hold: hold)
                guard count < bound else {
                    overflow += 1
                    return .sampledOut
                }
            }
            if (count + 1) * 2 > slots.count { rebuild(capacity: slots.count * 2) { _ in true } }
            i = slot(place, code)
            slots[i] = Entry(place: place, name: code, seen: 1, since: now, passed: .max)
            count += 1
            return sampling.threshold >= 1 || sampling.rate == 1 ? .passes : .sampledOut
        }
        return slots.withUnsafeMutableBufferPointer { slots in
            if now >= slots[i].since &+ sampling.duration { (slots[i].seen, slots[i].since) = (0, now) }
            if slots[i].seen < .max { slots[i].seen += 1 }
            let seen = UInt64(slots[i].seen)
            if seen > sampling.threshold {
                guard sampling.rate > 0, (seen - sampling.threshold) % sampling.rate == 0 else { return .sampledOut }
            }
            let passed = slots[i].passed
            if passed != .max && now < passed &+ hold { return .repeated }
            return .passes
        }
    }

    /// Notes that `name` in `place` was let through at `now` (its repeats are held back).
    mutating func pass(_ name: WeirdName, in place: Place, at now: UInt64) {
        let i = slot(place, UInt16(name.code + 1))
        if slots[i].name != 0 { slots[i].passed = now }
    }

    /// Remembers `name` in `place` as let through at `now` (its first weird), if there is
    /// room without sweeping; whether it is remembered.
    mutating func remember(_ name: WeirdName, in place: Place, at now: UInt64) -> Bool {
        let code = UInt16(name.code + 1)
        guard slots[slot(place, code)].name == 0 else {
            pass(name, in: place, at: now)
            return true
        }
        guard count < bound else { return false }
        if (count + 1) * 2 > slots.count { rebuild(capacity: slots.count * 2) { _ in true } }
        slots[slot(place, code)] = Entry(place: place, name: code, seen: 1, since: now, passed: now)
        count += 1
        return true
    }

    /// Forgets every name in `place` (linear probing's deletion: the entries after a freed
    /// slot move back to where their probe would now find them).
    mutating func forget(_ place: Place) {
        let mask = slots.count - 1
        var i = home(place, mask)
        while slots[i].name != 0 {
            guard slots[i].place == place else {
                i = (i + 1) & mask
                continue
            }
            slots[i] = free
            count -= 1
            var j = (i + 1) & mask
            while slots[j].name != 0 {
                let want = home(slots[j].place, mask)
                // Move j back to i when i lies on j's probe path (cyclically, from want to j).
                if (j > i && (want <= i || want > j)) || (j < i && want <= i && want > j) {
                    slots[i] = slots[j]
                    slots[j] = free
                    i = j
                }
                j = (j + 1) & mask
            }
            i = home(place, mask) // start again: a moved entry of the place may sit before
        }
    }

    /// Forgets what no longer counts: sampling periods over, repeats no longer held back; at
    /// most once per tenth of a period, so that a full table under a flood is not swept per weird.
    private mutating func sweep(at now: UInt64, _ sampling: WeirdSampling, hold: UInt64) {
        guard now >= lastSweep &+ sampling.duration / 10 else { return }
        lastSweep = now
        rebuild(capacity: slots.count) { now < $0.since &+ sampling.duration || ($0.passed != .max && now < $0.passed &+ hold) }
    }

    private mutating func rebuild(capacity: Int, keeping: (Entry) -> Bool) {
        let old = slots
        slots = [Entry](repeating: free, count: capacity)
        count = 0
        for entry in old where entry.name != 0 && keeping(entry) {
            slots[slot(entry.place, entry.name)] = entry
            count += 1
        }
    }
}

/// A weird's name as the reporter keys it: the weird and whether it was inside a tunnel
/// (Zeek's "_in_tunnel" names), two bytes to hash rather than a string.
struct WeirdName: Hashable {
    let weird: Weird
    let tunnelled: Bool

    init(_ weird: Weird, tunnelled: Bool = false) {
        self.weird = weird
        self.tunnelled = tunnelled
    }

    var text: String { tunnelled ? weird.rawValue + "_in_tunnel" : weird.rawValue }

    /// The name as one number (a Weird's own hashing and comparing go by its raw value, a string).
    var code: Int { weird.ordinal << 1 | (tunnelled ? 1 : 0) }
    static func == (a: WeirdName, b: WeirdName) -> Bool { a.code == b.code }
    func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
