/// Counts of Zeek-style "weirds": things in the traffic that are wrong or unusual, or that
/// hit one of the analysis's bounds, by Zeek's name for them where Zeek has one. The
/// tracker keeps one at a stable address, which every stage of its analysis notes into.
/// Hostile traffic can make a weird of every packet, so a known weird is one array slot
/// (no hashing of its name); only names made on the spot go to a dictionary.
public struct Weirds: Sendable {
    private var byCase = [UInt64](repeating: 0, count: Weird.allCases.count)
    private var named: [String: UInt64] = [:]

    public init() {}

    @inline(never) // off the fast path, and small
    public mutating func note(_ weird: Weird) {
        byCase[weird.ordinal] &+= 1
    }

    /// A weird whose name is made on the spot (an analyzer's violation).
    @inline(never)
    public mutating func note(named name: String) {
        named[name, default: 0] += 1
    }

    /// Every weird seen, by name.
    public var counts: [String: UInt64] {
        var all = named
        for (index, count) in byCase.enumerated() where count > 0 { all[Weird.allCases[index].rawValue, default: 0] += count }
        return all
    }

    public subscript(name: String) -> UInt64 { counts[name] ?? 0 }
}

extension Weird {
    /// The case's place in `allCases`: a case without payload is stored as its number in
    /// declaration order, which is the order of `allCases`.
    @inline(__always) var ordinal: Int { Int(unsafeBitCast(self, to: UInt8.self)) }
}
