import CTrawlABI

/// One captured packet, viewed in place: `bytes` points into the source's memory and
/// is valid until the source's next `nextBatch` or `close`.
@frozen
public struct Packet {
    public let timestampNanoseconds: UInt64
    public let capturedLength: Int
    public let wireLength: Int
    public let bytes: UnsafeRawBufferPointer
    public let flags: PacketFlags
    /// This packet's LINKTYPE_ value when it differs from its source's; 0 otherwise.
    public let linkType: UInt32

    @inlinable
    public init(timestampNanoseconds: UInt64, capturedLength: Int, wireLength: Int, bytes: UnsafeRawBufferPointer,
                flags: PacketFlags = [], linkType: UInt32 = 0) {
        self.timestampNanoseconds = timestampNanoseconds
        self.capturedLength = capturedLength
        self.wireLength = wireLength
        self.bytes = bytes
        self.flags = flags
        self.linkType = linkType
    }
}

/// What the capture mechanism knows about a packet (the ABI's TRAWL_PACKET_* bits).
@frozen
public struct PacketFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The kernel or NIC verified the checksums.
    public static let checksumVerified = PacketFlags(rawValue: 0x1)
    /// Checksums not filled in yet (sent with offload); not to be judged.
    public static let checksumPartial = PacketFlags(rawValue: 0x2)
}

/// A reusable array of packet slots that a source fills on each read. It is allocated
/// once, so reading packets allocates nothing.
public final class PacketBatch {
    /// The slots, laid out as the C ABI's `trawl_packet` so plugins fill them directly.
    public let slots: UnsafeMutablePointer<trawl_packet>
    public let capacity: Int
    /// How many slots the last read filled. Read once per batch in hot loops, so dynamic
    /// exclusivity checks are off for it.
    @exclusivity(unchecked) public var count: Int = 0

    public init(capacity: Int = 256) {
        precondition(capacity > 0, "a batch holds at least one packet")
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: trawl_packet(), count: capacity)
    }

    deinit { slots.deallocate() }

    @inlinable
    public subscript(index: Int) -> Packet {
        let slot = slots[index]
        let length = Int(slot.captured_length)
        return Packet(
            timestampNanoseconds: slot.timestamp_ns,
            capturedLength: length,
            wireLength: Int(slot.wire_length),
            bytes: UnsafeRawBufferPointer(start: slot.data, count: length),
            flags: PacketFlags(rawValue: slot.flags),
            linkType: slot.link_type
        )
    }

    /// Appends one packet; for sources written in Swift inside the host. Returns false when full.
    @inlinable
    public func append(timestampNanoseconds: UInt64, wireLength: Int, bytes: UnsafeRawBufferPointer,
                       flags: PacketFlags = []) -> Bool {
        guard count < capacity else { return false }
        slots[count] = trawl_packet(
            timestamp_ns: timestampNanoseconds,
            captured_length: UInt32(bytes.count),
            wire_length: UInt32(wireLength),
            data: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
            flags: flags.rawValue,
            link_type: 0
        )
        count += 1
        return true
    }
}
