/// Zeek's ICMP analyzer, up to the connection: the type and code give the connection's
/// "ports"; a message whose body was not all captured is seen but not counted.
enum ICMP {
    static func decode(_ b: UnsafeRawBufferPointer, _ out: inout DecodedPacket, verify: Bool, weirds: inout Weirds) -> Bool {
        let t = out.transportStart
        let remaining = out.transportCaptured
        guard TransportHeader.isWhole(out, minimum: 8, source: .icmp, weirds: &weirds) else { return false }
        let length = out.transportStated == 0 ? remaining : out.transportStated
        out.icmpType = b[t]
        out.icmpCode = b[t + 1]
        out.tcpFlags = 0
        out.unusable = false
        out.counted = remaining >= length
        out.checksumValid = true
        if verify && remaining >= length {
            let message = UnsafeRawBufferPointer(rebasing: b[t..<(t + length)])
            let sum = out.proto == 58
                ? Checksum.transport(message, source: out.source, destination: out.destination, proto: 58)
                : Checksum.sum(message)
            out.checksumValid = sum == 0xffff
        }
        out.payloadLength = length - 8
        out.payloadStart = t + 8
        out.payloadEnd = t + min(length, remaining)
        return true
    }

    /// The counterpart type of a request or reply (echo, timestamp, router and neighbor
    /// discovery, ...), or nil for a one-way message.
    static func counterpart(type: UInt8, v6: Bool) -> UInt8? {
        if v6 {
            switch type {
            case 128, 133, 135, 130, 139, 144: return type + 1
            case 129, 134, 136, 131, 140, 145: return type - 1
            default: return nil
            }
        }
        switch type {
        case 8: return 0
        case 0: return 8
        case 13, 15, 17: return type + 1
        case 14, 16, 18: return type - 1
        case 10: return 9
        case 9: return 10
        default: return nil
        }
    }
}

/// A transport nobody analyses: a connection between two addresses, without ports.
enum UnknownTransport {
    static func decode(_ out: inout DecodedPacket) {
        out.sourcePort = 0
        out.destinationPort = 0
        out.tcpFlags = 0
        out.unusable = false
        out.counted = true
        out.checksumValid = true
        out.payloadLength = max(0, out.transportCaptured)
        out.payloadStart = out.transportStart
        out.payloadEnd = out.transportStart + out.transportCaptured
    }
}
