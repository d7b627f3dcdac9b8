/// How the IP analyzer is to treat one packet.
struct IPContext {
    /// False with -C.
    var verifyChecksums = true
    /// The capture already verified the IP header checksum (TRAWL_PACKET_CHECKSUM_VERIFIED).
    var headerVerified = false
    /// A datagram put together from fragments: its header was rewritten, so its checksum
    /// is not checked again, and a fragment header inside it is not reassembled again.
    var reassembled = false
    /// The packet came out of a Teredo tunnel, where an IPv6 header with no next header
    /// is a bubble, not a weird.
    var insideTeredo = false
    /// The packet's captured and wire lengths, counted from the start of the bytes analysed.
    var capturedLength = 0
    var wireLength = 0
}

/// The IP analyzer, as Zeek's (packet_analysis/protocol/ip/IP.cc): checks the header's
/// lengths against what was captured and what was on the wire, the IPv4 checksum, finds
/// fragments, stops at ESP, mobility headers and IPv6's "no next header", and says where
/// the transport is. Fills the IP part of a `DecodedPacket`.
enum IPLayer {
    enum Outcome {
        /// A packet for the transport analyzer of `DecodedPacket.proto`.
        case transport
        /// A fragment, to be reassembled: the `fragment` argument describes it.
        case fragment
        /// Nothing for connection analysis, and something wrong: a weird says what.
        case none
        /// Nothing for connection analysis, and nothing wrong (ESP, a Teredo bubble).
        case ignored
    }

    @inline(__always)
    static func analyze(_ b: UnsafeRawBufferPointer, view: ByteView, context: IPContext, into out: inout DecodedPacket,
                        fragment: inout FragmentInfo, weirds: inout Weirds) -> Outcome {
        guard view.count >= 20 else {
            weirds.note(.truncatedIP)
            return .none
        }
        switch b[view.start] >> 4 {
        case 4: return analyzeV4(b, view: view, context: context, into: &out, fragment: &fragment, weirds: &weirds)
        case 6: return analyzeV6(b, view: view, context: context, into: &out, fragment: &fragment, weirds: &weirds)
        default:
            weirds.note(.unknownIpVersion)
            return .none
        }
    }

    /// The length checks both versions share, in Zeek's order; the total length to go by,
    /// or nil (with a weird).
    @inline(__always)
    private static func checkLengths(stated: Int, headerLength: Int, start: Int, captured: Int, context: IPContext,
                                     weirds: inout Weirds) -> Int? {
        var total = stated
        if total == 0 {
            // Segmentation offload zeroes the length of outgoing packets; with checksums
            // checked such a packet would fail anyway, so Zeek only believes the capture with -C.
            weirds.note(.ipHdrLenZero)
            guard !context.verifyChecksums else { return nil }
            total = context.capturedLength - start
        }
        guard context.wireLength >= total + start else {
            weirds.note(.truncatedIPLen)
            return nil
        }
        guard headerLength <= total else {
            weirds.note(.invalidIPHeaderSize)
            return nil
        }
        guard headerLength <= captured else {
            weirds.note(.internallyTruncatedHeader)
            return nil
        }
        return total
    }

    /// Where the transport is: what was captured after the headers, no more than the header
    /// states (Zeek's PayloadLen(), which is 0 when an IPv4 length was 0).
    @inline(__always)
    private static func locateTransport(_ out: inout DecodedPacket, start: Int, headerLength: Int, captured: Int) {
        let statedPayload = out.statedIPLength == 0 ? 0 : out.statedIPLength - headerLength
        var length = captured - headerLength
        if statedPayload != 0 { length = min(length, statedPayload) }
        out.headerLength = headerLength
        out.transportStart = start + headerLength
        out.transportCaptured = length
        out.transportStated = statedPayload
    }

    private static func analyzeV4(_ b: UnsafeRawBufferPointer, view: ByteView, context: IPContext, into out: inout DecodedPacket,
                                  fragment: inout FragmentInfo, weirds: inout Weirds) -> Outcome {
        let start = view.start, captured = view.count
        let headerLength = Int(b[start] & 0x0f) * 4
        let stated = Int(b.be16(start + 2))
        out.statedIPLength = stated
        guard let total = checkLengths(stated: stated, headerLength: headerLength, start: start, captured: captured,
                                       context: context, weirds: &weirds) else { return .none }
        guard headerLength >= 20 else {
            weirds.note(.ipv4MinHeaderSize)
            return .none
        }
        // Zeek's packet has its IP header from here: weirds are about its flow.
        out.source = IPAddress(v4: b, at: start + 12)
        out.destination = IPAddress(v4: b, at: start + 16)
        weirds.packetHasIP = true
        if context.verifyChecksums && !context.headerVerified && !context.reassembled
            && (headerLength == 20 ? Checksum.sumOf20Bytes(b.baseAddress! + start)
                : Checksum.sum(UnsafeRawBufferPointer(rebasing: b[start..<(start + headerLength)]))) != 0xffff {
            weirds.note(.badIPChecksum)
            return .none
        }
        out.isIPv6 = false
        out.ipStart = start
        out.proto = b[start + 9]
        let fragmentField = b.be16(start + 6)
        if fragmentField & 0x3fff != 0 { // more fragments, or an offset
            fragment.identification = UInt32(b.be16(start + 4))
            fragment.offset = Int(fragmentField & 0x1fff) * 8
            fragment.moreFragments = fragmentField & 0x2000 != 0
            fragment.dontFragment = fragmentField & 0x4000 != 0
            fragment.proto = out.proto
            fragment.headerLength = headerLength
            fragment.dataStart = headerLength
            if let outcome = fragmentOutcome(&fragment, out, total: total, captured: captured, context: context, weirds: &weirds) {
                return outcome
            }
        }
        locateTransport(&out, start: start, headerLength: headerLength, captured: captured)
        return .transport
    }

    private static func analyzeV6(_ b: UnsafeRawBufferPointer, view: ByteView, context: IPContext, into out: inout DecodedPacket,
                                  fragment: inout FragmentInfo, weirds: inout Weirds) -> Outcome {
        let start = view.start, captured = view.count
        guard captured >= 40 else {
            weirds.note(.truncatedIP)
            return .none
        }
        let chain = IPv6Chain(b, start: start, captured: captured, weirds: &weirds)
        let stated = Int(b.be16(start + 4)) + 40
        out.statedIPLength = stated
        guard let total = checkLengths(stated: stated, headerLength: chain.length, start: start, captured: captured,
                                       context: context, weirds: &weirds) else { return .none }
        guard chain.length >= 40 else {
            weirds.note(.ipv6MinHeaderSize)
            return .none
        }
        out.isIPv6 = true
        out.ipStart = start
        out.source = chain.homeAddress ?? IPAddress(v6: b, at: start + 8)
        out.destination = chain.finalDestination ?? IPAddress(v6: b, at: start + 24)
        weirds.packetHasIP = true
        out.proto = chain.nextHeader
        // Any fragment header makes a fragment, even one that says the datagram is whole.
        if let at = chain.fragmentHeaderAt {
            let field = b.be16(at + 2)
            fragment.identification = b.be32(at + 4)
            fragment.offset = Int(field & 0xfff8)
            fragment.moreFragments = field & 1 != 0
            fragment.dontFragment = false
            fragment.proto = b[at]
            fragment.headerLength = at - start
            fragment.dataStart = at + 8 - start
            if let outcome = fragmentOutcome(&fragment, out, total: total, captured: captured, context: context, weirds: &weirds) {
                return outcome
            }
        }
        switch chain.lastHeader {
        case IPv6Chain.esp:
            return .ignored // encrypted from here on
        case IPv6Chain.mobility:
            if context.verifyChecksums && !mobilityChecksumIsValid(b, chain: chain) {
                weirds.note(.badMHChecksum)
                return .none
            }
            if chain.nextHeader != IPv6Chain.noNextHeader {
                weirds.note(.mobilityPiggyback)
                return .none
            }
            return .ignored
        default:
            break
        }
        if out.proto == IPv6Chain.noNextHeader {
            if context.insideTeredo { return .ignored } // a Teredo bubble
            weirds.note(.ipv6NoNext)
            return .none
        }
        locateTransport(&out, start: start, headerLength: chain.length, captured: captured)
        return .transport
    }

    /// What becomes of a fragment: reassembly when all of it was captured; else (Zeek
    /// gives up on reassembly) the first fragment is analysed as it is, for its transport
    /// header (useful in header-only traces), and the others go. Nil: analyse it as a packet.
    private static func fragmentOutcome(_ fragment: inout FragmentInfo, _ out: DecodedPacket, total: Int, captured: Int,
                                        context: IPContext, weirds: inout Weirds) -> Outcome? {
        if context.reassembled {
            weirds.note(.fragmentInsideFragment, from: out.source, to: out.destination)
            return Outcome.none
        }
        fragment.source = out.source
        fragment.destination = out.destination
        fragment.isIPv6 = out.isIPv6
        fragment.totalLength = total
        if captured >= total { return .fragment }
        weirds.note(.incompletelyCapturedFragment)
        return fragment.offset == 0 ? nil : Outcome.none
    }

    /// Mobile IPv6's mobility header checksum (RFC 6275), over a pseudo-header (the source
    /// and destination the chain names) and the mobility header, the chain's last.
    private static func mobilityChecksumIsValid(_ b: UnsafeRawBufferPointer, chain: IPv6Chain) -> Bool {
        let at = chain.lastHeaderAt
        let length = IPv6Chain.extensionLength(type: IPv6Chain.mobility, lengthByte: b[at + 1])
        let header = UnsafeRawBufferPointer(rebasing: b[at..<(at + length)])
        return Checksum.transport(header, source: chain.homeAddress ?? IPAddress(v6: b, at: chain.start + 8),
                                  destination: chain.finalDestination ?? IPAddress(v6: b, at: chain.start + 24),
                                  proto: IPv6Chain.mobility) == 0xffff
    }
}
