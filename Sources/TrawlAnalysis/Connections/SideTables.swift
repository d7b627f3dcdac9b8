/// The rare state of a few connections, by uid, so that every connection need not carry
/// room for it: history past 16 letters, ranges of data above a hole, the tunnels a
/// connection travels in, the counts behind the scaled history letters and the missed
/// bytes. A connection's flags say which entries it has; each goes with its connection
/// (`take`), so the connection bound bounds them too.
struct SideTables {
    var longHistories: [UInt64: [UInt8]] = [:]
    var ranges: [SideKey: [Range<UInt64>]] = [:]
    var tunnels: [UInt64: TunnelHistory] = [:]
    var rareCounts: [SideKey: RareCounts] = [:]

    /// Keeps a history character past the connection's own 16; false when the history
    /// already has `limit` characters.
    mutating func appendHistory(uid: UInt64, _ character: UInt8, limit: Int) -> Bool {
        guard longHistories[uid, default: []].count + History.capacity < limit else { return false }
        longHistories[uid, default: []].append(character)
        return true
    }

    /// The entries of a connection's two endpoints change places with them.
    mutating func swapSides(uid: UInt64) {
        let origSide = SideKey(uid: uid, isOrig: true), respSide = SideKey(uid: uid, isOrig: false)
        if rareCounts[origSide] != nil || rareCounts[respSide] != nil {
            (rareCounts[origSide], rareCounts[respSide]) = (rareCounts[respSide], rareCounts[origSide])
        }
        if ranges[origSide] != nil || ranges[respSide] != nil {
            (ranges[origSide], ranges[respSide]) = (ranges[respSide], ranges[origSide])
        }
    }

    /// Takes a finished connection's entries out, with what its record needs of them.
    mutating func take(for c: Connection, into finished: inout FinishedConnection) {
        if c.flags.contains(.longHistory) { finished.moreHistory = longHistories.removeValue(forKey: c.uid) ?? [] }
        if c.flags.contains(.tunnelled) { finished.tunnelParents = tunnels.removeValue(forKey: c.uid)?.parents ?? [] }
        let origSide = SideKey(uid: c.uid, isOrig: true), respSide = SideKey(uid: c.uid, isOrig: false)
        if c.orig.flags.contains(.ranges) { ranges[origSide] = nil }
        if c.resp.flags.contains(.ranges) { ranges[respSide] = nil }
        if c.flags.contains(.rareCounts) {
            finished.missedBytes = (rareCounts.removeValue(forKey: origSide)?.missedBytes ?? 0)
                &+ (rareCounts.removeValue(forKey: respSide)?.missedBytes ?? 0)
        }
    }
}

// History letters, which spill into the side tables.
extension ConnectionTracker {
    /// Adds a history letter for a role: upper case for the originator, lower for the responder.
    func appendLetter(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool, _ letter: Unicode.Scalar) {
        let upper = UInt8(ascii: letter)
        appendRaw(c, isOrig ? upper : upper | 0x20)
    }

    /// Adds a history character as it is.
    func appendRaw(_ c: UnsafeMutablePointer<Connection>, _ character: UInt8) {
        guard !c.pointee.history.append(character) else { return }
        c.pointee.flags.insert(.longHistory)
        if !side.appendHistory(uid: c.pointee.uid, character, limit: configuration.maximumHistory) {
            weirdCounter.pointee.note(.historyTruncated)
        }
    }

    /// Counts a repeated event of endpoint `e` (bad checksums, retransmissions, zero windows,
    /// gaps) in the side table, and writes its letter at the 1st, 10th, 100th... time.
    func bumpScaled(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, letter: Unicode.Scalar,
                    _ bump: (inout RareCounts) -> UInt32) {
        let isOrig = isOriginator(c, e)
        c.pointee.flags.insert(.rareCounts)
        let count = bump(&side.rareCounts[SideKey(uid: c.pointee.uid, isOrig: isOrig), default: RareCounts()])
        if isScaledMoment(count) { appendLetter(c, isOrig: isOrig, letter) }
    }

    /// The side tables' entries of a connection's two endpoints change places with them.
    func swapSideTables(uid: UInt64) { side.swapSides(uid: uid) }
}
