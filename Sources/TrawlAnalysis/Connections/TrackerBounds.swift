import TrawlCore

// What keeps the tracker's memory bounded and accounted for: uids, eviction at the
// connection bound, and the tables' statistics for the summary.
extension ConnectionTracker {
    /// The tables that traffic can grow, each with its bound and what hitting it or expiry
    /// took away: for the summary and the statistics.
    public var tables: [TableStatistics] {
        let fragments = path.fragments, tunnels = path.ipTunnels
        return [
            TableStatistics(name: "connections", entries: table.count, peak: peakConnections,
                            bound: min(configuration.maximumConnections, ConnectionTable.maximumSlots), evicted: evictedConnections),
            TableStatistics(name: "fragments", entries: fragments.pending, peak: fragments.peak,
                            bound: fragments.limits.maximumDatagrams, evicted: fragments.evicted, expired: fragments.expired),
            TableStatistics(name: "fragment bytes", entries: fragments.bytesHeld, peak: fragments.peakBytes,
                            bound: fragments.limits.maximumBytes, evicted: 0),
            TableStatistics(name: "ip tunnels", entries: tunnels.count, peak: tunnels.peak,
                            bound: tunnels.limits.maximumTunnels, evicted: tunnels.evicted, expired: tunnels.expired),
        ]
    }

    /// 64 random bits, never 0 (the table's mark of a free slot).
    func newUID() -> UInt64 {
        while true {
            let uid = uids.next()
            if uid != 0 { return uid }
        }
    }

    /// Makes room for one connection: looks at a few connections at random and evicts the
    /// first unanswered attempt among them, else the last one looked at. O(1), and under a
    /// flood the attempts are what it finds.
    func evictOne() {
        var victim: ConnectionTable.Slot?
        var looked = 0
        while looked < 8 || victim == nil {
            let slot = ConnectionTable.Slot(evictionRandom.next() % UInt64(table.highWater))
            guard table.isLive(slot) else { continue }
            looked += 1
            victim = slot
            if table.connection(slot).pointee.resp.packets == 0 { break }
        }
        weirdCounter.pointee.note(.connectionEvicted)
        evictedConnections += 1
        logAndForget(victim!)
    }
}

extension ConnectionTracker {
    // What the weird reporter asks of the connection in a slot.
    func age(_ slot: UInt32, at now: UInt64) -> UInt64 { now &- table.connection(slot).pointee.start }
    func start(_ slot: UInt32) -> UInt64 { table.connection(slot).pointee.start }
    func weirdsLogged(_ slot: UInt32) -> UInt8 { table.connection(slot).pointee.weirdsLogged }
    func noteWeirdsLogged(_ slot: UInt32, _ bits: UInt8) { table.connection(slot).pointee.weirdsLogged |= bits }

    /// The uid of the connection in `slot`.
    func weirdUID(_ slot: UInt32) -> UInt64? { table.isLive(slot) ? table.connection(slot).pointee.uid : nil }

    /// The connection in `slot` as weird.log names it, in its orientation.
    func weirdConnection(_ slot: UInt32) -> WeirdConnection? {
        guard table.isLive(slot) else { return nil }
        let c = table.connection(slot), key = table.key(of: slot)
        let (orig, resp) = c.pointee.origIsLow ? (key.lowAddress, key.highAddress) : (key.highAddress, key.lowAddress)
        return WeirdConnection(uid: c.pointee.uid, origAddress: orig, origPort: c.pointee.origPort,
                               respAddress: resp, respPort: c.pointee.respPort, proto: key.proto)
    }
}
