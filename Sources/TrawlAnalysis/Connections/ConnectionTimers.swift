/// When a connection ends by itself: Zeek's timers (inactivity; for TCP the attempt, expire
/// and delete timers). Zeek runs each timer at the first packet, of any connection, at or
/// after its time. Here they run at the connection's own packets, exactly so, and at the
/// tracker's sweep once a second for the ones that can end it; an expire timer that could
/// only set itself again is left for the connection's next packet.
extension ConnectionTracker {
    func inactivityTimeout(_ c: UnsafeMutablePointer<Connection>) -> UInt64 {
        switch c.pointee.proto {
        case 6:
            // Zeek gives a TCP connection UDP's timeout until it leaves the handshake, and an
            // hour to an interactive service.
            if _slowPath(c.pointee.tcp.contains(.interactive)) { return configuration.interactiveInactivityTimeout }
            return c.pointee.tcp.contains(.longTimeout) ? configuration.tcpInactivityTimeout : configuration.udpInactivityTimeout
        case 17: return configuration.udpInactivityTimeout
        case 1, 58: return configuration.icmpInactivityTimeout
        default: return configuration.unknownTransportInactivityTimeout
        }
    }

    /// The earliest time at which a timer may end the connection.
    func dueTime(_ c: UnsafeMutablePointer<Connection>) -> UInt64 {
        var due = c.pointee.last &+ inactivityTimeout(c)
        guard c.pointee.proto == 6 else { return min(due, c.pointee.timerA) } // UDP: the DNS timer
        let tcp = c.pointee.tcp
        if tcp.contains(.deleteArmed) { due = min(due, c.pointee.timerA) }
        guard !tcp.contains(.notActive) else { return due }
        if tcp.contains(.attemptArmed) && c.pointee.resp.state == .inactive { due = min(due, c.pointee.timerC) }
        if expireCanEnd(c) {
            if tcp.contains(.expireA) { due = min(due, c.pointee.timerA) }
            if tcp.contains(.expireC) { due = min(due, c.pointee.timerC) }
        }
        return due
    }

    /// Whether Zeek's expire timer ends the connection once it has been idle long enough:
    /// a side closed and (both did, or one was reset or never spoke), or neither spoke.
    private func expireCanEnd(_ c: UnsafeMutablePointer<Connection>) -> Bool {
        let o = c.pointee.orig, r = c.pointee.resp
        let origClosed = o.flags.contains(.didClose), respClosed = r.flags.contains(.didClose)
        if origClosed || respClosed {
            if (origClosed && respClosed) || o.state == .reset || r.state == .reset || o.state == .inactive || r.state == .inactive {
                return true
            }
        }
        return o.state == .inactive && r.state == .inactive
    }

    /// Runs the connection's timers due by `t` (the tracker's clock); true when it ends.
    @inline(__always) func fireTimers(_ c: UnsafeMutablePointer<Connection>, at t: UInt64) -> Bool {
        // Most packets: seen lately, no timer due.
        if _fastPath(t &- c.pointee.last < shortestInactivityTimeout && min(c.pointee.timerA, c.pointee.timerC) > t) { return false }
        guard c.pointee.last &+ inactivityTimeout(c) > t else { return true }
        guard _slowPath(min(c.pointee.timerA, c.pointee.timerC) <= t) else { return false }
        return fireTimersDue(c, at: t)
    }

    private func fireTimersDue(_ c: UnsafeMutablePointer<Connection>, at t: UInt64) -> Bool {
        guard c.pointee.proto == 6 else { return fireDNSTimer(c, at: t) }
        var tcp = c.pointee.tcp
        defer { c.pointee.tcp = tcp }
        if tcp.contains(.deleteArmed) && c.pointee.timerA <= t { return true }
        let active = !tcp.contains(.notActive)
        if tcp.contains(.attemptArmed) && c.pointee.timerC <= t {
            tcp.remove(.attemptArmed)
            c.pointee.timerC = .max
            let o = c.pointee.orig.state
            if active && (o == .synSent || o == .synAckSent) && c.pointee.resp.state == .inactive { return true }
        }
        let firesA = tcp.contains(.expireA) && c.pointee.timerA <= t
        let firesC = tcp.contains(.expireC) && c.pointee.timerC <= t
        guard firesA || firesC else { return false }
        if !active {
            // A finished or reset connection's expire timer stops.
            if firesA { tcp.remove(.expireA); c.pointee.timerA = .max }
            if firesC { tcp.remove(.expireC); c.pointee.timerC = .max }
            return false
        }
        if c.pointee.last &+ configuration.tcpConnectionLinger < t && expireCanEnd(c) { return true }
        let next = t &+ configuration.tcpSessionTimer
        if firesA { c.pointee.timerA = next }
        if firesC {
            // Two timers run at once from now on: they are one.
            if firesA { tcp.remove(.expireC); c.pointee.timerC = .max } else { c.pointee.timerC = next }
        }
        return false
    }

    /// Starts another run of the expire timer at `time` (after a half close).
    func addExpireTimer(_ c: UnsafeMutablePointer<Connection>, at time: UInt64) {
        dueMayBeEarlier = true
        if !c.pointee.tcp.contains(.expireA) && !c.pointee.tcp.contains(.deleteArmed) {
            c.pointee.timerA = time
            c.pointee.tcp.insert(.expireA)
        } else if !c.pointee.tcp.contains(.expireC) {
            // The attempt timer can no longer end it: a side that closed spoke first.
            c.pointee.tcp.remove(.attemptArmed)
            c.pointee.timerC = time
            c.pointee.tcp.insert(.expireC)
        } else {
            c.pointee.timerC = min(c.pointee.timerC, time)
        }
    }
}
