/// PPP (LINKTYPE_PPP): with HDLC-like framing (0xff 0x03 first) or without.
enum PPP {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 2 else { return .weird(.truncatedPppHeader) }
        if b[view.start] == 0xff && b[view.start + 1] == 0x03 {
            guard view.count > 4 else { return .weird(.truncatedPppHdlcHeader) }
            view.start += 2
        }
        let type = b.be16(view.start)
        view.start += 2
        return .dispatch(UInt64(type))
    }
}

/// PPP in HDLC framing (LINKTYPE_PPP_HDLC): address, control, then the protocol.
enum PPPSerial {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        .header(b, &view, length: 4, truncated: .truncatedPppSerialHeader, protocolAt: 2, AnalyzerStep.be16)
    }
}

/// BSD loopback (LINKTYPE_NULL): a 4-byte address family in the capturing host's byte order.
enum Null {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        .header(b, &view, length: 4, truncated: .nullAnalyzerFailed, protocolAt: 0) { UInt64($0.le32($1)) }
    }
}

/// OpenBSD loopback (LINKTYPE_LOOP): the address family in network byte order.
enum Loop {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        .header(b, &view, length: 4, truncated: .nullAnalyzerFailed, protocolAt: 0) { UInt64($0.be32($1)) }
    }
}

/// Linux cooked capture v1: 16 bytes, the EtherType last.
enum LinuxSLL {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        .header(b, &view, length: 16, truncated: .truncatedLinuxSLLHeader, protocolAt: 14, AnalyzerStep.be16)
    }
}

/// Linux cooked capture v2: 20 bytes, the EtherType first.
enum LinuxSLL2 {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        .header(b, &view, length: 20, truncated: .truncatedLinuxSLL2Header, protocolAt: 0, AnalyzerStep.be16)
    }
}

/// Linux NFLOG: a 4-byte header (address family, version 0), then TLVs in host byte order
/// until the one that holds the packet.
enum NFLOG {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 4 else { return .weird(.truncatedNflogHeader) }
        let family = b[view.start]
        guard b[view.start + 1] == 0 else { return .weird(.unknownNflogVersion) }
        view.start += 4
        while true {
            guard view.count > 4 else { return .weird(.nflogNoPcapPayload) }
            let length = Int(b.le16(view.start)), type = b.le16(view.start + 2)
            if type == 9 { // NFULA_PAYLOAD
                view.start += 4
                return .dispatch(UInt64(family))
            }
            guard length >= 4 else { return .weird(.nflogBadTlvLen) }
            let padded = (length + 3) & ~3 // TLVs are padded to 4 bytes
            guard padded <= view.count else { return .weird(.nflogBadTlvLen, .pair(padded, view.count)) }
            view.start += padded
        }
    }
}

/// Skips a configured number of bytes (Zeek's PacketAnalyzer::SKIP::skip_bytes), then IP.
enum Skip {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView, bytes: Int) -> AnalyzerStep {
        guard bytes <= view.count else { return .weird(.skipBadLength, .pair(view.count, bytes)) }
        view.start += bytes
        return .forward
    }
}
