/// Reads of multi-byte fields. The caller has checked that the bytes are there; in debug
/// builds (and so under the fuzzers) the buffer's own bounds checks still apply.
extension UnsafeRawBufferPointer {
    @inline(__always) func be16(_ at: Int) -> UInt16 { UInt16(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) func be32(_ at: Int) -> UInt32 { UInt32(bigEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) func le16(_ at: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) func le32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
}
