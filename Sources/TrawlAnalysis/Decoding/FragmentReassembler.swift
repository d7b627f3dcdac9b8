/// One IP fragment as the IP analyzer found it: its identity, its place in the datagram,
/// and where its header and data lie in the IP bytes.
public struct FragmentInfo {
    public var source = IPAddress(high: 0, low: 0)
    public var destination = IPAddress(high: 0, low: 0)
    public var identification: UInt32 = 0
    public var isIPv6 = false
    /// IPv4's protocol field; for IPv6, the fragment header's next header.
    public var proto: UInt8 = 0
    /// Byte offset of this fragment's data in the datagram's payload.
    public var offset = 0
    public var moreFragments = false
    public var dontFragment = false
    /// The header bytes a reassembled datagram starts with: IPv4's header, or IPv6's fixed
    /// and unfragmentable headers (up to, not including, the fragment header).
    public var headerLength = 0
    /// Where the fragment's data starts in the IP bytes (after the fragment header for IPv6).
    public var dataStart = 0
    /// The datagram's length as its header states it (IPv4 total length; IPv6 payload + 40).
    public var totalLength = 0
    public init() {}
}

/// The bounds of fragment reassembly (see `FragmentReassembler`).
public struct FragmentLimits: Sendable {
    /// Datagrams waiting for fragments at once.
    public var maximumDatagrams = 65_536
    /// Bytes of fragment data held in all.
    public var maximumBytes = 64 << 20
    /// Separate pieces of one datagram.
    public var maximumPieces = 512
    /// How long a datagram waits for its fragments (Zeek's frag_timeout).
    public var timeout: UInt64 = 300_000_000_000
    public init() {}
}

/// Puts IP fragments back together with Zeek's rules (its Frag.cc): pending datagrams are
/// keyed by source, destination and identification; where fragments overlap the data that
/// came first wins; a fragment reaching past the size the last fragment gave makes the
/// datagram larger; a datagram is complete once its data runs without a hole from offset 0
/// to its size.
///
/// Unlike Zeek, everything here is bounded, and each bound counts a weird when it bites:
/// - at most `maximumDatagrams` pending; beyond it the oldest is dropped (`fragment_table_full`);
/// - at most `maximumBytes` of fragment data held in all; beyond it the oldest datagrams are
///   dropped (`fragment_table_full`); only the bytes that arrived are held, never a
///   zero-filled image up to a fragment's offset;
/// - at most `maximumPieces` separate pieces per datagram (`excessive_fragments`);
/// - no datagram beyond the 65 535 bytes its header can state (`fragment_beyond_max_datagram`);
/// - a pending datagram is dropped `timeout` after its first fragment (Zeek's `frag_timeout`,
///   5 minutes), counted in `expired`.
/// Expiry and eviction take the oldest from a list kept in arrival order: O(1) per datagram,
/// never a scan of the table. Time that steps backwards does not move anything's expiry.
final class FragmentReassembler {

    private struct Key: Hashable {
        var source: IPAddress, destination: IPAddress
        var identification: UInt32
        // IPv4 and IPv6 never share a datagram, even where an IPv4-mapped IPv6 address makes
        // the addresses equal.
        var isIPv6: Bool
    }

    /// A run of data bytes at `offset` in the datagram, stored at `at` in `Pending.bytes`.
    private struct Piece {
        var offset: Int32, length: Int32, at: Int32
        var end: Int { Int(offset) + Int(length) }
    }

    private struct Pending {
        var key: Key
        var expires: UInt64
        /// The first fragment's header (the one that arrived first, as in Zeek).
        var header: [UInt8]
        var isIPv6: Bool
        /// The transport: from the fragment at offset 0 once it came.
        var proto: UInt8
        /// The datagram's payload size; 0 while unknown (no last fragment yet).
        var size = 0
        /// Sorted by offset, never overlapping.
        var pieces: [Piece] = []
        var bytes: [UInt8] = []
        var heldBytes: Int { header.count + bytes.count }
    }

    let limits: FragmentLimits
    /// Pending datagrams in arrival order, which is also the order they expire in.
    private var table = RecencyTable<Key, Pending>()
    private var heldBytes = 0
    /// The latest time seen: only ever moves forward.
    private var clock: UInt64 = 0

    /// Datagrams dropped because they waited longer than the timeout.
    private(set) var expired: UInt64 = 0
    /// Datagrams dropped to stay within the bounds.
    private(set) var evicted: UInt64 = 0
    private(set) var reassembled: UInt64 = 0
    /// Fragments handed in.
    private(set) var fragments: UInt64 = 0
    /// The most datagrams pending, and bytes held, at once.
    private(set) var peak = 0
    private(set) var peakBytes = 0
    var pending: Int { table.count }
    var bytesHeld: Int { heldBytes }

    init(limits: FragmentLimits = FragmentLimits()) {
        self.limits = limits
    }

    /// Adds one fragment, whose IP bytes are `ip`; returns the whole datagram, as IP bytes
    /// whose header no longer says "fragment", once it is complete.
    func add(_ fragment: FragmentInfo, ip: UnsafeRawBufferPointer, at time: UInt64, weirds: inout Weirds) -> [UInt8]? {
        advance(to: time)
        fragments += 1
        let dataLength = fragment.totalLength - fragment.dataStart
        guard fragment.headerLength > 0, fragment.dataStart >= fragment.headerLength, dataLength >= 0,
              fragment.dataStart + dataLength <= ip.count else {
            weirds.note(.fragmentProtocolInconsistency, from: fragment.source, to: fragment.destination)
            return nil
        }
        let upper = fragment.offset + dataLength
        // The most payload a header can state: IPv4's total length, IPv6's payload length
        // (which counts the kept extension headers), are 16 bits.
        let maximumPayload = 65_535 - (fragment.isIPv6 ? fragment.headerLength - 40 : fragment.headerLength)
        if upper > maximumPayload {
            weirds.note(.fragmentBeyondMaxDatagram)
            return nil
        }
        if upper > 64_000 { weirds.note(.excessivelyLargeFragment, from: fragment.source, to: fragment.destination) }
        if fragment.moreFragments && fragment.totalLength < 64 { weirds.note(.excessivelySmallFragment, from: fragment.source, to: fragment.destination) }
        if fragment.dontFragment { weirds.note(.fragmentWithDF, from: fragment.source, to: fragment.destination) }

        let key = Key(source: fragment.source, destination: fragment.destination,
                      identification: fragment.identification, isIPv6: fragment.isIPv6)
        let slot: RecencyTable<Key, Pending>.Slot
        if let existing = table.find(key) {
            slot = existing
            if (fragment.offset != 0 && fragment.proto != table[slot].proto) || fragment.headerLength != table[slot].header.count {
                weirds.note(.fragmentProtocolInconsistency, from: fragment.source, to: fragment.destination)
            }
        } else {
            slot = open(key, header: ip[0..<fragment.headerLength], fragment)
        }

        if fragment.offset == 0 { table[slot].proto = fragment.proto }
        if !fragment.moreFragments {
            if table[slot].size == 0 {
                table[slot].size = upper
            } else if upper != table[slot].size {
                weirds.note(.fragmentSizeInconsistency, from: fragment.source, to: fragment.destination)
                table[slot].size = max(table[slot].size, upper)
            }
        }
        if table[slot].size != 0 && upper > table[slot].size {
            weirds.note(.fragmentSizeInconsistency, from: fragment.source, to: fragment.destination)
            table[slot].size = upper
        }
        let before = table[slot].bytes.count
        let data = UnsafeRawBufferPointer(rebasing: ip[fragment.dataStart..<(fragment.dataStart + dataLength)])
        if !insert(data, at: fragment.offset, into: &table[slot], flow: (fragment.source, fragment.destination), weirds: &weirds) { weirds.note(.excessiveFragments) }
        heldBytes += table[slot].bytes.count - before
        peakBytes = max(peakBytes, heldBytes)
        guard let datagram = complete(&table[slot], flow: (fragment.source, fragment.destination), weirds: &weirds) else {
            makeRoom(keeping: slot)
            return nil
        }
        close(slot)
        reassembled += 1
        return datagram
    }

    /// Drops the datagrams whose time is up. Called for every fragment, and by the tracker
    /// once a second so that memory goes back even when no fragments come.
    func advance(to time: UInt64) {
        if time > clock { clock = time }
        while table.oldest >= 0 && table[table.oldest].expires <= clock {
            expired += 1
            close(table.oldest)
        }
    }

    // MARK: The table

    private func open(_ key: Key, header: Slice<UnsafeRawBufferPointer>, _ fragment: FragmentInfo) -> RecencyTable<Key, Pending>.Slot {
        if table.count >= limits.maximumDatagrams && table.oldest >= 0 {
            evicted += 1
            close(table.oldest)
        }
        let entry = Pending(key: key, expires: clock &+ limits.timeout, header: Array(header),
                            isIPv6: fragment.isIPv6, proto: fragment.proto)
        heldBytes += entry.heldBytes
        let slot = table.insert(key, entry)
        peak = max(peak, table.count)
        return slot
    }

    private func close(_ slot: RecencyTable<Key, Pending>.Slot) {
        heldBytes -= table.remove(slot).heldBytes
    }

    /// Drops the oldest datagrams (never `keeping`) while more bytes are held than allowed.
    private func makeRoom(keeping slot: RecencyTable<Key, Pending>.Slot) {
        while heldBytes > limits.maximumBytes {
            let victim = table.oldest == slot ? table.newer(than: slot) : table.oldest
            guard victim >= 0 else { return }
            evicted += 1
            close(victim)
        }
    }

    // MARK: One datagram

    /// Adds the parts of `data` (at `offset`) that no earlier fragment covered; notes an
    /// overlap. False, changing nothing, when that would make too many pieces.
    private func insert(_ data: UnsafeRawBufferPointer, at offset: Int, into entry: inout Pending, flow: (IPAddress, IPAddress),
                        weirds: inout Weirds) -> Bool {
        let end = offset + data.count
        guard end > offset else { return true }
        // The first piece that ends after the new data starts.
        var low = 0, high = entry.pieces.count
        while low < high {
            let middle = (low + high) / 2
            if entry.pieces[middle].end <= offset { low = middle + 1 } else { high = middle }
        }
        // The gaps between the existing pieces that the new data fills.
        var gaps: [(Int, Int, Int)] = [] // (start, end, insert before this piece index)
        var start = offset
        var i = low
        var overlapped = false, differs = false
        while start < end {
            if i == entry.pieces.count || Int(entry.pieces[i].offset) >= end {
                gaps.append((start, end, i))
                break
            }
            let piece = entry.pieces[i]
            if Int(piece.offset) > start { gaps.append((start, Int(piece.offset), i)) }
            let sharedStart = max(start, Int(piece.offset)), sharedEnd = min(end, piece.end)
            if sharedEnd > sharedStart {
                overlapped = true
                if !differs {
                    let old = Int(piece.at) + sharedStart - Int(piece.offset)
                    differs = entry.bytes[old..<(old + sharedEnd - sharedStart)]
                        .elementsEqual(data[(sharedStart - offset)..<(sharedEnd - offset)]) == false
                }
            }
            start = max(start, piece.end)
            i += 1
        }
        guard entry.pieces.count + gaps.count <= limits.maximumPieces else { return false }
        if overlapped { weirds.note(differs ? .fragmentInconsistency : .fragmentOverlap, from: flow.0, to: flow.1) }
        for (shift, gap) in gaps.enumerated() {
            let piece = Piece(offset: Int32(gap.0), length: Int32(gap.1 - gap.0), at: Int32(entry.bytes.count))
            entry.bytes.append(contentsOf: data[(gap.0 - offset)..<(gap.1 - offset)])
            entry.pieces.insert(piece, at: gap.2 + shift)
        }
        return true
    }

    /// The whole datagram once its data runs from 0 to its size without a hole (Zeek's
    /// BlockInserted: data stuck past a hole beyond the size given ends the datagram at the
    /// hole; data beyond the size without a hole extends it).
    private func complete(_ entry: inout Pending, flow: (IPAddress, IPAddress), weirds: inout Weirds) -> [UInt8]? {
        guard let first = entry.pieces.first, first.offset == 0, entry.size > 0 else { return nil }
        var last = 0
        while last + 1 < entry.pieces.count && entry.pieces[last].end == Int(entry.pieces[last + 1].offset) { last += 1 }
        let reach = entry.pieces[last].end
        if last + 1 < entry.pieces.count {
            guard reach >= entry.size else { return nil } // a hole before the end
            weirds.note(.fragmentSizeInconsistency, from: flow.0, to: flow.1)
            entry.size = reach
        } else if reach > entry.size {
            weirds.note(.fragmentSizeInconsistency, from: flow.0, to: flow.1)
            entry.size = reach
        } else if reach < entry.size {
            return nil // the tail is missing
        }
        var datagram = entry.header
        datagram.reserveCapacity(entry.header.count + entry.size)
        for piece in entry.pieces[0...last] {
            datagram.append(contentsOf: entry.bytes[Int(piece.at)..<(Int(piece.at) + Int(piece.length))])
        }
        Self.rewriteHeader(&datagram, isIPv6: entry.isIPv6, keptHeaderLength: entry.header.count, proto: entry.proto)
        return datagram
    }

    /// Makes the header describe the whole datagram: its length, no fragment fields, and
    /// for IPv6 the transport named by the last kept header (the fragment header is gone).
    static func rewriteHeader(_ datagram: inout [UInt8], isIPv6: Bool, keptHeaderLength: Int, proto: UInt8) {
        if isIPv6 {
            let payload = datagram.count - 40
            datagram[4] = UInt8(truncatingIfNeeded: payload >> 8)
            datagram[5] = UInt8(truncatingIfNeeded: payload)
            // The kept headers are exactly those before the fragment header: the last of
            // them names the transport now.
            var field = 6, type = datagram[6], start = 40
            while start + 2 <= keptHeaderLength {
                field = start
                let length = IPv6Chain.extensionLength(type: type, lengthByte: datagram[start + 1])
                type = datagram[start]
                start += length
            }
            datagram[field] = proto
        } else {
            datagram[2] = UInt8(truncatingIfNeeded: datagram.count >> 8)
            datagram[3] = UInt8(truncatingIfNeeded: datagram.count)
            datagram[6] = 0
            datagram[7] = 0
            datagram[10] = 0
            datagram[11] = 0
            let headerLength = Int(datagram[0] & 0x0f) * 4
            let checksum = ~datagram.withUnsafeBytes { Checksum.sum(UnsafeRawBufferPointer(rebasing: $0[0..<headerLength])) }
            datagram[10] = UInt8(checksum >> 8)
            datagram[11] = UInt8(checksum & 0xff)
        }
    }
}
