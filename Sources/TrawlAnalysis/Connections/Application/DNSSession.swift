/// What Zeek's DNS analyzer (src/analyzer/protocol/dns) does to a UDP connection's conn.log
/// row: it turns the connection around when the first message it reads is a response from
/// the originator; it marks X in the history for a message it will not parse (unknown
/// opcode, too many questions); and its own timer ends the connection once it has been
/// quiet for 9 of the 10 seconds between the timer's runs, so that a long-lived pair of
/// ports becomes one connection per exchange. Only the 12-byte header is looked at.
extension ConnectionTracker {
    /// base/protocols/dns's UDP ports (DNS, NetBIOS name service, mDNS, LLMNR).
    @inline(__always) static func isDNSPort(_ port: UInt16) -> Bool {
        port == 53 || port == 137 || port == 5353 || port == 5355
    }
    /// Zeek's dns_session_timeout and dns_max_queries.
    static let dnsSessionTimeout: UInt64 = 10_000_000_000
    static let dnsMaximumQueries: UInt16 = 25

    func dnsMessage(_ c: UnsafeMutablePointer<Connection>, _ payload: UnsafeRawBufferPointer, isOrig: Bool) {
        guard payload.count >= 12 else {
            weirdCounter.pointee.note(.dnsTruncatedLenLtHdrLen)
            return
        }
        let flags = payload.be16(2), questions = payload.be16(4)
        let opcode = (flags >> 11) & 0xf
        let netBIOS = c.pointee.origPort == 137 || c.pointee.respPort == 137
        // Queries, notifications and dynamic updates; NetBIOS registrations look like queries.
        guard opcode == 0 || opcode == 4 || opcode == 5 || netBIOS else {
            weirdCounter.pointee.note(.dnsUnknownOpcode, detail: .value(Int(opcode)))
            markAnalyzerLimit(c)
            return
        }
        if !c.pointee.flags.contains(.applicationMessageSeen) && flags & 0x8000 != 0 && isOrig {
            // A response first, from the originator (so to the responder): the other side
            // asked. Not when the responder is a multicast group.
            if !decoded.pointee.destination.isMulticast { flipUDP(c) }
        }
        c.pointee.flags.insert(.applicationMessageSeen)
        if questions > Self.dnsMaximumQueries {
            weirdCounter.pointee.note(.dnsConnCountTooLarge, detail: .pair(Int(questions), Int(Self.dnsMaximumQueries)))
            markAnalyzerLimit(c)
            applicationViolation(c)
        }
    }

    /// The DNS analyzer's timer: it ends a connection quiet for all but a second of its
    /// period, else runs again a period later.
    func fireDNSTimer(_ c: UnsafeMutablePointer<Connection>, at t: UInt64) -> Bool {
        guard c.pointee.flags.contains(.dnsAnalyzer), c.pointee.timerA <= t else { return false }
        if t &- c.pointee.last >= Self.dnsSessionTimeout - 1_000_000_000 { return true }
        c.pointee.timerA = t &+ Self.dnsSessionTimeout
        return false
    }
}
