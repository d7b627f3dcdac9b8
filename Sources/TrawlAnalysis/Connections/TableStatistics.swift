/// One of the tables that traffic can grow: how full it is, its bound, and what the bound
/// and expiry took away. Every such table has one (docs/limits.md lists them).
public struct TableStatistics: Sendable, Equatable {
    public var name: String
    public var entries: Int
    /// The most entries it held at once.
    public var peak: Int
    public var bound: Int
    /// Entries dropped because the bound was reached.
    public var evicted: UInt64
    /// Entries dropped because their time was up (not counted for tables whose entries
    /// leave otherwise).
    public var expired: UInt64?

    public init(name: String, entries: Int, peak: Int, bound: Int, evicted: UInt64, expired: UInt64? = nil) {
        (self.name, self.entries, self.peak, self.bound, self.evicted, self.expired) = (name, entries, peak, bound, evicted, expired)
    }
}
