/// VXLAN (RFC 7348): 8 bytes with the I flag, then an Ethernet frame.
enum VXLAN {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count >= 8 else { return .violation("VXLAN header truncation") }
        guard b[view.start] & 0x08 != 0 else { return .violation("VXLAN 'I' flag not set") }
        view.start += 8
        guard view.count > 0 else { return .weird(.vxlanEmptyPacket) }
        return .forward
    }
}

/// Geneve (RFC 8926): 8 bytes and options, then what its protocol type names.
enum Geneve {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count >= 8 else { return .violation("Geneve header truncation") }
        guard b[view.start] >> 6 == 0 else { return .weird(.geneveInvalidVersion, .value(Int(b[view.start] >> 6))) }
        let header = 8 + Int(b[view.start] & 0x3f) * 4
        guard view.count >= header else { return .violation("Geneve option header truncation") }
        let type = b.be16(view.start + 2)
        view.start += header
        guard view.count > 0 else { return .weird(.geneveEmptyPacket) }
        return .dispatch(UInt64(type))
    }
}

/// AYIYA ("anything in anything"): a header with an identity and a signature whose sizes
/// it states; only "forward" messages carry a packet, of the IP protocol it names.
enum AYIYA {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count >= 8 else { return .violation("Truncated AYIYA") }
        let header = 8 + (1 << Int(b[view.start] >> 4)) + Int(b[view.start + 1] >> 4) * 4
        guard view.count >= header else { return .violation("Truncated AYIYA") }
        guard b[view.start + 2] & 0x0f == 1 else { return .stop } // not "forward"
        let next = b[view.start + 3]
        view.start += header
        guard view.count > 0 else { return .weird(.ayiyaEmptyPacket) }
        return .dispatch(UInt64(next))
    }

    /// Zeek's protocol detection on ports not registered for AYIYA.
    static func detect(_ b: UnsafeRawBufferPointer, _ view: ByteView) -> Bool {
        view.count >= 3 && b[view.start + 1] == 0x52 && b[view.start + 2] == 0x11
    }
}
