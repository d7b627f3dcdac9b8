/// Zeek's TCP analyzer, up to the connection: a header must be there for a connection to
/// be made; a header whose offset is wrong or cut short leaves the packet unusable.
enum TCP {
    /// Fills the ports and header fields; false (with a weird) when there is no header at all.
    @inline(__always)
    static func decode(_ b: UnsafeRawBufferPointer, _ out: inout DecodedPacket, checksums: TransportChecksums,
                       weirds: inout Weirds) -> Bool {
        let t = out.transportStart
        let remaining = out.transportCaptured
        guard TransportHeader.isWhole(out, minimum: 20, source: .tcp, weirds: &weirds) else { return false }
        out.sourcePort = b.be16(t)
        out.destinationPort = b.be16(t + 2)
        out.sequence = b.be32(t + 4)
        out.acknowledgment = b.be32(t + 8)
        out.tcpFlags = b[t + 13]
        out.window = b.be16(t + 14)
        out.checksumValid = true
        out.counted = true
        // The segment's length: as the IP header states it, or what was captured when an
        // IPv4 length was 0 (segmentation offload).
        let length = out.statedIPLength == 0 ? remaining : out.transportStated
        let headerLength = Int(b[t + 12] >> 4) * 4
        out.badTCPOffset = headerLength < 20
        if headerLength < 20 { // the tracker notes the weird, about the connection
            out.unusable = true
            return true
        }
        if headerLength > length || headerLength > remaining {
            out.unusable = true
            return true
        }
        out.unusable = false
        out.payloadLength = length - headerLength
        out.payloadStart = t + headerLength
        out.payloadEnd = t + min(length, remaining)
        if checksums.verify && !checksums.transportVerified && remaining >= length {
            let segment = UnsafeRawBufferPointer(rebasing: b[t..<(t + length)])
            out.checksumValid = Checksum.transport(segment, source: out.source, destination: out.destination, proto: 6) == 0xffff
        }
        return true
    }
}

/// Zeek's CheckHeaderTrunc, for every transport: the header's `minimum` bytes are stated by
/// the IP header (unless its length was 0) and captured, else a weird and no connection.
enum TransportHeader {
    @inline(__always)
    static func isWhole(_ out: DecodedPacket, minimum: Int, source: PacketAnalyzer, weirds: inout Weirds) -> Bool {
        guard out.transportStated == 0 || out.transportStated >= minimum else {
            weirds.note(.truncatedHeader, source: source)
            return false
        }
        guard out.transportCaptured >= minimum else {
            weirds.note(.internallyTruncatedHeader, source: source)
            return false
        }
        return true
    }
}

/// How transport checksums are to be treated for one packet.
struct TransportChecksums {
    /// False with -C.
    var verify = true
    /// The capture verified them already (TRAWL_PACKET_CHECKSUM_VERIFIED or _PARTIAL).
    var transportVerified = false
    /// The whole packet was captured (its wire length is no more than its captured length).
    var wholePacket = true
}
