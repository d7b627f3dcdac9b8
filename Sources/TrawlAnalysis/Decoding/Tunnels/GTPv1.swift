/// GTPv1 (3GPP TS 29.060): user-plane G-PDUs carry an IP packet after the header, its
/// optional fields and extension headers. Control messages carry none. The inner packet
/// must be exactly as long as its header says.
enum GTPv1 {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView, insideGTP: Bool) -> AnalyzerStep {
        let s = view.start
        guard view.count >= 8 else { return .violation("Binpac exception: GTPv1 header truncated") }
        let flags = b[s], type = b[s + 1]
        var header = 8
        if flags & 0x07 != 0 { // sequence number, N-PDU number or next extension header
            guard view.count >= 12 else { return .violation("Binpac exception: GTPv1 header truncated") }
            header = 12
        }
        if flags & 0x04 != 0 { // extension headers, until one names none next
            var next: UInt8
            repeat {
                guard view.count > header else { return .violation("Binpac exception: GTPv1 extension truncated") }
                let length = Int(b[s + header]) * 4
                guard length >= 2, view.count >= header + length else {
                    return .violation("Binpac exception: GTPv1 extension truncated")
                }
                next = b[s + header + length - 1]
                header += length
            } while next != 0
        }
        if insideGTP { return .violation("GTP-in-GTP") }
        guard flags >> 5 == 1 else { return .violation("GTPv1 bad Version") }
        guard flags & 0x10 != 0 else { return .stop } // GTP' (protocol type 0)
        guard type == 255 else { return .stop }       // a control message: no packet inside
        guard view.count - header >= 20 else { return .violation("Truncated GTPv1") }
        let version = b[s + header] >> 4
        guard version == 4 || version == 6 else { return .violation("non-IP packet in GTPv1") }
        view.start += header
        switch InnerIP.check(b, view, v6: version == 6) {
        case .ok: return .forward
        case .badVersion: return .violation("Invalid IP version in wrapped packet")
        case .tooShort: return .violation("Truncated GTPv1")
        case .tooLong: return .violation("GTPv1 payload length")
        }
    }
}
