/// Zeek's protocol analyzers do not only write logs of their own: a few change the
/// conn.log row of the connection they analyse. Outside bare mode (where Zeek's default
/// scripts put them on their ports), Trawl does what those analyzers do to the row, and
/// nothing more. Each is a small file here: `DNSSession` (UDP 53, 137, 5353, 5355) and
/// `NTPSession` (UDP 123). Which analyzer a connection gets is decided when it is made,
/// by its responder port, as Zeek's analyzer tree is built.
extension ConnectionTracker {
    /// Puts the analyzer of the responder port on a new UDP connection outside bare mode.
    func attachApplication(_ connection: inout Connection) {
        guard !configuration.bareMode, connection.proto == 17 else { return }
        let port = connection.respPort
        if Self.isDNSPort(port) {
            connection.flags.formUnion([.applicationAnalyzer, .dnsAnalyzer])
            connection.timerA = clock &+ Self.dnsSessionTimeout
        } else if port == 123 {
            connection.flags.formUnion([.applicationAnalyzer, .ntpAnalyzer])
        }
    }

    /// The connection's analyzer reads the datagram (from the originator when `isOrig`),
    /// before it is counted.
    func applicationMessage(_ c: UnsafeMutablePointer<Connection>, isOrig: Bool) {
        let d = decoded.pointee
        let payload = UnsafeRawBufferPointer(rebasing: d.bytes[d.payloadStart..<max(d.payloadStart, d.payloadEnd)])
        if c.pointee.flags.contains(.dnsAnalyzer) {
            dnsMessage(c, payload, isOrig: isOrig)
        } else if c.pointee.flags.contains(.ntpAnalyzer) {
            ntpMessage(c, payload, isOrig: isOrig)
        }
    }

    /// Zeek's Connection::FlipRoles under a UDP analyzer: the addresses and the packet
    /// counts change sides; UDP's payload sizes, kept by its adapter, do not; the history
    /// gets its "^".
    func flipUDP(_ c: UnsafeMutablePointer<Connection>) {
        c.pointee.flags.formSymmetricDifference(.origIsLow)
        swap(&c.pointee.orig.packets, &c.pointee.resp.packets)
        swap(&c.pointee.orig.ipBytes, &c.pointee.resp.ipBytes)
        swapSideTables(uid: c.pointee.uid)
        appendRaw(c, UInt8(ascii: "^"))
    }

    /// An analyzer violation: DPD takes the analyzer off the connection (with its timer),
    /// unless more than 10 KiB of payload went by (its ignore_violations_after).
    func applicationViolation(_ c: UnsafeMutablePointer<Connection>) {
        guard c.pointee.orig.payloadBytes &+ c.pointee.resp.payloadBytes <= Self.violationsIgnoredAfter else { return }
        c.pointee.flags.subtract([.applicationAnalyzer, .dnsAnalyzer, .ntpAnalyzer])
        c.pointee.timerA = .max
    }

    static let violationsIgnoredAfter: UInt64 = 10 * 1024
}
