import TrawlCore

/// The connections being tracked, in numbered slots that never move, found by key through
/// an open-addressing index, and ordered for expiry by a timing wheel.
///
/// Memory per connection is the 232-byte `Connection`, 8 to 16 bytes of index, and nothing
/// else unless it is IPv6 (32 bytes of addresses beside it). Slots are allocated in chunks,
/// so the table grows without copying what it holds. At most `maximumSlots` connections.
final class ConnectionTable {
    typealias Slot = UInt32

    private static let chunkShift = 12
    private static let chunkSize = 1 << chunkShift

    @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<Connection>] = []
    /// The full addresses of IPv6 connections, by slot; a chunk's is allocated on first use.
    @exclusivity(unchecked) private var v6Chunks: [UnsafeMutablePointer<(IPAddress, IPAddress)>?] = []
    @exclusivity(unchecked) private var freeSlots: [Slot] = []
    /// Slots handed out so far: every live slot is below it.
    @exclusivity(unchecked) private(set) var highWater = 0
    @exclusivity(unchecked) private(set) var count = 0

    /// The index: entry = low 32 bits of the key's hash << 32 | slot + 1; 0 is empty. The
    /// hash bits give each entry's home position and filter comparisons.
    @exclusivity(unchecked) private var index: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var mask: Int
    /// Random per table, so that nobody can send keys that all land in one place.
    private let seeds: (UInt64, UInt64, UInt64, UInt64, UInt64)

    // The expiry wheel: one list per second, 256 seconds round. A connection stays in the
    // list it was put in while packets push its due time later (no work per packet); when
    // its list comes up it is either due, or put in the list of its new due time.
    private static let wheelSize = 256
    private let wheelHeads = UnsafeMutablePointer<Slot>.allocate(capacity: wheelSize) // slot + 1; 0 = empty
    /// All lists before this second have been looked at.
    @exclusivity(unchecked) private var wheelSecond: UInt64?

    /// Slot numbers fit 25 bits (the final sort packs them beside the start time).
    static let maximumSlots = (1 << 25) - 1

    init(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        seeds = (random.next(), random.next(), random.next(), random.next(), random.next())
        (index, mask) = Self.emptyIndex(capacity: Self.initialIndexCapacity)
        wheelHeads.initialize(repeating: 0, count: Self.wheelSize)
    }

    deinit {
        for chunk in chunks { chunk.deallocate() }
        for chunk in v6Chunks { chunk?.deallocate() }
        index.deallocate()
        wheelHeads.deallocate()
    }

    @inline(__always) func connection(_ slot: Slot) -> UnsafeMutablePointer<Connection> {
        chunks[Int(slot) >> Self.chunkShift] + (Int(slot) & (Self.chunkSize - 1))
    }

    /// Whether `slot` holds a connection (a free slot's uid is 0).
    @inline(__always) func isLive(_ slot: Slot) -> Bool {
        Int(slot) < highWater && connection(slot).pointee.uid != 0
    }

    private static let initialIndexCapacity = 1024

    /// A zeroed (empty) index of `capacity` entries, a power of two, and its mask.
    private static func emptyIndex(capacity: Int) -> (UnsafeMutablePointer<UInt64>, Int) {
        let entries = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        entries.initialize(repeating: 0, count: capacity)
        return (entries, capacity - 1)
    }

    // MARK: Lookup

    @inline(__always) private func hash(_ key: ConnectionKey) -> UInt64 {
        @inline(__always) func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let product = a.multipliedFullWidth(by: b)
            return product.high ^ product.low
        }
        let ports = UInt64(key.lowPort) << 32 | UInt64(key.highPort) << 16 | UInt64(key.proto)
        let addresses = fold(key.lowAddress.low ^ seeds.0, key.highAddress.low ^ seeds.1)
        let v6 = fold(key.lowAddress.high ^ seeds.2, key.highAddress.high ^ seeds.3)
        return fold(addresses ^ ports, v6 ^ seeds.4)
    }

    func find(_ key: ConnectionKey) -> Slot? {
        let hash = UInt32(truncatingIfNeeded: hash(key))
        let packed = PackedKey(key)
        var position = Int(hash) & mask
        while true {
            let entry = index[position]
            if entry == 0 { return nil }
            if UInt32(truncatingIfNeeded: entry >> 32) == hash {
                let slot = Slot(truncatingIfNeeded: entry) &- 1
                if matches(slot, key, packed) { return slot }
            }
            position = (position + 1) & mask
        }
    }

    @inline(__always) private func matches(_ slot: Slot, _ key: ConnectionKey, _ packed: PackedKey) -> Bool {
        guard connection(slot).pointee.key == packed else { return false }
        guard packed.isV6 else { return true }
        let addresses = v6Addresses(slot).pointee
        return addresses.0 == key.lowAddress && addresses.1 == key.highAddress
    }

    private func v6Addresses(_ slot: Slot) -> UnsafeMutablePointer<(IPAddress, IPAddress)> {
        let chunk = Int(slot) >> Self.chunkShift
        if v6Chunks[chunk] == nil {
            v6Chunks[chunk] = .allocate(capacity: Self.chunkSize)
        }
        return v6Chunks[chunk]! + (Int(slot) & (Self.chunkSize - 1))
    }

    /// The key of the connection in `slot`, with its full addresses.
    func key(of slot: Slot) -> ConnectionKey {
        let packed = connection(slot).pointee.key
        let low: IPAddress, high: IPAddress
        if packed.isV6 {
            (low, high) = v6Addresses(slot).pointee
        } else {
            low = IPAddress(high: 0, low: 0x0000_ffff_0000_0000 | UInt64(packed.lowAddress))
            high = IPAddress(high: 0, low: 0x0000_ffff_0000_0000 | UInt64(packed.highAddress))
        }
        return ConnectionKey(proto: packed.proto, low: low, lowPort: packed.lowPort, high: high, highPort: packed.highPort)
    }

    // MARK: Insertion and removal

    /// Stores a connection whose key is not in the table yet; it is not on the wheel yet.
    func insert(_ connection: Connection, key: ConnectionKey) -> Slot {
        precondition(connection.uid != 0 && (highWater < Self.maximumSlots || !freeSlots.isEmpty), "connection table full")
        let slot: Slot
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            if highWater == chunks.count << Self.chunkShift {
                chunks.append(.allocate(capacity: Self.chunkSize))
                v6Chunks.append(nil)
            }
            slot = Slot(highWater)
            highWater += 1
        }
        self.connection(slot).initialize(to: connection)
        if connection.key.isV6 { v6Addresses(slot).initialize(to: (key.lowAddress, key.highAddress)) }
        count += 1
        if count * 4 > (mask + 1) * 3 { grow() }
        place(slot, hash: UInt32(truncatingIfNeeded: hash(key)))
        return slot
    }

    private func place(_ slot: Slot, hash: UInt32) {
        var position = Int(hash) & mask
        while index[position] != 0 { position = (position + 1) & mask }
        index[position] = UInt64(hash) << 32 | UInt64(slot + 1)
    }

    private func grow() {
        let old = index, oldCapacity = mask + 1
        (index, mask) = Self.emptyIndex(capacity: oldCapacity * 2)
        for position in 0..<oldCapacity where old[position] != 0 {
            let entry = old[position]
            var target = Int(truncatingIfNeeded: entry >> 32) & mask
            while index[target] != 0 { target = (target + 1) & mask }
            index[target] = entry
        }
        old.deallocate()
    }

    /// Takes the connection out of the table (and off the wheel, unless `onWheel` is false
    /// because the wheel already let go of it) and frees its slot.
    func remove(_ slot: Slot, onWheel: Bool = true) -> Connection {
        if onWheel { unschedule(slot) }
        let hash = UInt32(truncatingIfNeeded: hash(key(of: slot)))
        var position = Int(hash) & mask
        while Slot(truncatingIfNeeded: index[position]) != slot + 1 { position = (position + 1) & mask }
        // Backward-shift deletion: pull later entries of the run into the hole when their
        // home is not between the hole and where they are; no tombstones.
        var hole = position
        var next = position
        while true {
            next = (next + 1) & mask
            let entry = index[next]
            if entry == 0 { break }
            let home = Int(truncatingIfNeeded: entry >> 32) & mask
            let between = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !between {
                index[hole] = entry
                hole = next
            }
        }
        index[hole] = 0
        let removed = connection(slot).pointee
        connection(slot).pointee.uid = 0
        freeSlots.append(slot)
        count -= 1
        return removed
    }

    /// Forgets every connection and gives back the memory of the slots.
    func removeAll() {
        for chunk in chunks { chunk.deallocate() }
        for chunk in v6Chunks { chunk?.deallocate() }
        chunks = []
        v6Chunks = []
        freeSlots = []
        highWater = 0
        count = 0
        index.update(repeating: 0, count: mask + 1)
        wheelHeads.update(repeating: 0, count: Self.wheelSize)
    }

    /// Every connection's slot, oldest first (by start time to the microsecond, as conn.log
    /// prints it, then by slot), for the last logging before `removeAll`. The index is let
    /// go first, as nothing is looked up any more. Each slot travels with its start in one
    /// 8-byte word (39 bits of microseconds since the oldest start, 25 of slot), so a
    /// million connections cost 8 MB here; open connections more than six days apart in
    /// start fall back to a list twice that size.
    func slotsOldestFirst() -> [Slot] {
        index.deallocate()
        (index, mask) = Self.emptyIndex(capacity: Self.initialIndexCapacity) // lookups find nothing now
        var oldest = UInt64.max, newest: UInt64 = 0
        for slot in 0..<Slot(highWater) where connection(slot).pointee.uid != 0 {
            let start = connection(slot).pointee.start / 1000
            oldest = min(oldest, start)
            newest = max(newest, start)
        }
        guard count > 0 else { return [] }
        if newest - oldest < 1 << 39 {
            var words: [UInt64] = []
            words.reserveCapacity(count)
            for slot in 0..<Slot(highWater) where connection(slot).pointee.uid != 0 {
                words.append((connection(slot).pointee.start / 1000 - oldest) << 25 | UInt64(slot))
            }
            words.sort()
            return words.map { Slot(truncatingIfNeeded: $0 & UInt64(Self.maximumSlots)) }
        }
        var pairs: [(start: UInt64, slot: Slot)] = []
        pairs.reserveCapacity(count)
        for slot in 0..<Slot(highWater) where connection(slot).pointee.uid != 0 {
            pairs.append((connection(slot).pointee.start / 1000, slot))
        }
        pairs.sort { $0.start != $1.start ? $0.start < $1.start : $0.slot < $1.slot }
        return pairs.map(\.slot)
    }

    // MARK: Expiry wheel

    private func wheelList(_ expires: UInt64) -> Int { Int(expires / 1_000_000_000) & (Self.wheelSize - 1) }

    /// Puts the connection on the list of the second it is due in.
    func schedule(_ slot: Slot, due: UInt64) {
        let c = connection(slot)
        // Never on a list already looked at: a time in the past waits for the next look.
        let list = wheelList(max(due, (wheelSecond ?? 0) * 1_000_000_000))
        c.pointee.wheelList = UInt8(list)
        c.pointee.wheelPrevious = 0
        c.pointee.wheelNext = wheelHeads[list]
        if wheelHeads[list] != 0 { connection(wheelHeads[list] - 1).pointee.wheelPrevious = slot + 1 }
        wheelHeads[list] = slot + 1
    }

    func unschedule(_ slot: Slot) {
        let c = connection(slot).pointee
        if c.wheelPrevious == 0 {
            wheelHeads[Int(c.wheelList)] = c.wheelNext
        } else {
            connection(c.wheelPrevious - 1).pointee.wheelNext = c.wheelNext
        }
        if c.wheelNext != 0 { connection(c.wheelNext - 1).pointee.wheelPrevious = c.wheelPrevious }
    }

    /// Moves a connection that became due earlier (a close) to its new list.
    func reschedule(_ slot: Slot, due: UInt64) {
        unschedule(slot)
        schedule(slot, due: due)
    }

    /// Looks at the lists of the seconds before `now`'s: connections due by `now` (by
    /// `dueTime`) are taken off the wheel and returned (still in the table); the others go
    /// to their new lists.
    func due(at now: UInt64, dueTime: (Slot) -> UInt64) -> [Slot] {
        let second = now / 1_000_000_000
        guard let from = wheelSecond else {
            wheelSecond = second
            return []
        }
        guard second > from else { return [] }
        wheelSecond = second
        var due: [Slot] = []
        for list in from..<min(second, from + UInt64(Self.wheelSize)) {
            let head = Int(list) & (Self.wheelSize - 1)
            var next = wheelHeads[head]
            wheelHeads[head] = 0
            while next != 0 {
                let slot = next - 1
                let c = connection(slot)
                next = c.pointee.wheelNext
                let time = dueTime(slot)
                if time <= now { due.append(slot) } else { schedule(slot, due: time) }
            }
        }
        return due
    }
}

