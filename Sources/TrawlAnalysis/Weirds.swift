/// Counts of Zeek-style "weirds": things in the traffic that are wrong or unusual, or that
/// hit one of the analysis's bounds, by Zeek's name for them where Zeek has one. The
/// tracker keeps one at a stable address, which every stage of its analysis notes into.
public struct Weirds: Sendable {
    public private(set) var counts: [String: UInt64] = [:]

    public init() {}

    @inline(never) // off the fast path: weirds are rare
    public mutating func note(_ weird: Weird) {
        counts[weird.rawValue, default: 0] += 1
    }

    /// A weird whose name is made on the spot (an analyzer's violation).
    @inline(never)
    public mutating func note(named name: String) {
        counts[name, default: 0] += 1
    }

    public subscript(name: String) -> UInt64 { counts[name] ?? 0 }
}
