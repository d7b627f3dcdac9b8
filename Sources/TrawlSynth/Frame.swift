/// Writes Ethernet + IPv4 + TCP/UDP frames with correct checksums.
enum Frame {
    enum Transport {
        case tcp(flags: UInt8)
        case udp
    }

    static func write(into buffer: UnsafeMutableRawBufferPointer, fromClient: Bool, flow: Flow,
                      protocol transport: Transport, payload: Int) -> Int {
        let isTCP: Bool
        if case .tcp = transport { isTCP = true } else { isTCP = false }
        let transportHeader = isTCP ? 20 : 8
        let payload = min(payload, 1460)
        let ipLength = 20 + transportHeader + payload
        let (source, destination) = fromClient ? (flow.clientAddress, flow.serverAddress) : (flow.serverAddress, flow.clientAddress)
        let (sourcePort, destinationPort) = fromClient ? (flow.clientPort, flow.serverPort) : (flow.serverPort, flow.clientPort)
        var w = Writer(buffer)
        // Ethernet: locally administered MACs derived from the addresses.
        w.u16(0x0200); w.u32(destination)
        w.u16(0x0200); w.u32(source)
        w.u16(0x0800)
        // IPv4
        let ip = w.offset
        w.u8(0x45); w.u8(0); w.u16(UInt16(ipLength)); w.u16(UInt16(truncatingIfNeeded: flow.index))
        w.u16(0x4000); w.u8(64); w.u8(isTCP ? 6 : 17); w.u16(0)
        w.u32(source); w.u32(destination)
        w.put16(checksum(w.bytes(from: ip, count: 20)), at: ip + 10)
        // Transport
        let l4 = w.offset
        w.u16(sourcePort); w.u16(destinationPort)
        switch transport {
        case let .tcp(flags):
            let (sequence, peer) = fromClient ? (flow.clientSequence, flow.serverSequence) : (flow.serverSequence, flow.clientSequence)
            w.u32(sequence)
            w.u32(flags & TCPFlags.ack != 0 ? peer : 0)
            w.u8(0x50); w.u8(flags); w.u16(65_535); w.u16(0); w.u16(0)
        case .udp:
            w.u16(UInt16(8 + payload)); w.u16(0)
        }
        // Payload: a running byte pattern, so packets are not all alike.
        for i in 0..<payload { w.u8(UInt8(truncatingIfNeeded: Int(flow.index) &+ i)) }
        // Pseudo-header sum, then the segment.
        var sum: UInt32 = (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff)
        sum += UInt32(isTCP ? 6 : 17) + UInt32(transportHeader + payload)
        var value = checksum(w.bytes(from: l4, count: transportHeader + payload), initial: sum)
        if !isTCP && value == 0 { value = 0xffff } // UDP sends a zero sum as all ones
        w.put16(value, at: l4 + (isTCP ? 16 : 6))
        return w.offset
    }

    /// The Internet checksum (RFC 1071) of `bytes`, starting from a partial sum.
    static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt16 {
        var sum = UInt64(initial)
        var i = 0
        while i + 1 < bytes.count {
            sum += UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum += UInt64(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }
}

/// Big-endian writes into a raw buffer.
struct Writer {
    let buffer: UnsafeMutableRawBufferPointer
    var offset = 0
    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }
    mutating func u8(_ v: UInt8) { buffer[offset] = v; offset += 1 }
    mutating func u16(_ v: UInt16) { u8(UInt8(v >> 8)); u8(UInt8(truncatingIfNeeded: v)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(truncatingIfNeeded: v)) }
    func put16(_ v: UInt16, at position: Int) {
        buffer[position] = UInt8(v >> 8)
        buffer[position + 1] = UInt8(truncatingIfNeeded: v)
    }
    func bytes(from start: Int, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[start..<(start + count)])
    }
}
