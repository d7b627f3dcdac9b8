/// Zeek's TCP reassembler, as far as conn.log sees it: where each direction's data was seen
/// in order (`delivered`), what was acknowledged (the trim point), the ranges above a hole,
/// and the content gaps (history G, missed_bytes) when an acknowledgment passes data that
/// never came. No payload is kept. It also decides when a close can be reported: not while
/// data before it is still missing (Zeek's deferred close).
extension ConnectionTracker {
    /// Zeek's tcp_max_initial_window: with nothing acknowledged yet, data past this is not
    /// held for the acknowledgment.
    static let maximumInitialWindow: UInt64 = 16_384
    /// Zeek's tcp_max_above_hole_without_any_acks and tcp_excessive_data_without_further_acks:
    /// past these, the direction's reassembly is given up.
    static let maximumAboveHoleWithoutAcks: UInt64 = 16_384
    static let maximumDataWithoutAcks: UInt64 = 10 * 1024 * 1024

    /// Data seen from `e` at relative sequence number `at` (Zeek's TCP_Reassembler::DataSent).
    func dataSent(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, at: UInt64, length: UInt64) {
        guard !e.pointee.flags.contains(.skipDeliveries) else { return }
        var seq = at, length = length
        let acknowledged = e.pointee.ackSeq &- UInt64(e.pointee.startSeq)
        if seq < acknowledged {
            // Already acknowledged, in part or whole: only the rest is new.
            if seq &+ length <= acknowledged { return }
            length -= acknowledged - seq
            seq = acknowledged
        }
        newBlock(c, e, at: seq, length: length)
        if !e.pointee.flags.contains(.ranges) {
            // No data above a hole: only the delivered bytes are held.
            if e.pointee.unacknowledged > Int32(Self.maximumDataWithoutAcks) {
                weirdCounter.pointee.note(.excessiveDataWithoutFurtherAcks)
                giveUp(c, e)
            }
            return
        }
        if e.pointee.noDataAcknowledged && undeliveredBytes(c, e) > Self.maximumAboveHoleWithoutAcks {
            weirdCounter.pointee.note(.aboveHoleDataWithoutAnyAcks)
            giveUp(c, e)
        }
        if dataHeld(c, e) > Self.maximumDataWithoutAcks {
            weirdCounter.pointee.note(.excessiveDataWithoutFurtherAcks)
            giveUp(c, e)
        }
    }

    /// Reassembler::NewBlock and BlockInserted: data at the delivery point moves it on, through
    /// any ranges it now reaches; data beyond it is kept as a range.
    private func newBlock(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, at: UInt64, length: UInt64) {
        guard length > 0 else { return }
        let upper = at &+ min(length, UInt64.max - at)
        let trimmed = e.pointee.trimSeq
        guard upper > trimmed else { return }
        let seq = max(at, trimmed)
        let delivered = e.pointee.delivered
        if seq > delivered {
            addRange(c, e, seq..<upper)
            return
        }
        guard upper > delivered else { return } // nothing new
        deliver(c, e, to: upper)
        if e.pointee.noDataAcknowledged && e.pointee.size(peer: peer(of: e, in: c).pointee.state) > Self.maximumInitialWindow {
            trim(c, e, to: e.pointee.delivered)
        }
    }

    /// Moves the delivery point to `upper` and on through the ranges that reach it.
    @inline(__always) private func deliver(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, to upper: UInt64) {
        var end = upper
        if _slowPath(e.pointee.flags.contains(.ranges)) {
            var kept = keptRanges(c, e)
            var reached = 0
            while reached < kept.count && kept[reached].lowerBound <= end {
                end = max(end, kept[reached].upperBound)
                reached += 1
            }
            if reached > 0 {
                kept.removeFirst(reached)
                storeRanges(c, e, kept)
            }
        }
        setDelivered(e, end)
    }

    @inline(__always) private func setDelivered(_ e: UnsafeMutablePointer<Endpoint>, _ delivered: UInt64) {
        let trim = e.pointee.trimSeq
        e.pointee.delivered = delivered
        e.pointee.unacknowledged = Self.clampedLag(delivered, trim)
    }

    /// `delivered - trim` as the endpoint keeps it. It never gets near the bounds: the
    /// reassembly is given up past 10 MB unacknowledged.
    private static func clampedLag(_ delivered: UInt64, _ trim: UInt64) -> Int32 {
        let lag = Int64(bitPattern: delivered &- trim)
        return Int32(clamping: lag)
    }

    /// Keeps a range of data above a hole, merged with the ranges it overlaps or touches; at
    /// the bound, the two closest ranges merge (as if the data between had been seen).
    private func addRange(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, _ range: Range<UInt64>) {
        var kept = keptRanges(c, e)
        var merged = range
        let index = kept.firstIndex { $0.upperBound >= range.lowerBound } ?? kept.count
        while index < kept.count && kept[index].lowerBound <= merged.upperBound {
            merged = min(merged.lowerBound, kept[index].lowerBound)..<max(merged.upperBound, kept[index].upperBound)
            kept.remove(at: index)
        }
        kept.insert(merged, at: index)
        if kept.count > configuration.maximumHoles {
            var closest = 0
            for i in 1..<(kept.count - 1) where kept[i + 1].lowerBound - kept[i].upperBound < kept[closest + 1].lowerBound - kept[closest].upperBound {
                closest = i
            }
            kept[closest] = kept[closest].lowerBound..<kept[closest + 1].upperBound
            kept.remove(at: closest + 1)
            weirdCounter.pointee.note(.tooManyHoles)
        }
        storeRanges(c, e, kept)
    }

    /// ClearBlocks and skip_deliveries: this direction's reassembly is given up.
    private func giveUp(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) {
        if e.pointee.flags.contains(.ranges) { storeRanges(c, e, []) }
        e.pointee.flags.insert(.skipDeliveries)
    }

    @inline(__always) private func keptRanges(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) -> [Range<UInt64>] {
        guard e.pointee.flags.contains(.ranges) else { return [] }
        return side.ranges[SideKey(uid: c.pointee.uid, isOrig: isOriginator(c, e))] ?? []
    }

    /// Keeps `kept` as `e`'s ranges: in the side table, with the endpoint's flag saying so,
    /// or neither when there are none.
    private func storeRanges(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, _ kept: [Range<UInt64>]) {
        side.ranges[SideKey(uid: c.pointee.uid, isOrig: isOriginator(c, e))] = kept.isEmpty ? nil : kept
        if kept.isEmpty { e.pointee.flags.remove(.ranges) } else { e.pointee.flags.insert(.ranges) }
    }

    /// Bytes held above the delivery point (NumUndeliveredBytes).
    private func undeliveredBytes(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) -> UInt64 {
        guard let last = keptRanges(c, e).last else { return 0 }
        return last.upperBound - e.pointee.delivered
    }

    /// Bytes the reassembler holds: delivered but unacknowledged, and above a hole.
    private func dataHeld(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) -> UInt64 {
        UInt64(max(0, e.pointee.unacknowledged)) + keptRanges(c, e).reduce(0) { $0 + UInt64($1.count) }
    }

    /// Whether `e` holds data not yet acknowledged (HasUndeliveredData: any blocks at all).
    private func holdsData(_ e: UnsafeMutablePointer<Endpoint>) -> Bool {
        !e.pointee.flags.contains(.skipDeliveries) && (e.pointee.unacknowledged > 0 || e.pointee.flags.contains(.ranges))
    }

    // MARK: Acknowledgments and gaps

    /// The peer acknowledged `e`'s data up to `ack` (relative; TCP_Reassembler::AckReceived).
    @inline(__always) func ackReceived(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, _ ack: UInt64) {
        var seq = ack
        // The FIN's octet is no data.
        if e.pointee.flags.contains(.finSeen) && seq >= e.pointee.finSeq { seq = e.pointee.finSeq &- 1 }
        guard seq > e.pointee.trimSeq else { return }
        // Zeek's capture-loss measure: acknowledgments between established endpoints, and
        // those of them that passed data never seen (tot_ack_events, tot_gap_events).
        let measured = !e.pointee.flags.contains(.skipDeliveries) && e.pointee.state == .established
            && peer(of: e, in: c).pointee.state == .established
        missingInTrim = 0
        trim(c, e, to: seq)
        if measured {
            statistics.gaps.acks &+= 1
            if missingInTrim > 0 { statistics.gaps.gaps &+= 1 }
        }
        checkEOF(c, e)
    }

    /// Reassembler::TrimToSeq: what lies below `seq` is acknowledged; data missing below it
    /// is a gap.
    private func trim(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, to seq: UInt64) {
        if seq > e.pointee.delivered { undelivered(c, e, upTo: seq) }
        if e.pointee.flags.contains(.ranges) {
            // Only when the delivery point stayed behind (a partial connection's start).
            storeRanges(c, e, keptRanges(c, e).filter { $0.upperBound > seq })
        }
        if seq > e.pointee.trimSeq { e.pointee.unacknowledged = Self.clampedLag(e.pointee.delivered, seq) }
    }

    /// TCP_Reassembler::Undelivered: the data up to `upTo` will not come; the holes before
    /// each range kept, and after the last, are gaps.
    private func undelivered(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, upTo: UInt64) {
        // A partial connection's first ack says nothing about missing data.
        if upTo <= 2 && c.pointee.tcp.contains(.partial) { return }
        if !e.pointee.flags.contains(.skipDeliveries) {
            while let first = keptRanges(c, e).first, first.lowerBound < upTo {
                missingInTrim &+= first.lowerBound - e.pointee.delivered
                gap(c, e, first.lowerBound - e.pointee.delivered)
                deliver(c, e, to: first.lowerBound)
            }
            if upTo > e.pointee.delivered {
                missingInTrim &+= upTo - e.pointee.delivered
                gap(c, e, upTo - e.pointee.delivered)
            }
        }
        // A range that begins just there is delivered at once.
        if upTo > e.pointee.delivered { deliver(c, e, to: upTo) }
    }

    /// A content gap of `length` bytes in `e`'s data: counted (G, missed_bytes) when both
    /// sides are established or closing cleanly from it.
    private func gap(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, _ length: UInt64) {
        guard e.pointee.isClean && peer(of: e, in: c).pointee.isClean else { return }
        let missed = length
        bumpScaled(c, e, letter: "G") { counts in
            counts.gaps += 1
            counts.missedBytes &+= missed
            return counts.gaps
        }
    }

    // MARK: Closing

    /// TCP_Reassembler::DataPending: data of `e` before its end is still missing, or the
    /// peer's is not all acknowledged.
    private func dataPending(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) -> Bool {
        guard !e.pointee.flags.contains(.skipDeliveries) else { return false }
        let delivered = UInt64(e.pointee.startSeq) &+ e.pointee.delivered
        let last = e.pointee.lastSeq
        if last < delivered { return false }
        if delivered != last &- 1 && delivered != last { return true }
        return e.pointee.state != .reset && holdsData(peer(of: e, in: c))
    }

    /// Reports the end of `e`'s data once it has all come (CheckEOF), which lets a deferred
    /// close through.
    @inline(__always) func checkEOF(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) {
        guard !e.pointee.flags.contains(.didEOF),
              e.pointee.flags.contains(.finSeen) || e.pointee.state == .closed || e.pointee.state == .reset,
              !dataPending(c, e) else { return }
        e.pointee.flags.insert(.didEOF)
        if c.pointee.tcp.contains(.closeDeferred) {
            // Zeek closes the endpoint whose data ended, which need not be the one that
            // asked to close.
            connectionClosed(c, e, finished: c.pointee.tcp.contains(.deferredFinish))
            c.pointee.tcp.remove(.closeDeferred)
        }
    }

    /// Zeek's ConnectionClosed: `e` closed (by FIN, or RST). Once both sides have closed, or
    /// one was reset, or the other never spoke, the connection is due `tcpCloseDelay` after
    /// its last packet; otherwise the expire timer looks at it again.
    func connectionClosed(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, finished: Bool) {
        if dataPending(c, e) {
            c.pointee.tcp.insert(.closeDeferred)
            if finished { c.pointee.tcp.insert(.deferredFinish) }
            return
        }
        c.pointee.tcp.remove(.closeDeferred)
        guard !e.pointee.flags.contains(.didClose) else { return }
        e.pointee.flags.insert(.didClose)
        dueMayBeEarlier = true
        let p = peer(of: e, in: c)
        let complete = e.pointee.state == .reset || p.pointee.flags.contains(.didClose) || p.pointee.state == .inactive
        if complete {
            if e.pointee.previousState != .inactive || p.pointee.state != .inactive {
                var finish = finished
                if c.pointee.tcp.contains(.deferredFinish) {
                    finish = true
                    c.pointee.tcp.remove(.deferredFinish)
                }
                if finish { c.pointee.tcp.insert(.notActive) } // connection_finished
            }
            c.pointee.tcp.remove([.expireA, .expireC, .attemptArmed])
            c.pointee.tcp.insert(.deleteArmed)
            c.pointee.timerA = c.pointee.last &+ configuration.tcpCloseDelay
            c.pointee.timerC = .max
        } else if e.pointee.previousState != .inactive {
            addExpireTimer(c, at: c.pointee.last &+ configuration.tcpSessionTimer)
        }
    }
}
