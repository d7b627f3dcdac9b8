/// Ethernet II and IEEE 802.3 frames, with Cisco FabricPath's outer header skipped.
enum Ethernet {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 16 else { return .weird(.truncatedEthernetFrame) }
        if b[view.start + 12] == 0x89 && b[view.start + 13] == 0x03 { // FabricPath: a 16-byte header first
            guard view.count > 16 + 14 else { return .weird(.truncatedLinkHeaderCfp) }
            view.start += 16
        }
        let type = b.be16(view.start + 12)
        view.start += 14
        return IEEE8023.typeOrLength(type, b, &view, truncated: .truncatedEthernetFrame, undefined: .undefinedEtherType)
    }
}

/// What follows a type-or-length field (Ethernet's, a VLAN tag's): an EtherType from 1536 up;
/// up to 1500, an 802.3 length, with SNAP, Novell raw 802.3 or plain LLC after it.
enum IEEE8023 {
    static func typeOrLength(_ value: UInt16, _ b: UnsafeRawBufferPointer, _ view: inout ByteView,
                             truncated: Weird, undefined: Weird) -> AnalyzerStep {
        if value >= 1536 { return .dispatch(UInt64(value)) }
        guard value <= 1500 else { return .weird(undefined) }
        guard view.count >= 2 else { return .weird(truncated) }
        if view.count > Int(value) { view.end = view.start + Int(value) } // padding after the frame
        switch (b[view.start], b[view.start + 1]) {
        case (0xaa, 0xaa): return .dispatch(AnalyzerRegistry.snapKey)
        case (0xff, 0xff): return .dispatch(AnalyzerRegistry.novellKey)
        default: return .dispatch(AnalyzerRegistry.llcKey)
        }
    }
}

/// IEEE 802.2 LLC: dispatched by the destination SAP (nothing is registered for one).
enum LLC {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count >= 3 else { return .weird(.truncatedLlcHeader) }
        // An unnumbered PDU has a 1-byte control field, others 2.
        guard view.count >= (b[view.start + 2] & 0x03 == 0x03 ? 3 : 4) else { return .weird(.truncatedLlcHeader) }
        return .dispatch(UInt64(b[view.start]))
    }
}

/// IEEE 802.2 SNAP: LLC, then an OUI and a protocol, dispatched together (OUI << 16 | type).
enum SNAP {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count >= 3 else { return .weird(.truncatedSnapLlcHeader) }
        let llc = b[view.start + 2] & 0x03 == 0x03 ? 3 : 4
        guard view.count >= llc + 5 else { return .weird(.truncatedSnapHeader) }
        view.start += llc
        let oui = UInt64(b[view.start]) << 16 | UInt64(b[view.start + 1]) << 8 | UInt64(b[view.start + 2])
        let type = UInt64(b.be16(view.start + 3))
        view.start += 5
        return .dispatch(oui << 16 | type)
    }
}

/// Novell's raw 802.3 (IPX): handed to the default analyzer, of which there is none.
enum Novell8023 {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep { .forward }
}

/// FDDI: a 13-byte header and 8 bytes of LLC/SNAP, then IP.
enum FDDI {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 21 else { return .weird(.fddiAnalyzerFailed) }
        view.start += 21
        return .forward
    }
}
