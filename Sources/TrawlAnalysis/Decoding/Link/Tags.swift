/// IEEE 802.1Q and 802.1ad VLAN tags.
enum VLAN {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 4 else { return .weird(.truncatedVLANHeader) }
        let type = b.be16(view.start + 2)
        view.start += 4
        return IEEE8023.typeOrLength(type, b, &view, truncated: .truncatedVLANHeader, undefined: .undefinedVlanProtocol)
    }
}

/// Cisco VN-Tag: 6 bytes, the last two an EtherType (Zeek follows it with VLAN tags only).
enum VNTag {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        .header(b, &view, length: 6, truncated: .truncatedVntagHeader, protocolAt: 4, AnalyzerStep.be16)
    }
}

/// IEEE 802.1ah provider backbone bridging: a 4-byte I-TAG, then the customer's Ethernet frame.
enum PBB {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 18 else { return .weird(.truncatedPBBHeader) }
        view.start += 4
        return .forward
    }
}

/// An MPLS label stack: labels up to the bottom of the stack, then (RFC 3032 names nothing)
/// the default analyzer, IP.
enum MPLS {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        var bottom = false
        while !bottom {
            guard view.count > 4 else { return .weird(.truncatedLinkHeader) }
            bottom = b[view.start + 2] & 0x01 != 0
            view.start += 4
        }
        return .forward
    }
}

/// PPPoE sessions: a 6-byte header whose length counts the 2-byte PPP protocol after it.
enum PPPoE {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 8 else { return .weird(.truncatedPppoeHeader) }
        let payload = Int(b.be16(view.start + 4))
        let type = b.be16(view.start + 6)
        let carried = payload >= 2 ? payload - 2 : 0
        view.start += 8
        view.end = view.start + min(carried, view.count)
        return .dispatch(UInt64(type))
    }
}
