/// What Zeek's NTP analyzer (src/analyzer/protocol/ntp) does to a UDP connection's conn.log
/// row: the first client-mode message from the responder, or server-mode message from the
/// originator, that parses turns the connection around, once. A message that does not
/// parse is an analyzer violation, which takes the analyzer off.
extension ConnectionTracker {
    func ntpMessage(_ c: UnsafeMutablePointer<Connection>, _ payload: UnsafeRawBufferPointer, isOrig: Bool) {
        guard let mode = Self.ntpMode(payload) else {
            applicationViolation(c)
            return
        }
        guard !c.pointee.flags.contains(.applicationMessageSeen) else { return } // turned around already
        if (mode == 4 && isOrig) || (mode == 3 && !isOrig) {
            flipUDP(c)
            c.pointee.flags.insert(.applicationMessageSeen)
        }
    }

    /// The mode of an NTP message that Zeek's parser (ntp-protocol.pac) takes whole, nil for
    /// one it throws out: modes 1 to 5 need the 48 bytes of the standard header and, past
    /// 24 more, extension fields that hold together; mode 6 its 12-byte header and data;
    /// mode 7 its header, data and, when flagged, a MAC.
    static func ntpMode(_ p: UnsafeRawBufferPointer) -> UInt8? {
        guard p.count >= 1 else { return nil }
        let mode = p[0] & 7
        switch mode {
        case 1...5:
            guard p.count >= 48 else { return nil }
            var at = 48
            if p.count - at > 24 {
                repeat {
                    guard at + 18 <= p.count else { return nil }
                    let length = Int(p.be16(at + 2))
                    let valueLength = Int(p.be32(at + 14))
                    guard length >= 22, valueLength <= length - 22 else { return nil }
                    let signatureAt = at + 18 + valueLength
                    guard signatureAt + 4 <= p.count else { return nil }
                    guard signatureAt + 4 + Int(p.be32(signatureAt)) <= p.count, at + length <= p.count else { return nil }
                    at += length
                } while p.count - at > 24
            }
            return mode
        case 6:
            guard p.count >= 12, 12 + Int(p.be16(10)) <= p.count else { return nil }
            return mode
        case 7:
            guard p.count >= 6 else { return nil }
            let end = 6 + Int(p.be16(4) & 0x0fff) + (p[1] & 0x80 != 0 ? 20 : 0)
            return end <= p.count ? mode : nil
        default:
            return mode
        }
    }
}
