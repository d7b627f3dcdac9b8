/// What the decoder extracted from one packet: the IP layer and the transport header.
/// A plain value filled in place, so decoding allocates nothing.
public struct DecodedPacket {
    public var source = IPAddress(high: 0, low: 0)
    public var destination = IPAddress(high: 0, low: 0)
    /// IP protocol number of the transport (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    public var proto: UInt8 = 0
    public var isIPv6 = false
    /// Where the IP header starts in the bytes given to `decode`.
    public var ipStart = 0
    /// The IP datagram's length: as its header states it, or the captured length where the
    /// header says 0 (segmentation offload).
    public var ipLength = 0
    /// The length the header states, even 0: what Zeek adds up as ip_bytes.
    public var statedIPLength = 0
    /// Transport ports; for ICMP, the type and code.
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var tcpFlags: UInt8 = 0
    public var sequence: UInt32 = 0
    public var acknowledgment: UInt32 = 0
    public var window: UInt16 = 0
    /// Bytes of transport payload (TCP segment data, UDP data, ICMP body after 8 bytes).
    public var payloadLength = 0
    /// False when a checksum that could be checked was wrong.
    public var checksumValid = true
    /// The TCP header was cut short after its ports: the connection exists, the packet
    /// cannot be analysed (Zeek logs such a connection with no packets).
    public var transportIncomplete = false
    /// Set for a fragment: where its IP header starts in the packet, and its place.
    public var fragment = FragmentInfo()
    /// Where the transport payload starts, counted from the start of the IP header.
    public var payloadStart = 0
    /// How many captured bytes the IP datagram has (its header's length, or fewer).
    public var ipCaptured = 0
    public var icmpType: UInt8 { UInt8(truncatingIfNeeded: sourcePort) }
    public var icmpCode: UInt8 { UInt8(truncatingIfNeeded: destinationPort) }

    public init() {}
}

/// One IP fragment's identity and extent.
public struct FragmentInfo {
    public var identification: UInt32 = 0
    /// Byte offset of this fragment's data in the original datagram's payload.
    public var offset = 0
    public var moreFragments = false
    /// The header bytes to keep for the reassembled datagram: IPv4's header, or IPv6's
    /// fixed and unfragmentable headers (up to, not including, the fragment header).
    public var headerLength = 0
    /// Where the fragment's data starts and ends in the IP bytes.
    public var dataStart = 0
    public var dataEnd = 0
    public init() {}
    public init(identification: UInt32, offset: Int, moreFragments: Bool, headerLength: Int, dataStart: Int, dataEnd: Int) {
        self.identification = identification
        self.offset = offset
        self.moreFragments = moreFragments
        self.headerLength = headerLength
        self.dataStart = dataStart
        self.dataEnd = dataEnd
    }
}

public enum TCPFlag {
    public static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08, ack: UInt8 = 0x10, urg: UInt8 = 0x20
}

/// Why a packet did not reach connection tracking; counted as Zeek-style weirds.
public enum DecodeProblem: String, CaseIterable, Sendable {
    case truncatedLinkHeader = "truncated_link_header"
    case unknownLinkType = "unknown_link_type"
    case nonIP = "non_ip_packet"
    case truncatedIPHeader = "truncated_IP"
    case badIPVersion = "bad_IP_version"
    case badIPChecksum = "bad_IP_checksum"
    case truncatedTransport = "truncated_header"
    case unknownProtocol = "unknown_protocol"
}

public enum DecodeResult {
    /// A whole IP packet; its IP header starts at `DecodedPacket.ipStart` in the bytes given.
    case packet
    /// An IP fragment: `DecodedPacket.fragment` says where; the IP bytes start at `ipStart`.
    case fragment(ipStart: Int)
    case skipped(DecodeProblem)
}

/// Decodes link, IP and transport headers from the raw bytes of a packet.
public struct PacketDecoder {
    /// Verify checksums (Zeek verifies unless run with -C).
    public var verifyChecksums: Bool

    public init(verifyChecksums: Bool = true) {
        self.verifyChecksums = verifyChecksums
    }

    @inline(__always)
    static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
    @inline(__always)
    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    /// Fills `out` from `bytes` of a packet of link type `linkType` (LINKTYPE_ values).
    public func decode(_ bytes: UnsafeRawBufferPointer, linkType: UInt32, flags: UInt32 = 0, into out: inout DecodedPacket) -> DecodeResult {
        var offset = 0
        var etherType: UInt16
        switch linkType {
        case 1: // Ethernet
            guard bytes.count >= 14 else { return .skipped(.truncatedLinkHeader) }
            etherType = Self.u16(bytes, 12)
            offset = 14
        case 113: // Linux cooked capture v1
            guard bytes.count >= 16 else { return .skipped(.truncatedLinkHeader) }
            etherType = Self.u16(bytes, 14)
            offset = 16
        case 276: // Linux cooked capture v2
            guard bytes.count >= 20 else { return .skipped(.truncatedLinkHeader) }
            etherType = Self.u16(bytes, 0)
            offset = 20
        case 101, 12, 14, 228, 229: // raw IP (228: IPv4, 229: IPv6)
            guard let first = bytes.first else { return .skipped(.truncatedLinkHeader) }
            etherType = first >> 4 == 6 ? 0x86dd : 0x0800
        case 0, 108: // BSD null / OpenBSD loop: a 4-byte address family
            guard bytes.count >= 4 else { return .skipped(.truncatedLinkHeader) }
            let family = linkType == 108 ? Self.u32(bytes, 0) : UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            let swapped = family.byteSwapped
            switch (family, swapped) {
            case (2, _), (_, 2): etherType = 0x0800
            case (24, _), (28, _), (30, _), (_, 24), (_, 28), (_, 30): etherType = 0x86dd
            default: return .skipped(.nonIP)
            }
            offset = 4
        case 9, 50: // PPP, PPP in HDLC framing
            var at = 0
            if bytes.count >= 2 && bytes[0] == 0xff && bytes[1] == 0x03 { at = 2 }
            guard bytes.count >= at + 2 else { return .skipped(.truncatedLinkHeader) }
            switch Self.u16(bytes, at) {
            case 0x0021: etherType = 0x0800
            case 0x0057: etherType = 0x86dd
            default: return .skipped(.nonIP)
            }
            offset = at + 2
        default:
            return .skipped(.unknownLinkType)
        }
        // Tags and shims between the link header and IP.
        while true {
            switch etherType {
            case 0x8100, 0x88a8, 0x9100: // 802.1Q, 802.1ad (QinQ)
                guard bytes.count >= offset + 4 else { return .skipped(.truncatedLinkHeader) }
                etherType = Self.u16(bytes, offset + 2)
                offset += 4
                continue
            case 0x8847, 0x8848: // MPLS: labels until the bottom of the stack, then IP by version
                repeat {
                    guard bytes.count >= offset + 4 else { return .skipped(.truncatedLinkHeader) }
                    offset += 4
                } while bytes[offset - 2] & 0x01 == 0
                guard offset < bytes.count else { return .skipped(.truncatedLinkHeader) }
                etherType = bytes[offset] >> 4 == 6 ? 0x86dd : 0x0800
                continue
            case 0x88e7: // 802.1ah provider backbone bridging: I-TAG, then the customer's MACs
                guard bytes.count >= offset + 18 else { return .skipped(.truncatedLinkHeader) }
                etherType = Self.u16(bytes, offset + 16)
                offset += 18
                continue
            case 0x8926: // VN-Tag
                guard bytes.count >= offset + 6 else { return .skipped(.truncatedLinkHeader) }
                etherType = Self.u16(bytes, offset + 4)
                offset += 6
                continue
            case 0x8864: // PPPoE session: 6-byte header, then a PPP protocol number
                guard bytes.count >= offset + 8 else { return .skipped(.truncatedLinkHeader) }
                switch Self.u16(bytes, offset + 6) {
                case 0x0021: etherType = 0x0800
                case 0x0057: etherType = 0x86dd
                default: return .skipped(.nonIP)
                }
                offset += 8
                continue
            default:
                break
            }
            break
        }
        switch etherType {
        case 0x0800, 0x86dd:
            out.ipStart = offset
            let result = decodeIP(UnsafeRawBufferPointer(rebasing: bytes[offset...]), flags: flags, into: &out)
            if case .fragment = result { return .fragment(ipStart: offset) }
            return result
        default:
            return .skipped(.nonIP)
        }
    }

    /// Decodes an IP datagram starting at the first byte of `ip`.
    public func decodeIP(_ ip: UnsafeRawBufferPointer, flags: UInt32 = 0, into out: inout DecodedPacket) -> DecodeResult {
        guard let first = ip.first else { return .skipped(.truncatedIPHeader) }
        var transport: Int
        var end: Int
        switch first >> 4 {
        case 4:
            guard ip.count >= 20 else { return .skipped(.truncatedIPHeader) }
            let headerLength = Int(first & 0x0f) * 4
            var total = Int(Self.u16(ip, 2))
            out.statedIPLength = total
            // Segmentation offload can leave the length 0 in captures of outgoing packets:
            // the datagram is what was captured, as Zeek assumes.
            if total == 0 { total = ip.count }
            guard headerLength >= 20, ip.count >= headerLength, total >= headerLength else { return .skipped(.truncatedIPHeader) }
            if verifyChecksums && Checksum.sum(UnsafeRawBufferPointer(rebasing: ip[0..<headerLength])) != 0xffff {
                return .skipped(.badIPChecksum)
            }
            let fragment = Self.u16(ip, 6)
            out.isIPv6 = false
            out.source = IPAddress(v4: ip, at: 12)
            out.destination = IPAddress(v4: ip, at: 16)
            out.proto = ip[9]
            out.ipLength = total
            if fragment & 0x3fff != 0 { // more fragments, or an offset
                out.fragment = FragmentInfo(identification: UInt32(Self.u16(ip, 4)), offset: Int(fragment & 0x1fff) * 8,
                                            moreFragments: fragment & 0x2000 != 0, headerLength: headerLength,
                                            dataStart: headerLength, dataEnd: min(total, ip.count))
                return .fragment(ipStart: 0)
            }
            transport = headerLength
            end = min(total, ip.count)
        case 6:
            guard ip.count >= 40 else { return .skipped(.truncatedIPHeader) }
            out.isIPv6 = true
            out.source = IPAddress(v6: ip, at: 8)
            out.destination = IPAddress(v6: ip, at: 24)
            let payload = Int(Self.u16(ip, 4))
            out.ipLength = payload + 40
            out.statedIPLength = out.ipLength
            end = min(40 + payload, ip.count)
            var next = ip[6]
            transport = 40
            // Walk extension headers to the transport.
            extensionHeaders: while true {
                switch next {
                case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination options, mobility, HIP, shim6
                    guard end >= transport + 8 else { return .skipped(.truncatedIPHeader) }
                    next = ip[transport]
                    transport += (Int(ip[transport + 1]) + 1) * 8
                case 44: // fragment
                    guard end >= transport + 8 else { return .skipped(.truncatedIPHeader) }
                    let offsetAndMore = Self.u16(ip, transport + 2)
                    if offsetAndMore & 0xfff9 != 0 { // an offset, or more fragments
                        out.proto = ip[transport]
                        out.fragment = FragmentInfo(identification: Self.u32(ip, transport + 4), offset: Int(offsetAndMore & 0xfff8),
                                                    moreFragments: offsetAndMore & 1 != 0, headerLength: transport,
                                                    dataStart: transport + 8, dataEnd: end)
                        return .fragment(ipStart: 0)
                    }
                    next = ip[transport]
                    transport += 8
                case 51: // authentication header: length in 4-byte units, plus 2
                    guard end >= transport + 8 else { return .skipped(.truncatedIPHeader) }
                    next = ip[transport]
                    transport += (Int(ip[transport + 1]) + 2) * 4
                default:
                    break extensionHeaders
                }
            }
            out.proto = next
        default:
            return .skipped(.badIPVersion)
        }
        guard transport <= end else { return .skipped(.truncatedIPHeader) }
        out.ipCaptured = end
        let segment = UnsafeRawBufferPointer(rebasing: ip[transport..<end])
        let checksummed = verifyChecksums && flags & 0x3 == 0 // TRAWL_PACKET_CHECKSUM_VERIFIED or _PARTIAL: skip
        out.checksumValid = true
        out.transportIncomplete = false
        switch out.proto {
        case 6:
            let dataOffset = segment.count >= 13 ? Int(segment[12] >> 4) * 4 : 0
            guard segment.count >= 20, dataOffset >= 20, segment.count >= dataOffset else {
                guard segment.count >= 4 else { return .skipped(.truncatedTransport) }
                out.sourcePort = Self.u16(segment, 0)
                out.destinationPort = Self.u16(segment, 2)
                out.tcpFlags = 0
                out.payloadLength = 0
                out.payloadStart = transport
                out.transportIncomplete = true
                return .packet
            }
            out.sourcePort = Self.u16(segment, 0)
            out.destinationPort = Self.u16(segment, 2)
            out.sequence = Self.u32(segment, 4)
            out.acknowledgment = Self.u32(segment, 8)
            out.tcpFlags = segment[13]
            out.window = Self.u16(segment, 14)
            // The payload length from the IP header; captured bytes may be fewer.
            out.payloadLength = max(0, out.ipLength - transport - dataOffset)
            out.payloadStart = transport + dataOffset
            if checksummed && segment.count == out.ipLength - transport {
                out.checksumValid = Checksum.transport(segment, source: out.source, destination: out.destination, proto: 6) == 0xffff
            }
        case 17:
            guard segment.count >= 8 else { return .skipped(.truncatedTransport) }
            out.sourcePort = Self.u16(segment, 0)
            out.destinationPort = Self.u16(segment, 2)
            out.payloadLength = max(0, Int(Self.u16(segment, 4)) - 8)
            out.payloadStart = transport + 8
            out.tcpFlags = 0
            let stated = Self.u16(segment, 6)
            if checksummed && stated != 0 && segment.count == out.ipLength - transport {
                out.checksumValid = Checksum.transport(segment, source: out.source, destination: out.destination, proto: 17) == 0xffff
            }
        case 1, 58:
            guard segment.count >= 4 else { return .skipped(.truncatedTransport) }
            out.sourcePort = UInt16(segment[0])
            out.destinationPort = UInt16(segment[1])
            out.payloadLength = max(0, out.ipLength - transport - 8)
            out.tcpFlags = 0
            if checksummed && segment.count == out.ipLength - transport {
                let sum = out.proto == 58
                    ? Checksum.transport(segment, source: out.source, destination: out.destination, proto: 58)
                    : Checksum.sum(segment)
                out.checksumValid = sum == 0xffff
            }
        default:
            out.sourcePort = 0
            out.destinationPort = 0
            out.payloadLength = max(0, out.ipLength - transport)
            out.payloadStart = transport
            out.tcpFlags = 0
        }
        return .packet
    }
}

/// The Internet checksum (RFC 1071), as a ones'-complement sum: 0xffff means valid.
#if _endian(big)
#error("Checksum.add assembles its tail word for little-endian hosts")
#endif

enum Checksum {
    /// Adds `bytes` as big-endian 16-bit words to `initial`. The ones'-complement sum does not
    /// depend on byte order or word size (RFC 1071): the bytes are summed as native 64-bit
    /// words with end-around carry, two chains at a time, and the folded result swapped once.
    @inline(__always)
    static func add(_ bytes: UnsafeRawBufferPointer, to initial: UInt64) -> UInt64 {
        guard let base = bytes.baseAddress else { return initial }
        @inline(__always) func addCarrying(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let (sum, overflow) = a.addingReportingOverflow(b)
            return sum &+ (overflow ? 1 : 0)
        }
        let n = bytes.count
        var i = 0
        var a: UInt64 = 0, b: UInt64 = 0
        while i + 16 <= n {
            a = addCarrying(a, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            b = addCarrying(b, base.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            i += 16
        }
        if i + 8 <= n {
            a = addCarrying(a, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        // The last 1 to 7 bytes, each at its place in a zero-padded little-endian word.
        var tail: UInt64 = 0, shift: UInt64 = 0
        if i + 4 <= n {
            tail = UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i += 4
            shift = 32
        }
        if i + 2 <= n {
            tail |= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt16.self)) << shift
            i += 2
            shift += 16
        }
        if i < n { tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift }
        b = addCarrying(b, tail)
        var sum = addCarrying(a, b)
        sum = (sum >> 32) &+ (sum & 0xffff_ffff)
        sum = (sum >> 32) &+ (sum & 0xffff_ffff)
        sum = (sum >> 16) &+ (sum & 0xffff)
        sum = (sum >> 16) &+ (sum & 0xffff)
        let native = UInt16(truncatingIfNeeded: sum)
        return initial &+ UInt64(UInt16(bigEndian: native))
    }

    @inline(__always)
    static func fold(_ value: UInt64) -> UInt16 {
        var sum = value
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return UInt16(sum)
    }

    static func sum(_ bytes: UnsafeRawBufferPointer) -> UInt16 { fold(add(bytes, to: 0)) }

    /// Sum over the pseudo-header and the segment.
    static func transport(_ segment: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress, proto: UInt8) -> UInt16 {
        @inline(__always) func words(_ w: UInt64) -> UInt64 {
            (w >> 48 & 0xffff) &+ (w >> 32 & 0xffff) &+ (w >> 16 & 0xffff) &+ (w & 0xffff)
        }
        @inline(__always) func address(_ a: IPAddress) -> UInt64 {
            a.isV4 ? (a.low >> 16 & 0xffff) &+ (a.low & 0xffff) : words(a.high) &+ words(a.low)
        }
        var sum = address(source) &+ address(destination)
        sum &+= UInt64(proto) + UInt64(segment.count)
        return fold(add(segment, to: sum))
    }
}
