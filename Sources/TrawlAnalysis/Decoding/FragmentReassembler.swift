/// Puts IPv4 and IPv6 fragments back together. Pending datagrams are bounded in number and
/// age; the oldest is dropped (and counted) when the bound is reached.
final class FragmentReassembler {
    private struct Key: Hashable {
        let source: IPAddress, destination: IPAddress
        let identification: UInt32
        let proto: UInt8
    }

    private struct Pending {
        var header: [UInt8] = []          // from the fragment at offset 0
        var data: [UInt8] = []
        var have: [Range<Int>] = []       // byte ranges of `data` received
        var total: Int?                   // known once the last fragment arrived
        var firstSeen: UInt64
        var isIPv6: Bool
        var proto: UInt8
    }

    private var pending: [Key: Pending] = [:]
    let maximumPending: Int
    let timeout: UInt64
    private(set) var dropped: UInt64 = 0

    init(maximumPending: Int = 10_000, timeout: UInt64 = 60_000_000_000) {
        self.maximumPending = maximumPending
        self.timeout = timeout
    }

    /// Adds the fragment in `ip` (its IP bytes) described by `packet`; returns the whole
    /// datagram, as IP bytes with a header that no longer says "fragment", once complete.
    func add(_ ip: UnsafeRawBufferPointer, _ packet: DecodedPacket, at time: UInt64) -> [UInt8]? {
        let f = packet.fragment
        guard f.dataEnd >= f.dataStart, f.offset + (f.dataEnd - f.dataStart) <= 65_535 + 40 else { return nil }
        let key = Key(source: packet.source, destination: packet.destination, identification: f.identification, proto: packet.proto)
        if pending[key] == nil {
            if pending.count >= maximumPending { evict(now: time) }
            pending[key] = Pending(firstSeen: time, isIPv6: packet.isIPv6, proto: packet.proto)
        }
        var entry = pending[key]!
        let end = f.offset + (f.dataEnd - f.dataStart)
        if entry.data.count < end { entry.data += [UInt8](repeating: 0, count: end - entry.data.count) }
        entry.data.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: f.offset).copyMemory(from: ip.baseAddress! + f.dataStart, byteCount: end - f.offset) }
        entry.have.append(f.offset..<end)
        if f.offset == 0 { entry.header = Array(ip[0..<f.headerLength]) }
        if !f.moreFragments { entry.total = end }
        guard let total = entry.total, !entry.header.isEmpty, covered(entry.have, upTo: total) else {
            pending[key] = entry
            return nil
        }
        pending[key] = nil
        return rebuild(entry, total: total)
    }

    private func covered(_ ranges: [Range<Int>], upTo total: Int) -> Bool {
        var reach = 0
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if range.lowerBound > reach { return false }
            reach = max(reach, range.upperBound)
        }
        return reach >= total
    }

    private func rebuild(_ entry: Pending, total: Int) -> [UInt8] {
        var datagram = entry.header + entry.data[0..<total]
        if entry.isIPv6 {
            // The fragment header is gone: the last header before it now names the transport.
            let payload = datagram.count - 40
            datagram[4] = UInt8(payload >> 8)
            datagram[5] = UInt8(payload & 0xff)
            setNextHeader(&datagram, keptHeaderLength: entry.header.count, to: entry.proto)
        } else {
            datagram[2] = UInt8(datagram.count >> 8)
            datagram[3] = UInt8(datagram.count & 0xff)
            datagram[6] = 0
            datagram[7] = 0
            datagram[10] = 0
            datagram[11] = 0
            let headerLength = Int(datagram[0] & 0x0f) * 4
            var sum: UInt32 = 0
            for i in stride(from: 0, to: headerLength, by: 2) { sum += UInt32(datagram[i]) << 8 | UInt32(datagram[i + 1]) }
            while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
            let checksum = ~UInt16(sum)
            datagram[10] = UInt8(checksum >> 8)
            datagram[11] = UInt8(checksum & 0xff)
        }
        return datagram
    }

    /// Points the next-header field of the last kept IPv6 header (fixed or extension) at
    /// `proto`: the kept headers are exactly those before the fragment header.
    private func setNextHeader(_ datagram: inout [UInt8], keptHeaderLength: Int, to proto: UInt8) {
        var field = 6
        var start = 40
        while start + 2 <= keptHeaderLength {
            field = start
            start += (Int(datagram[start + 1]) + 1) * 8
        }
        datagram[field] = proto
    }

    private func evict(now: UInt64) {
        let stale = pending.filter { now - $0.value.firstSeen > timeout }.map(\.key)
        for key in stale { pending[key] = nil; dropped += 1 }
        if pending.count >= maximumPending, let oldest = pending.min(by: { $0.value.firstSeen < $1.value.firstSeen })?.key {
            pending[oldest] = nil
            dropped += 1
        }
    }
}
