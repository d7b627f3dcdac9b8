/// Zeek's check of an IP packet found inside a tunnel (packet_analysis::IP::ParsePacket):
/// the version is the one expected, and the packet is exactly as long as its header says.
enum InnerIP {
    enum Check { case ok, badVersion, tooShort, tooLong }

    static func check(_ b: UnsafeRawBufferPointer, _ view: ByteView, v6: Bool) -> Check {
        let stated: Int
        if v6 {
            guard view.count >= 40 else { return .tooShort }
            guard b[view.start] >> 4 == 6 else { return .badVersion }
            stated = Int(b.be16(view.start + 4)) + 40
        } else {
            guard view.count >= 20 else { return .badVersion }
            guard b[view.start] >> 4 == 4 else { return .badVersion }
            stated = Int(b.be16(view.start + 2))
        }
        if view.count < stated { return .tooShort }
        if view.count > stated { return .tooLong }
        return .ok
    }

    /// Whether the IPv6 packet is a Teredo bubble: no next header, and no payload.
    static func isBubble(_ b: UnsafeRawBufferPointer, _ view: ByteView) -> Bool {
        var scratch = Weirds() // the chain's weirds are noted when the inner packet is analysed
        let chain = IPv6Chain(b, start: view.start, captured: view.count, weirds: &scratch)
        return chain.nextHeader == IPv6Chain.noNextHeader && Int(b.be16(view.start + 4)) + 40 == chain.length
    }
}
