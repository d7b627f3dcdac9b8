import CNetmap

/// The receive rings of a bound netmap port, walked in the memory the kernel shares with
/// the process. A ring's slots from `head` up to `tail` hold received packets; the walker
/// reads them from its own position and gives them back (moves `head` and `cur`) only in
/// `release()`, so that the packets it handed out stay valid until then.
public struct ReceiveRings {
    private let interface: UnsafeMutablePointer<trawl_netmap_if>
    /// Indexes in the interface's ring offset table of the rings this port reads.
    public let ringIndexes: [Int]
    /// The walker's position in each ring (slots before it are handed out, not yet released).
    private var positions: [UInt32]
    /// The ring to look at first next time, so that one busy ring does not starve the others.
    private var nextRing = 0

    /// `interface` is the port's descriptor in the mapped region; `mode` and `ring` the
    /// registration (TRAWL_NR_REG_*); `apiVersion` what the kernel answered, which says how
    /// host rings are counted.
    public init(interface: UnsafeMutableRawPointer, mode: UInt32, ring: UInt16, apiVersion: UInt16) {
        let descriptor = interface.assumingMemoryBound(to: trawl_netmap_if.self)
        self.interface = descriptor
        let d = descriptor.pointee
        let hostTx = apiVersion >= 14 ? Int(d.host_tx_rings) : 1
        let hostRx = apiVersion >= 14 ? Int(d.host_rx_rings) : 1
        let firstRx = Int(d.tx_rings) + hostTx
        let hardware = Array(firstRx..<(firstRx + Int(d.rx_rings)))
        let host = Array((firstRx + Int(d.rx_rings))..<(firstRx + Int(d.rx_rings) + hostRx))
        switch mode {
        case 4: ringIndexes = Int(ring) < hardware.count ? [hardware[Int(ring)]] : []
        case 2: ringIndexes = host
        case 3: ringIndexes = hardware + host
        default: ringIndexes = hardware
        }
        positions = []
        for index in ringIndexes { positions.append(self.ring(index).head) }
    }

    private func ring(_ index: Int) -> Ring {
        let offsets = UnsafeMutableRawPointer(interface) + MemoryLayout<trawl_netmap_if>.size
        let offset = offsets.load(fromByteOffset: index * 8, as: Int64.self)
        return Ring(base: UnsafeMutableRawPointer(interface) + Int(offset))
    }

    /// Whether any ring has packets the walker has not handed out (as of the last sync).
    public var hasPackets: Bool {
        for (n, index) in ringIndexes.enumerated() where positions[n] != ring(index).tail { return true }
        return false
    }

    /// Hands packets to `deliver` (data, length; it returns false to stop) until it stops
    /// or the rings are empty. A packet spread over several slots (NS_MOREFRAG) is copied
    /// into `scratch` when it fits there (`scratch` returns where and how much room); a
    /// packet whose last slot has not arrived yet is left for later. Returns the number of
    /// packets handed out.
    @discardableResult
    public mutating func read(scratch: (Int) -> UnsafeMutablePointer<UInt8>?,
                              deliver: (UnsafePointer<UInt8>, Int) -> Bool) -> Int {
        var delivered = 0
        guard !ringIndexes.isEmpty else { return 0 }
        let start = nextRing
        // Each call starts one ring further on, so that a busy ring cannot starve the others.
        nextRing = (start + 1) % ringIndexes.count
        for step in 0..<ringIndexes.count {
            let n = (start + step) % ringIndexes.count
            let r = ring(ringIndexes[n])
            let count = r.slotCount
            let tail = r.tail
            var position = positions[n]
            defer { positions[n] = position }
            while position != tail {
                let first = r.slot(position)
                if first.flags & UInt16(TRAWL_NS_MOREFRAG) == 0 {
                    guard deliver(r.buffer(first.buffer_index), Int(first.length)) else { return delivered }
                    position = position + 1 == count ? 0 : position + 1
                    delivered += 1
                    continue
                }
                // Several slots: find the last one, then copy the pieces together.
                var last = position, total = 0, complete = false
                while last != tail {
                    let s = r.slot(last)
                    total += Int(s.length)
                    if s.flags & UInt16(TRAWL_NS_MOREFRAG) == 0 { complete = true; break }
                    last = last + 1 == count ? 0 : last + 1
                }
                guard complete else { break } // the rest is still the kernel's
                guard let room = scratch(total) else { return delivered }
                var at = 0, piece = position
                while true {
                    let s = r.slot(piece)
                    (room + at).update(from: r.buffer(s.buffer_index), count: Int(s.length))
                    at += Int(s.length)
                    if piece == last { break }
                    piece = piece + 1 == count ? 0 : piece + 1
                }
                guard deliver(UnsafePointer(room), total) else { return delivered }
                position = last + 1 == count ? 0 : last + 1
                delivered += 1
            }
        }
        return delivered
    }

    /// Gives the slots handed out so far back to the kernel (its next sync refills them).
    public func release() {
        for (n, index) in ringIndexes.enumerated() {
            let r = ring(index)
            r.release(upTo: positions[n])
        }
    }
}

/// One ring in the shared memory: a 256-byte header, then the slots.
private struct Ring {
    let base: UnsafeMutableRawPointer

    var slotCount: UInt32 { base.load(fromByteOffset: Int(TRAWL_RING_SLOT_COUNT), as: UInt32.self) }
    var head: UInt32 { base.load(fromByteOffset: Int(TRAWL_RING_HEAD), as: UInt32.self) }
    /// The kernel moves it; read it once per pass.
    var tail: UInt32 { base.load(fromByteOffset: Int(TRAWL_RING_TAIL), as: UInt32.self) }

    func slot(_ index: UInt32) -> trawl_netmap_slot {
        base.load(fromByteOffset: Int(TRAWL_RING_SLOTS) + Int(index) * MemoryLayout<trawl_netmap_slot>.stride,
                  as: trawl_netmap_slot.self)
    }

    func buffer(_ index: UInt32) -> UnsafeMutablePointer<UInt8> {
        let offset = base.load(fromByteOffset: Int(TRAWL_RING_BUFFER_OFFSET), as: Int64.self)
        let size = base.load(fromByteOffset: Int(TRAWL_RING_BUFFER_SIZE), as: UInt32.self)
        return (base + Int(offset) + Int(index) * Int(size)).assumingMemoryBound(to: UInt8.self)
    }

    /// Returns the slots before `position` to the kernel.
    func release(upTo position: UInt32) {
        base.storeBytes(of: position, toByteOffset: Int(TRAWL_RING_HEAD), as: UInt32.self)
        base.storeBytes(of: position, toByteOffset: Int(TRAWL_RING_CUR), as: UInt32.self)
    }
}
