/// Finds the packet carried inside a tunnel, as Zeek's tunnel analyzers do.
enum Tunnel {
    enum Kind {
        case ipInIP, gre, vxlan, geneve, teredo, ayiya, gtpU
        /// UDP tunnels are connections of their own, logged beside the inner ones; GRE and
        /// IP-in-IP are not.
        var outerIsConnection: Bool {
            switch self {
            case .ipInIP, .gre: return false
            default: return true
            }
        }
    }

    /// The inner packet of `packet` (whose IP header starts at `ipStart` in `bytes`), as a
    /// slice of `bytes` and the link type to decode it with, or nil when it is no tunnel.
    static func inner(proto: UInt8, ports: (UInt16, UInt16), payloadStart start: Int, end: Int, in bytes: UnsafeRawBufferPointer)
        -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)?
    {
        guard start <= end, end <= bytes.count else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        switch proto {
        case 4, 41:
            return payload.isEmpty ? nil : (.ipInIP, payload, 101)
        case 47:
            return gre(payload)
        case 17:
            func either(_ port: UInt16) -> Bool { ports.0 == port || ports.1 == port }
            if either(4789) { return vxlan(payload) }
            if either(6081) { return geneve(payload) }
            if either(2152) { return gtp(payload) }
            if either(3544) { return teredo(payload) }
            if either(5072) { return ayiya(payload) }
            return nil
        default:
            return nil
        }
    }

    private static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }

    private static func slice(_ b: UnsafeRawBufferPointer, from start: Int) -> UnsafeRawBufferPointer? {
        start < b.count ? UnsafeRawBufferPointer(rebasing: b[start...]) : nil
    }

    static func gre(_ b: UnsafeRawBufferPointer) -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)? {
        guard b.count >= 4 else { return nil }
        let flags = b[0], version = b[1] & 0x07
        let proto = u16(b, 2)
        var offset = 4
        if version == 1 { // enhanced GRE (PPTP): key always, sequence and ack optional
            offset += 4
            if flags & 0x10 != 0 { offset += 4 }
            if b[1] & 0x80 != 0 { offset += 4 }
            guard proto == 0x880b, b.count > offset + 4 else { return nil }
            // PPP inside: address/control may be compressed away.
            var at = offset
            if b[at] == 0xff && b[at + 1] == 0x03 { at += 2 }
            let pppProto = b[at] & 1 == 1 ? UInt16(b[at]) : u16(b, at)
            at += b[at] & 1 == 1 ? 1 : 2
            guard pppProto == 0x0021 || pppProto == 0x0057, let inner = slice(b, from: at) else { return nil }
            return (.gre, inner, 101)
        }
        if flags & 0x80 != 0 { offset += 4 } // checksum and reserved
        if flags & 0x20 != 0 { offset += 4 } // key
        if flags & 0x10 != 0 { offset += 4 } // sequence number
        switch proto {
        case 0x0800, 0x86dd:
            return slice(b, from: offset).map { (.gre, $0, 101) }
        case 0x6558: // transparent Ethernet bridging
            return slice(b, from: offset).map { (.gre, $0, 1) }
        case 0x88be: // ERSPAN type II (a sequence number is present) or type I (none: no header)
            let header = flags & 0x10 != 0 ? 8 : 0
            return slice(b, from: offset + header).map { (.gre, $0, 1) }
        case 0x22eb: // ERSPAN type III: 12 bytes, and 8 more with the optional subheader
            guard b.count >= offset + 12 else { return nil }
            let optional = b[offset + 11] & 0x01 != 0 ? 8 : 0
            return slice(b, from: offset + 12 + optional).map { (.gre, $0, 1) }
        default:
            return nil
        }
    }

    static func vxlan(_ b: UnsafeRawBufferPointer) -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)? {
        guard b.count >= 8 + 14, b[0] & 0x08 != 0 else { return nil }
        return slice(b, from: 8).map { (.vxlan, $0, 1) }
    }

    static func geneve(_ b: UnsafeRawBufferPointer) -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)? {
        guard b.count >= 8 else { return nil }
        let optionsLength = Int(b[0] & 0x3f) * 4
        let proto = u16(b, 2)
        guard let inner = slice(b, from: 8 + optionsLength) else { return nil }
        switch proto {
        case 0x6558: return (.geneve, inner, 1)
        case 0x0800, 0x86dd: return (.geneve, inner, 101)
        default: return nil
        }
    }

    static func gtp(_ b: UnsafeRawBufferPointer) -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)? {
        guard b.count >= 8, b[0] >> 5 == 1, b[1] == 0xff else { return nil } // GTPv1, G-PDU
        var offset = 8
        if b[0] & 0x07 != 0 { // sequence, N-PDU or extension headers present
            guard b.count >= 12 else { return nil }
            var next = b[11]
            offset = 12
            while next != 0 {
                guard b.count > offset else { return nil }
                let length = Int(b[offset]) * 4
                guard length > 0, b.count >= offset + length else { return nil }
                next = b[offset + length - 1]
                offset += length
            }
        }
        guard let inner = slice(b, from: offset), let first = inner.first, first >> 4 == 4 || first >> 4 == 6 else { return nil }
        return (.gtpU, inner, 101)
    }

    static func teredo(_ b: UnsafeRawBufferPointer) -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)? {
        var offset = 0
        while b.count >= offset + 2 && b[offset] == 0 {
            if b[offset + 1] == 1 { // authentication indicator
                guard b.count >= offset + 4 else { return nil }
                offset += 4 + Int(b[offset + 2]) + Int(b[offset + 3]) + 8 + 1
            } else if b[offset + 1] == 0 { // origin indicator
                offset += 8
            } else {
                return nil
            }
        }
        guard b.count >= offset + 40, b[offset] >> 4 == 6 else { return nil }
        return slice(b, from: offset).map { (.teredo, $0, 101) }
    }

    static func ayiya(_ b: UnsafeRawBufferPointer) -> (kind: Kind, bytes: UnsafeRawBufferPointer, linkType: UInt32)? {
        guard b.count >= 8 else { return nil }
        let identity = 1 << Int(b[0] >> 4)
        let signature = Int(b[1] >> 4) * 4
        let next = b[3]
        guard next == 4 || next == 41 else { return nil }
        return slice(b, from: 8 + identity + signature).map { (.ayiya, $0, 101) }
    }
}
