/// Zeek's TCP analysis of one packet (TCPSessionAdapter::Process and the state machine
/// behind it), step for step, so that sizes, states, history and gaps come out as Zeek's:
/// its quirks included, since operators compare the two logs.
///
/// `e` is the endpoint that sent the packet and `p` its peer. A connection can flip while a
/// packet is analysed (a SYN-ACK seen before its SYN); the endpoints then change places in
/// the connection and `e` and `p` follow them, while `sentByOrig`, as in Zeek, keeps the
/// role the packet arrived with.
extension ConnectionTracker {
    /// Zeek's TOO_LARGE_SEQ_DELTA: a SYN or RST this far from what was seen is not believed.
    static let tooLargeSequenceDelta: Int32 = 1_048_576

    func processTCP(_ c: UnsafeMutablePointer<Connection>, sentByOrig: Bool) {
        let d = decoded
        let flags = d.pointee.tcpFlags
        let syn = flags & TCPFlag.syn != 0, ack = flags & TCPFlag.ack != 0
        let fin = flags & TCPFlag.fin != 0, rst = flags & TCPFlag.rst != 0
        let base = d.pointee.sequence, ackNumber = d.pointee.acknowledgment
        let length = d.pointee.payloadLength
        var e = c.endpoint(isOrig: sentByOrig), p = c.endpoint(isOrig: !sentByOrig)

        setPartialStatus(c, isOrig: sentByOrig, syn: syn, ack: ack)
        // Sequence space the segment takes: SYN and FIN one each, a RST's data none.
        let segmentLength = UInt32(truncatingIfNeeded: (rst ? 0 : length) + (syn ? 1 : 0) + (fin ? 1 : 0))
        let onePast = base &+ segmentLength
        initEndpoint(e, syn: syn, base: base, onePast: onePast)

        var underflow = false
        let relativeSeq = Self.relativeSequence(e.pointee, base, last: e.pointee.last32, wraps: e.pointee.seqWraps, underflow: &underflow)
        if underflow && !rst { weirdCounter.pointee.note(.tcpSeqUnderflowOrMisorder) }

        if updateHistory(c, e, p, syn: syn, ack: ack, fin: fin, rst: rst, relativeSeq: relativeSeq, length: length) {
            swap(&e, &p) // the connection turned around: the endpoints changed places
        }
        // Zero windows matter unless they come with or after a reset, or after the peer's FIN.
        if d.pointee.window == 0 && !rst && p.pointee.state != .closed && e.pointee.state != .reset {
            bumpScaled(c, e, letter: "W") { $0.zeroWindows += 1; return $0.zeroWindows }
        }
        if !c.pointee.orig.flags.contains(.didClose) || !c.pointee.resp.flags.contains(.didClose) {
            c.pointee.last = now
        }
        if fin {
            e.pointee.flags.insert(.finSeen)
            e.pointee.finSeq = relativeSeq &+ UInt64(segmentLength)
        }

        var relativeAck: UInt64 = 0
        if ack {
            if p.pointee.state == .inactive {
                relativeAck = 1
                // Number the peer's sequence space as if its SYN had been seen.
                p.pointee.beginSequence(at: ackNumber &- 1, last: ackNumber &- 1)
            } else {
                var ackUnderflow = false
                relativeAck = Self.relativeSequence(p.pointee, ackNumber, last: p.pointee.ack32, wraps: p.pointee.ackWraps, underflow: &ackUnderflow)
                if ackUnderflow {
                    relativeAck = 0
                    weirdCounter.pointee.note(.tcpAckUnderflowOrMisorder)
                } else if !rst { // a RST's ack is not trusted
                    p.pointee.acknowledge(ackNumber)
                }
            }
        }

        let deltaLast = updateLastSeq(c, e, onePast: onePast, syn: syn, fin: fin, rst: rst, length: length)
        let (close, finished, flipped) = updateStateMachine(c, e, p, base: base, ackNumber: ackNumber, length: length,
                                                   deltaLast: deltaLast, sentByOrig: sentByOrig,
                                                   syn: syn, ack: ack, fin: fin, rst: rst)
        if flipped { swap(&e, &p) }
        // After the state machine, so that a gap revealed by the last ack (with a FIN or
        // RST) is judged by the states it leaves.
        if ack { ackReceived(c, p, relativeAck) }
        if sentByOrig { c.pointee.tcp.insert(.firstOrigPacket) } else { c.pointee.tcp.insert(.firstRespPacket) }

        let dataSeq = syn ? relativeSeq &+ 1 : relativeSeq
        if length > 0 && !rst && !underflow {
            if d.pointee.payloadEnd - d.pointee.payloadStart >= length {
                dataSent(c, e, at: dataSeq, length: UInt64(length))
            } else {
                weirdCounter.pointee.note(.truncatedTCPPayload)
            }
        }
        checkEOF(c, e)
        if close { connectionClosed(c, e, finished: finished) }
    }

    /// Header prediction, as BSD's TCP has it: the usual segment of an established
    /// connection (an ACK, with or without data, in order) takes a short path to the same
    /// result as the full analysis; anything else returns false, having changed nothing,
    /// and goes the long way.
    @inline(__always)
    func predicted(_ c: UnsafeMutablePointer<Connection>, sentByOrig: Bool) -> Bool {
        let d = decoded
        guard d.pointee.tcpFlags & (TCPFlag.syn | TCPFlag.fin | TCPFlag.rst | TCPFlag.ack) == TCPFlag.ack else { return false }
        let e = c.endpoint(isOrig: sentByOrig), p = c.endpoint(isOrig: !sentByOrig)
        let unusual: EndpointFlags = [.finSeen, .didClose, .ranges, .skipDeliveries]
        let base = d.pointee.sequence, length = d.pointee.payloadLength
        guard e.pointee.state == .established, p.pointee.state == .established,
              e.pointee.flags.isDisjoint(with: unusual), p.pointee.flags.isDisjoint(with: unusual),
              base == e.pointee.last32, d.pointee.window != 0,
              c.pointee.tcp.contains(sentByOrig ? .firstOrigPacket : .firstRespPacket),
              !c.pointee.tcp.contains(.closeDeferred),
              !c.pointee.history.isOnly(UInt8(ascii: "H")), // the ACK or data that turns it around
              d.pointee.payloadEnd - d.pointee.payloadStart >= length else { return false }
        var underflow = false
        let relativeSeq = Self.relativeSequence(e.pointee, base, last: base, wraps: e.pointee.seqWraps, underflow: &underflow)
        let ackNumber = d.pointee.acknowledgment
        let relativeAck = Self.relativeSequence(p.pointee, ackNumber, last: p.pointee.ack32, wraps: p.pointee.ackWraps, underflow: &underflow)
        guard !underflow else { return false }

        // The letter this segment records, the first time its role sends data or an ACK.
        let mark = (length > 0 ? HistoryMark.data : .ack).bit(isOrig: sentByOrig)
        if c.pointee.historySeen & mark == 0 {
            c.pointee.historySeen |= mark
            appendLetter(c, isOrig: sentByOrig, length > 0 ? "D" : "A")
        }
        c.pointee.last = now
        p.pointee.acknowledge(ackNumber)
        if length > 0 { e.pointee.advanceLastSeq(to: base &+ UInt32(truncatingIfNeeded: length)) }
        ackReceived(c, p, relativeAck)
        if length > 0 { dataSent(c, e, at: relativeSeq, length: UInt64(length)) }
        return true
    }

    // MARK: Sequence numbers

    /// Zeek's get_relative_seq: the 64-bit relative sequence number of `sequence`, given the
    /// last one seen and its wraps; a number before the start comes back as Zeek's does
    /// (a negative 32-bit difference, sign-extended), with `underflow` set.
    @inline(__always) static func relativeSequence(_ endpoint: Endpoint, _ sequence: UInt32, last: UInt32, wraps: UInt32,
                                 underflow: inout Bool) -> UInt64 {
        var wraps = wraps
        let delta = Int32(bitPattern: sequence &- last)
        if delta < 0 {
            if wraps != 0 && sequence > last { wraps -= 1 } // part of an earlier 32-bit space
        } else if delta > 0 {
            if sequence < last { wraps += 1 }               // the space wrapped
        }
        if wraps == 0 {
            let fromStart = Int32(bitPattern: sequence &- endpoint.startSeq)
            if fromStart < 0 { underflow = true }
            return UInt64(bitPattern: Int64(fromStart))
        }
        return endpoint.relative(sequence, wraps: wraps)
    }

    /// Zeek's init_endpoint: where an endpoint's sequence space starts.
    @inline(__always) private func initEndpoint(_ e: UnsafeMutablePointer<Endpoint>, syn: Bool, base: UInt32, onePast: UInt32) {
        func begin(at start: UInt32, last: UInt32) { e.pointee.beginSequence(at: start, last: last) }
        switch e.pointee.state {
        case .inactive:
            // Without a SYN, as though there had been one just before.
            if syn { begin(at: base, last: onePast) } else { begin(at: base &- 1, last: base) }
        case .synSent, .synAckSent:
            if syn && base != e.pointee.startSeq {
                weirdCounter.pointee.note(.synSeqJump)
                begin(at: base, last: onePast)
            }
        case .established, .partial:
            if syn {
                // Guess that this SYN is the one that really sets the connection up.
                if base != e.pointee.startSeq { weirdCounter.pointee.note(.synSeqJump) }
                begin(at: base, last: onePast)
            }
        case .reset:
            // A SYN after a RST that came first: the RST may have been injected.
            if syn && e.pointee.previousState == .inactive { begin(at: base, last: onePast) }
        case .closed:
            break
        }
    }

    /// Zeek's update_last_seq; returns how far `onePast` is past the last sequence number.
    private func updateLastSeq(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>,
                               onePast: UInt32, syn: Bool, fin: Bool, rst: Bool, length: Int) -> Int32 {
        let delta = Int32(bitPattern: onePast &- e.pointee.last32)
        func advance() { e.pointee.advanceLastSeq(to: onePast) }
        if (syn || rst) && (delta > Self.tooLargeSequenceDelta || delta < -Self.tooLargeSequenceDelta) {
            // not believed
        } else if fin && e.pointee.last32 == e.pointee.startSeq &+ 1 {
            advance() // only the SYN and this FIN seen: believe it even going back (> 2 GB)
        } else if e.pointee.state == .reset {
            // nothing after a reset is trusted
        } else if delta > 0 {
            advance()
        } else if length > 0 {
            bumpScaled(c, e, letter: "T") { $0.retransmissions += 1; return $0.retransmissions }
        }
        return delta
    }

    // MARK: Roles and history

    /// Zeek's SetPartialStatus: a connection is partial when its originator's first packet
    /// is not a plain SYN, or its responder's first is not a SYN.
    private func setPartialStatus(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool, syn: Bool, ack: Bool) {
        if isOrig {
            if !c.pointee.tcp.contains(.firstOrigPacket) {
                if !syn || ack { c.pointee.tcp.insert(.partial) } else { c.pointee.tcp.remove(.partial) }
            }
        } else if !c.pointee.tcp.contains(.firstRespPacket) && !c.pointee.tcp.contains(.partial) {
            if !syn { c.pointee.tcp.insert(.partial) }
        }
    }

    /// Turns a live connection around (Zeek's Connection::FlipRoles with its TCP adapter's):
    /// the endpoints, their side-table entries and the first-packet marks change places, and
    /// the history gets its "^". Whoever holds pointers to the endpoints swaps them.
    @inline(never) private func flipRoles(_ c: UnsafeMutablePointer<Connection>) {
        swap(&c.pointee.orig, &c.pointee.resp)
        c.pointee.flags.formSymmetricDifference(.origIsLow)
        let seenOrig = c.pointee.tcp.contains(.firstOrigPacket), seenResp = c.pointee.tcp.contains(.firstRespPacket)
        c.pointee.tcp.remove([.firstOrigPacket, .firstRespPacket, .partial])
        if seenOrig { c.pointee.tcp.insert(.firstRespPacket) }
        if seenResp { c.pointee.tcp.insert(.firstOrigPacket) }
        swapSideTables(uid: c.pointee.uid)
        appendRaw(c, UInt8(ascii: "^"))
    }

    /// Zeek's CheckHistory for endpoint `e`: records the letter the first time its role does
    /// this, and says whether it had been done before.
    @inline(__always)
    private func checkHistory(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>,
                              _ mark: HistoryMark, _ letter: Unicode.Scalar) -> Bool {
        let isOrig = isOriginator(c, e)
        let bit = mark.bit(isOrig: isOrig)
        guard c.pointee.historySeen & bit == 0 else { return true }
        c.pointee.historySeen |= bit
        appendLetter(c, isOrig: isOrig, letter)
        return false
    }

    /// A connection that began with a SYN-ACK, now seeing an ACK or data: not a stealth scan
    /// after all, so the SYN-ACK's sender was the responder; the history reads as if the SYN
    /// had been seen.
    @inline(never) private func flipAfterSYNACK(_ c: UnsafeMutablePointer<Connection>) {
        flipRoles(c)
        c.pointee.history = History()
        _ = c.pointee.history.append(UInt8(ascii: "^"))
        _ = c.pointee.history.append(UInt8(ascii: "h"))
        c.pointee.tcp.insert(.firstOrigPacket)
    }

    /// Zeek's update_history: one letter per kind and role, except that a SYN, FIN or RST at
    /// a new sequence number is recorded again. Returns whether the connection turned
    /// around (an ACK or data after nothing but a SYN-ACK: not a stealth scan after all).
    private func updateHistory(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>,
                               _ p: UnsafeMutablePointer<Endpoint>, syn: Bool, ack: Bool, fin: Bool, rst: Bool,
                               relativeSeq: UInt64, length: Int) -> Bool {
        let bitsSet = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0)
        let at = UInt32(truncatingIfNeeded: relativeSeq)
        if bitsSet > 1 {
            if fin && rst { _ = checkHistory(c, e, .finRST, "I") } else { _ = checkHistory(c, e, .multiFlag, "Q") }
        } else if bitsSet == 1 {
            if syn {
                let letter: Unicode.Scalar = ack ? "H" : "S"
                if checkHistory(c, e, .syn, letter) && at != e.pointee.lastSYN { appendLetter(c, isOrig: isOriginator(c, e), letter) }
                e.pointee.lastSYN = at
            }
            if fin {
                // A FIN's sequence number comes after the data it carries.
                let end = at &+ UInt32(truncatingIfNeeded: length)
                if checkHistory(c, e, .fin, "F") && end != e.pointee.lastFIN { appendLetter(c, isOrig: isOriginator(c, e), "F") }
                e.pointee.lastFIN = end
            }
            if rst {
                if checkHistory(c, e, .rst, "R") && at != e.pointee.lastRST { appendLetter(c, isOrig: isOriginator(c, e), "R") }
                e.pointee.lastRST = at
            }
        } else if length > 0 || ack {
            var sender = e
            let flips = c.pointee.history.isOnly(UInt8(ascii: "H"))
            if _slowPath(flips) {
                flipAfterSYNACK(c)
                sender = p // the sender's endpoint is in the other place now
            }
            if length > 0 { _ = checkHistory(c, sender, .data, "D") } else { _ = checkHistory(c, sender, .ack, "A") }
            return flips
        }
        return false
    }

    @inline(__always) func isOriginator(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>) -> Bool {
        e == c.endpoint(isOrig: true)
    }

    @inline(__always) func peer(of e: UnsafeMutablePointer<Endpoint>, in c: UnsafeMutablePointer<Connection>) -> UnsafeMutablePointer<Endpoint> {
        c.endpoint(isOrig: !isOriginator(c, e))
    }

    // MARK: The state machine

    /// Zeek's TCP_Endpoint::SetState: leaving the handshake gives the connection TCP's
    /// inactivity timeout.
    @inline(__always) func setState(_ c: UnsafeMutablePointer<Connection>, _ e: UnsafeMutablePointer<Endpoint>, _ state: TCPEndpointState) {
        guard state != e.pointee.state else { return }
        if !state.isHandshake && e.pointee.state.isHandshake && peer(of: e, in: c).pointee.state.isHandshake {
            c.pointee.tcp.insert(.longTimeout)
        }
        e.pointee.previousState = e.pointee.state
        e.pointee.state = state
        if state == .reset { dueMayBeEarlier = true } // the expire timer may end it now
    }

    /// Zeek's UpdateStateMachine; returns whether the packet closes its endpoint, and if so
    /// whether as a finish (a FIN, or a RST that was not a rejection), and whether the
    /// connection turned around (a SYN after its SYN-ACK).
    private func updateStateMachine(_ c: UnsafeMutablePointer<Connection>, _ sender: UnsafeMutablePointer<Endpoint>,
                                    _ receiver: UnsafeMutablePointer<Endpoint>, base: UInt32, ackNumber: UInt32, length: Int,
                                    deltaLast: Int32, sentByOrig: Bool,
                                    syn: Bool, ack: Bool, fin: Bool, rst: Bool) -> (close: Bool, finished: Bool, flipped: Bool) {
        var e = sender, p = receiver
        var close = false, finished = false, flipped = false
        switch e.pointee.state {
        case .inactive:
            if syn {
                if sentByOrig {
                    setState(c, e, ack ? .synAckSent : .synSent)
                    if ack { weirdCounter.pointee.note(.connectionOriginatorSYNAck) }
                    if !c.pointee.tcp.contains(.expireC) {
                        c.pointee.timerC = now &+ configuration.tcpAttemptDelay
                        c.pointee.tcp.insert(.attemptArmed)
                    }
                } else {
                    if !ack && p.pointee.state == .synAckSent && base == e.pointee.startSeq {
                        // The SYN-ACK came first and this is its SYN: turn the roles around.
                        flipRoles(c)
                        swap(&e, &p)
                        flipped = true
                        setState(c, p, .established)
                        c.pointee.tcp.insert(.firstOrigPacket)
                    }
                    if p.pointee.state == .synSent { setState(c, p, .established) }
                    setState(c, e, .established)
                    if p.pointee.state != .partial { connectionEstablished(c) }
                }
            }
            if fin {
                setState(c, e, .closed)
                (close, finished) = (true, true)
            }
            if rst {
                setState(c, e, .reset)
                let rejects = sentByOrig ? p.pointee.state == .established
                    : p.pointee.state == .synSent || p.pointee.state == .synAckSent
                (close, finished) = (true, !rejects)
            }
            if e.pointee.state == .inactive { // no flag changed it
                if !sentByOrig && length == 0 && c.pointee.orig.state == .synSent {
                    // an ack of the SYN before the SYN-ACK: not yet a partial connection
                } else if ack && p.pointee.state == .established {
                    // The SYN was missed but the SYN-ACK seen: established, not partial.
                    setState(c, e, .established)
                    c.pointee.tcp.remove(.partial)
                    c.pointee.tcp.insert(sentByOrig ? .firstOrigPacket : .firstRespPacket)
                } else {
                    setState(c, e, .partial)
                }
            }
        case .synSent, .synAckSent:
            if fin {
                setState(c, e, .closed)
                (close, finished) = (true, true)
            }
            if rst {
                setState(c, e, .reset)
                c.pointee.tcp.insert(.notActive) // connection_reset
                close = true
            }
        case .established, .partial:
            if syn && e.pointee.state == .partial && p.pointee.state == .inactive && !ack {
                setState(c, e, .synSent)
            }
            if fin && !rst {
                setState(c, e, .closed)
                // A FIN after the peer's FIN and RST: the RST was part of a normal close.
                if p.pointee.state == .reset && p.pointee.previousState == .closed { setState(c, p, .closed) }
                (close, finished) = (true, true)
            }
            if rst {
                setState(c, e, .reset)
                close = true
                if p.pointee.state != .reset || p.pointee.previousState != .established {
                    c.pointee.tcp.insert(.notActive)
                }
            }
        case .closed:
            // A RST after this side's FIN counts unless the peer closed too (a full FIN
            // exchange happened).
            if rst && p.pointee.state != .closed {
                setState(c, e, .reset)
                if !e.pointee.flags.contains(.didClose) { close = true }
            }
        case .reset:
            break
        }
        return (close, finished, flipped)
    }

    /// Zeek's connection_established, as base/protocols/conn/inactivity.zeek answers it: a
    /// connection to an interactive service's port (or, when its SYN was missed, from one)
    /// gets that service's longer inactivity timeout.
    private func connectionEstablished(_ c: UnsafeMutablePointer<Connection>) {
        var port = c.pointee.respPort
        if c.pointee.orig.state == .inactive && !isLikelyServerPort(port, proto: 6) && isLikelyServerPort(c.pointee.origPort, proto: 6) {
            port = c.pointee.origPort
        }
        if interactivePorts.contains(port) { c.pointee.tcp.insert(.interactive) }
        if _slowPath(statistics.watchesEstablishedHosts) { noteEstablishedHosts() }
    }
}
