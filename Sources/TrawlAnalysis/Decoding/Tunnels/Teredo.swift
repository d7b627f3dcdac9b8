/// Teredo (RFC 4380): IPv6 in UDP, after optional authentication and origin indication
/// headers. A bubble (an IPv6 header with no next header and no payload) keeps the
/// tunnel open and makes no connection.
enum Teredo {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView, weirds: inout Weirds) -> AnalyzerStep {
        var at = view.start
        var origin = false, authentication = false
        parse: while true {
            let left = view.end - at
            guard left >= 2 else {
                weirds.note(.truncatedTeredo)
                return .violation("Bad Teredo encapsulation")
            }
            switch b.be16(at) {
            case 0: // origin indication
                guard !origin else { return .violation("Bad Teredo encapsulation") }
                guard left >= 8 else {
                    weirds.note(.truncatedTeredoOriginIndication)
                    return .violation("Bad Teredo encapsulation")
                }
                origin = true
                at += 8
            case 1: // authentication, never after an origin indication
                guard !origin && !authentication else { return .violation("Bad Teredo encapsulation") }
                guard left >= 4 else {
                    weirds.note(.truncatedTeredoAuthentication)
                    return .violation("Bad Teredo encapsulation")
                }
                let total = 4 + Int(b[at + 2]) + Int(b[at + 3]) + 8 + 1
                guard left >= total else {
                    weirds.note(.truncatedTeredoAuthentication)
                    return .violation("Bad Teredo encapsulation")
                }
                authentication = true
                at += total
            case let tag where tag >> 12 == 6:
                guard left >= 40 else {
                    weirds.note(.truncatedIPv6InTeredo)
                    return .violation("Bad Teredo encapsulation")
                }
                break parse
            default:
                return .violation("Bad Teredo encapsulation")
            }
        }
        view.start = at
        switch InnerIP.check(b, view, v6: true) {
        case .ok: break
        case .tooLong:
            guard InnerIP.isBubble(b, view) else { return .violation("Teredo payload length") }
            weirds.note(.teredoBubbleWithPayload)
        case .tooShort, .badVersion:
            return .violation("Truncated Teredo or invalid inner IP version")
        }
        return .forward
    }

    /// Zeek's protocol detection on ports not registered for Teredo: an IPv6 header with a
    /// Teredo (2001:0::/32) address, or the authentication and origin indication headers.
    static func detect(_ b: UnsafeRawBufferPointer, _ view: ByteView) -> Bool {
        var at = view.start
        var left = view.count
        guard left >= 40 else { return false }
        let first = b[at], second = b[at + 1]
        if first >> 4 != 6 && (first != 0 || (second != 0 && second != 1)) { return false }
        // 2001:0::/32, as a source or destination address.
        let prefix: UInt32 = 0x2001_0000
        if first >= 0x60 && first <= 0x6f && (b.be32(at + 8) == prefix || b.be32(at + 24) == prefix) { return true }
        var value = UInt16(second)
        if value == 1 {
            let skip = 13 + Int(b[at + 2]) + Int(b[at + 3])
            guard left >= skip else { return false }
            at += skip
            left -= skip
            guard left >= 40 else { return false }
            value = b.be16(at)
        }
        guard value == 0, left >= 8 else { return false }
        at += 8
        left -= 8
        return left >= 40 && b[at] >> 4 == 6
    }
}
