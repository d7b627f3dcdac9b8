/// What Zeek's DNS analyzer (src/analyzer/protocol/dns) does to a UDP connection's conn.log
/// row outside bare mode, where base/protocols/dns puts it on the DNS ports: it turns the
/// connection around when the first message it reads is a response from the originator;
/// it marks X in the history for a message it will not parse (unknown opcode, too many
/// questions); and its own timer ends the connection once it has been quiet for 9 of the
/// 10 seconds between the timer's runs, so that a long-lived pair of ports becomes one
/// connection per exchange. Only the 12-byte header is looked at: nothing else of the
/// analyzer changes conn.log but the service column, which Trawl does not fill.
extension ConnectionTracker {
    /// base/protocols/dns's UDP ports (DNS, NetBIOS name service, mDNS, LLMNR).
    @inline(__always) static func isDNSPort(_ port: UInt16) -> Bool {
        port == 53 || port == 137 || port == 5353 || port == 5355
    }
    /// Zeek's dns_session_timeout and dns_max_queries.
    static let dnsSessionTimeout: UInt64 = 10_000_000_000
    static let dnsMaximumQueries: UInt32 = 25
    /// DPD's ignore_violations_after: a violation past this many payload bytes leaves the
    /// analyzer on.
    static let dnsViolationsIgnoredAfter: UInt64 = 10 * 1024

    /// Puts the DNS analyzer on a new UDP connection whose responder port is a DNS port.
    func attachDNS(_ connection: inout Connection) {
        guard !configuration.bareMode, connection.proto == 17, Self.isDNSPort(connection.respPort) else { return }
        connection.flags.insert(.dnsAnalyzer)
        connection.timerA = clock &+ Self.dnsSessionTimeout
    }

    /// The DNS analyzer reads the header of a datagram from the originator (`isOrig`) or the
    /// responder; it runs before the datagram is counted, as Zeek's does.
    func dnsMessage(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool) {
        guard let header = decoded.pointee.dnsHeader else {
            weirdCounter.pointee.note(.dnsTruncatedLenLtHdrLen)
            return
        }
        let flags = header >> 16, questions = header & 0xffff
        let opcode = (flags >> 11) & 0xf
        let netBIOS = c.pointee.origPort == 137 || c.pointee.respPort == 137
        // Queries, notifications and dynamic updates; NetBIOS registrations look like queries.
        guard opcode == 0 || opcode == 4 || opcode == 5 || netBIOS else {
            weirdCounter.pointee.note(.dnsUnknownOpcode)
            markAnalyzerLimit(c)
            return
        }
        if !c.pointee.flags.contains(.dnsMessageSeen) && flags & 0x8000 != 0 && isOrig {
            // A response first, from the originator (so to the responder): the other side
            // asked. Not when the responder is a multicast group.
            if !decoded.pointee.destination.isMulticast { flipDNS(c) }
        }
        c.pointee.flags.insert(.dnsMessageSeen)
        if questions > Self.dnsMaximumQueries {
            weirdCounter.pointee.note(.dnsConnCountTooLarge)
            markAnalyzerLimit(c)
            // An analyzer violation: DPD takes the analyzer off, and its timer with it.
            if c.pointee.orig.payloadBytes &+ c.pointee.resp.payloadBytes <= Self.dnsViolationsIgnoredAfter {
                c.pointee.flags.remove(.dnsAnalyzer)
                c.pointee.timerA = .max
            }
        }
    }

    /// Zeek's Connection::FlipRoles under the DNS analyzer: the addresses and the packet
    /// counts change sides; UDP's payload sizes, kept by its adapter, do not; the history
    /// gets its "^".
    private func flipDNS(_ c: UnsafeMutablePointer<Connection>) {
        c.pointee.flags.formSymmetricDifference(.origIsLow)
        swap(&c.pointee.orig.packets, &c.pointee.resp.packets)
        swap(&c.pointee.orig.ipBytes, &c.pointee.resp.ipBytes)
        swapSideTables(uid: c.pointee.uid)
        appendRaw(c, UInt8(ascii: "^"))
    }

    /// Zeek's history letter X: an analyzer limit was reached (once per connection).
    func markAnalyzerLimit(_ c: UnsafeMutablePointer<Connection>) {
        guard !c.pointee.flags.contains(.analyzerLimit) else { return }
        c.pointee.flags.insert(.analyzerLimit)
        appendLetter(c, isOrig: true, "X")
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
