import CLinuxPacket
import TrawlPluginSDK
#if canImport(Glibc)
import Glibc
#endif

/// The geometry of a TPACKET_V3 ring, checked before the kernel sees it.
struct RingLayout {
    let blockSize: Int
    let blockCount: Int
    let blockTimeout: UInt32
    /// The largest frame a block can hold, headers aside.
    var maximumFrame: Int { blockSize - 256 }

    /// tpacket_req3.tp_frame_size: unused by TPACKET_V3 for placing packets, but the kernel
    /// checks it divides the block.
    static let nominalFrameSize = 2048

    init(blockSize: UInt64, bufferSize: UInt64, blockTimeout: UInt64) throws(PluginError) {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        guard blockSize >= page, blockSize.nonzeroBitCount == 1 else {
            throw PluginError("AF_Packet::block_size must be a power of two of at least \(page) bytes, not \(blockSize)", code: .invalid)
        }
        guard bufferSize >= blockSize else {
            throw PluginError("AF_Packet::buffer_size (\(bufferSize)) must hold at least one block of AF_Packet::block_size (\(blockSize))", code: .invalid)
        }
        guard blockTimeout <= UInt64(UInt32.max) else { throw PluginError("AF_Packet::block_timeout is too large", code: .invalid) }
        self.blockSize = Int(blockSize)
        blockCount = Int(bufferSize / blockSize)
        self.blockTimeout = UInt32(blockTimeout)
    }

    var request: tpacket_req3 {
        var r = tpacket_req3()
        r.tp_block_size = UInt32(blockSize)
        r.tp_block_nr = UInt32(blockCount)
        r.tp_frame_size = UInt32(Self.nominalFrameSize)
        r.tp_frame_nr = UInt32(blockSize / Self.nominalFrameSize * blockCount)
        r.tp_retire_blk_tov = blockTimeout
        r.tp_sizeof_priv = 0
        r.tp_feature_req_word = 0
        return r
    }
}

/// Walks the blocks of a mapped TPACKET_V3 ring in order.
///
/// Block life cycle: the kernel fills a block and sets TP_STATUS_USER; we hand out its
/// packets, possibly over several batches; once its last packet has been handed out it is
/// "finished", and it goes back to the kernel at the start of the next read, when the
/// consumer is done with the batch that pointed into it.
final class Ring {
    private let base: UnsafeMutableRawPointer
    private let layout: RingLayout
    private var mapped = true
    /// The block being read, how many of its packets are left, and where the next one is.
    @exclusivity(unchecked) private var current = 0
    @exclusivity(unchecked) private var remaining = 0
    @exclusivity(unchecked) private var nextOffset = 0
    /// Blocks whose packets were all handed out, oldest first; returned on the next read.
    @exclusivity(unchecked) private var finished = 0
    @exclusivity(unchecked) private var firstFinished = 0

    init(fd: Int32, layout: RingLayout) throws(PluginError) {
        let size = layout.blockSize * layout.blockCount
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw PluginError("cannot map the ring (\(size) bytes): \(String(cString: strerror(errno)))", code: .noMemory, errno: errno)
        }
        base = address
        self.layout = layout
    }

    /// Also valid on a layout laid out in ordinary memory, for walking rings in tests.
    init(base: UnsafeMutableRawPointer, layout: RingLayout) {
        self.base = base
        self.layout = layout
        mapped = false
    }

    func unmap() {
        guard mapped else { return }
        munmap(base, layout.blockSize * layout.blockCount)
        mapped = false
    }

    @inline(__always)
    private func block(_ index: Int) -> UnsafeMutableRawPointer { base + index * layout.blockSize }

    /// Hands every finished block back to the kernel.
    @inline(__always)
    func releaseFinishedBlocks() {
        while finished > 0 {
            trawl_block_release(block(firstFinished))
            firstFinished = (firstFinished + 1) % layout.blockCount
            finished -= 1
        }
    }

    /// The next packet, or nil when the current block still belongs to the kernel.
    @inline(__always)
    func nextPacket() -> UnsafeMutablePointer<tpacket3_hdr>? {
        if remaining == 0 {
            let descriptor = block(current)
            guard trawl_block_status(descriptor) & UInt32(TP_STATUS_USER) != 0 else { return nil }
            let header = trawl_block_header(descriptor)!.pointee
            remaining = Int(header.num_pkts)
            nextOffset = Int(header.offset_to_first_pkt)
            if remaining == 0 { // an empty block retired by the timer
                finishCurrentBlock()
                return nextPacket()
            }
        }
        let packet = (block(current) + nextOffset).assumingMemoryBound(to: tpacket3_hdr.self)
        nextOffset += Int(packet.pointee.tp_next_offset)
        remaining -= 1
        if remaining == 0 { finishCurrentBlock() }
        return packet
    }

    @inline(__always)
    private func finishCurrentBlock() {
        if finished == 0 { firstFinished = current }
        finished += 1
        current = (current + 1) % layout.blockCount
    }
}
