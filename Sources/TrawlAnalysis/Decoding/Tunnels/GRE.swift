/// GRE (RFC 2784/2890), enhanced GRE for PPTP (version 1), ERSPAN types I to III, and
/// Aruba's 802.11 in GRE, as Zeek reads them. What it carries goes to the IP tunnel
/// analyzer, which gives the tunnel its uid.
enum GRE {
    struct Payload {
        /// The analyzer the inner packet starts with: IP, Ethernet or 802.11.
        var first: PacketAnalyzer
        /// For PPTP, the IP version the PPP header names (4 or 6): the inner packet must be
        /// exactly that long.
        var pptpVersion: UInt8?
    }

    enum Outcome {
        case payload(Payload)
        case weird(Weird, WeirdDetail = .none)
    }

    static func headerLength(_ flags: UInt16) -> Int {
        4 + (flags & 0x8000 != 0 ? 4 : 0)   // checksum and reserved
            + (flags & 0x2000 != 0 ? 4 : 0) // key
            + (flags & 0x1000 != 0 ? 4 : 0) // sequence number
            + (flags & 0x0080 != 0 ? 4 : 0) // acknowledgment (version 1)
    }

    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> Outcome {
        guard view.count >= 4 else { return .weird(.truncatedGRE) }
        let flags = b.be16(view.start), type = b.be16(view.start + 2)
        let version = flags & 0x07
        let length = view.count
        let header = headerLength(flags)
        var first = PacketAnalyzer.ip
        var ethernet = 0, erspan = 0
        let pptp = version == 1 ? 4 : 0
        switch version {
        case 0:
            switch type {
            case 0x6558: // transparent Ethernet bridging
                guard length > header + 14 else { return .weird(.truncatedGRE) }
                (ethernet, first) = (14, .ethernet)
            case 0x88be: // ERSPAN type I, or II when a sequence number is there
                guard length > header + 14 else { return .weird(.truncatedGRE) }
                (ethernet, first) = (14, .ethernet)
                if flags & 0x1000 != 0 {
                    erspan = 8
                    guard length >= header + ethernet + erspan else { return .weird(.truncatedGRE) }
                }
            case 0x22eb: // ERSPAN type III, 8 more bytes with the optional subheader
                guard length > header + 14 + 12 else { return .weird(.truncatedGRE) }
                (erspan, ethernet, first) = (12, 14, .ethernet)
                if b[view.start + header + erspan - 1] & 0x01 != 0 {
                    guard length > header + erspan + 8 + ethernet else { return .weird(.truncatedGRE) }
                    erspan += 8
                }
            case _ where isAruba(type):
                guard length > header else { return .weird(.truncatedGRE) }
                first = .ieee80211
            default:
                break // IP, or anything else, read as IP
            }
        case 1:
            guard type == 0x880b else { return .weird(.egreProtocolType, .value(Int(type))) }
        default:
            return .weird(.unknownGreVersion, .value(Int(version)))
        }
        if flags & 0x4000 != 0 { return .weird(.greRouting) }
        if flags & 0x0078 != 0 { return .weird(.unknownGreFlags) }
        guard length >= header + pptp + ethernet + erspan else { return .weird(.truncatedGRE) }
        var pptpVersion: UInt8?
        if version == 1 {
            switch b.be16(view.start + header + 2) { // PPP: address, control, protocol
            case 0x0021: pptpVersion = 4
            case 0x0057: pptpVersion = 6
            default: return .weird(.nonIpPacketInEncap)
            }
        }
        view.start += header + pptp + erspan
        return .payload(Payload(first: first, pptpVersion: pptpVersion))
    }

    /// Aruba's protocol types for 802.11 frames.
    private static func isAruba(_ type: UInt16) -> Bool {
        (type & 0x8200 == 0x8200 && type & 0x0f == 0) || (type & 0x8300 == 0x8300 && type & 0x0f == 0 && type <= 0x8370)
            || type == 0x9000
    }
}
