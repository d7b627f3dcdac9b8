/// A table whose entries also form a list from least to most recently used (or, when never
/// touched, in arrival order), so that the oldest is found in O(1): expiry and eviction
/// take from the front, never scanning the table. The index is a Swift Dictionary, whose
/// hashing is seeded per process, so nobody can choose keys that collide.
struct RecencyTable<Key: Hashable, Value> {
    typealias Slot = Int32

    private struct Entry {
        var key: Key
        var value: Value
        var older: Slot
        var newer: Slot
    }

    private var index: [Key: Slot] = [:]
    private var entries: [Entry?] = []
    private var free: [Slot] = []
    /// The least and the most recently used entries; -1 when empty.
    private(set) var oldest: Slot = -1
    private(set) var newest: Slot = -1

    var count: Int { index.count }

    func find(_ key: Key) -> Slot? { index[key] }

    /// The value in `slot`, changed in place.
    subscript(slot: Slot) -> Value {
        get { entries[Int(slot)]!.value }
        _modify { yield &entries[Int(slot)]!.value }
    }

    /// Adds an entry for a key not in the table, as the most recent.
    mutating func insert(_ key: Key, _ value: Value) -> Slot {
        let entry = Entry(key: key, value: value, older: newest, newer: -1)
        let slot: Slot
        if let reused = free.popLast() {
            slot = reused
            entries[Int(slot)] = entry
        } else {
            slot = Slot(entries.count)
            entries.append(entry)
        }
        if newest >= 0 { entries[Int(newest)]!.newer = slot } else { oldest = slot }
        newest = slot
        index[key] = slot
        return slot
    }

    /// Makes `slot` the most recent.
    mutating func touch(_ slot: Slot) {
        guard slot != newest else { return }
        unlink(slot)
        entries[Int(slot)]!.older = newest
        entries[Int(slot)]!.newer = -1
        if newest >= 0 { entries[Int(newest)]!.newer = slot } else { oldest = slot }
        newest = slot
    }

    @discardableResult
    mutating func remove(_ slot: Slot) -> Value {
        unlink(slot)
        let entry = entries[Int(slot)]!
        entries[Int(slot)] = nil
        index[entry.key] = nil
        free.append(slot)
        return entry.value
    }

    /// The entry after `slot` in recency order, or -1.
    func newer(than slot: Slot) -> Slot { entries[Int(slot)]!.newer }

    private mutating func unlink(_ slot: Slot) {
        let entry = entries[Int(slot)]!
        if entry.older >= 0 { entries[Int(entry.older)]!.newer = entry.newer } else { oldest = entry.newer }
        if entry.newer >= 0 { entries[Int(entry.newer)]!.older = entry.older } else { newest = entry.older }
    }
}
