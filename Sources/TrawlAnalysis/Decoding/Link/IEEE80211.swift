/// IEEE 802.11 data frames: the MAC header (24 bytes, 30 with four addresses, 2 more with
/// QoS), then LLC/SNAP with an EtherType. Management and control frames, frames without
/// data and encrypted QoS frames end the analysis quietly. An A-MSDU carries several
/// subframes, each analysed as a packet of its own (`subframes`).
enum IEEE80211 {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        var header = 24
        guard view.count > header else { return .weird(.truncated80211Header) }
        let control = b[view.start], flags = b[view.start + 1]
        guard (control >> 2) & 0x02 != 0 else { return .stop }  // not a data frame
        guard (control >> 4) & 0x04 == 0 else { return .stop }  // a subtype without data
        if flags & 0x03 == 0x03 { header += 6 }                 // to and from DS: a 4th address
        guard view.count > header else { return .weird(.truncated80211Header) }
        var aggregate = false
        if (control >> 4) & 0x08 != 0 { // QoS
            aggregate = b[view.start + header] & 0x80 != 0
            if flags & 0x40 != 0 { return .stop } // protected: encrypted
            header += 2
        }
        guard view.count > header else { return .weird(.truncated80211Header) }
        view.start += header
        return aggregate ? .subframes : innerPacket(b, &view)
    }

    /// The LLC/SNAP header of one packet: encapsulated Ethernet (OUI 0) gives an EtherType.
    static func innerPacket(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count >= 8 else { return .weird(.truncated80211LlcHeader) }
        let s = view.start
        guard b[s] == 0xaa && b[s + 1] == 0xaa && b[s + 2] == 0x03 && b[s + 3] == 0 && b[s + 4] == 0 && b[s + 5] == 0 else {
            return .stop
        }
        let type = b.be16(s + 6)
        view.start += 8
        return .dispatch(UInt64(type))
    }

    /// Calls `body` with each A-MSDU subframe's packet; false (with a weird) when one is cut
    /// short or does not end in a known packet.
    static func forEachSubframe(_ b: UnsafeRawBufferPointer, _ view: ByteView, _ body: (ByteView) -> Bool) -> Weird? {
        var at = view.start
        while at < view.end {
            guard view.end - at >= 14 else { return .truncated80211AmsduHeader }
            let length = Int(b.be16(at + 12))
            guard view.end - at >= length + 14 else { return .truncated80211AmsduPacket }
            at += 14
            guard body(ByteView(start: at, end: at + length)) else { return .invalid80211AmsduInnerPacket }
            at += length
            let padding = length % 4 // subframes are padded to 4 bytes, the last one not
            if view.end - at >= padding { at += padding }
        }
        return nil
    }
}

/// Radiotap: a little-endian length at byte 2, then an 802.11 frame.
enum Radiotap {
    static func analyze(_ b: UnsafeRawBufferPointer, _ view: inout ByteView) -> AnalyzerStep {
        guard view.count > 3 else { return .weird(.truncatedRadiotapHeader) }
        let length = Int(b.le16(view.start + 2))
        guard length < view.count else { return .weird(.truncatedRadiotapHeader) }
        view.start += length
        return .dispatch(105)
    }
}
