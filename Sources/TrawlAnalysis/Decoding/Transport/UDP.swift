/// Zeek's UDP analyzer, up to the connection: the header, the checksum (optional over IPv4,
/// and a VXLAN sender may leave it 0 over IPv6 too), and the payload length the UDP header
/// states.
enum UDP {
    @inline(__always)
    static func decode(_ b: UnsafeRawBufferPointer, _ out: inout DecodedPacket, checksums: TransportChecksums,
                       vxlanPorts: DispatchTables, weirds: inout Weirds) -> Bool {
        let t = out.transportStart
        let remaining = out.transportCaptured
        guard TransportHeader.isWhole(out, minimum: 8, source: .udp, weirds: &weirds) else { return false }
        out.sourcePort = b.be16(t)
        out.destinationPort = b.be16(t + 2)
        out.tcpFlags = 0
        out.unusable = false
        out.counted = true
        out.checksumValid = true
        let length = out.transportStated == 0 ? remaining : out.transportStated
        let stated = b.be16(t + 6)
        var validate = checksums.verify && !checksums.transportVerified && remaining >= length && checksums.wholePacket
        // VXLAN on its port: the checksum should be 0, and then is not checked.
        if validate && length > 8 + 8 + 14 && b[t + 8] & 0x08 != 0 && vxlanPorts.lookup(.udp, UInt64(out.destinationPort)) == .vxlan {
            validate = stated != 0
        }
        if validate && (out.isIPv6 || stated != 0) {
            let datagram = UnsafeRawBufferPointer(rebasing: b[t..<(t + length)])
            out.checksumValid = Checksum.transport(datagram, source: out.source, destination: out.destination, proto: 17) == 0xffff
        }
        let udpLength = Int(b.be16(t + 4))
        out.udpStatedLength = udpLength // a mismatch is the connection's weird (the tracker's)
        out.udpLength = length
        out.payloadLength = max(0, udpLength - 8)
        out.payloadStart = t + 8
        out.payloadEnd = t + min(length, remaining)
        out.bytes = b
        return true
    }
}
