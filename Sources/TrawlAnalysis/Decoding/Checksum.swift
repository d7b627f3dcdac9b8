/// The Internet checksum (RFC 1071), as a ones'-complement sum: 0xffff means valid.
#if _endian(big)
#error("Checksum.add assembles its tail word for little-endian hosts")
#endif

enum Checksum {
    /// Adds `bytes` as big-endian 16-bit words to `initial`. The ones'-complement sum does not
    /// depend on byte order or word size (RFC 1071): the bytes are summed as native 64-bit
    /// words with end-around carry, two chains at a time, and the folded result swapped once.
    @inline(__always)
    static func add(_ bytes: UnsafeRawBufferPointer, to initial: UInt64) -> UInt64 {
        guard let base = bytes.baseAddress else { return initial }
        @inline(__always) func addCarrying(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let (sum, overflow) = a.addingReportingOverflow(b)
            return sum &+ (overflow ? 1 : 0)
        }
        let n = bytes.count
        var i = 0
        var a: UInt64 = 0, b: UInt64 = 0, c: UInt64 = 0, d: UInt64 = 0
        // Four independent chains, 32 bytes a turn (indices cannot overflow: i <= n).
        while i &+ 32 <= n {
            a = addCarrying(a, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            b = addCarrying(b, base.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self))
            c = addCarrying(c, base.loadUnaligned(fromByteOffset: i &+ 16, as: UInt64.self))
            d = addCarrying(d, base.loadUnaligned(fromByteOffset: i &+ 24, as: UInt64.self))
            i &+= 32
        }
        a = addCarrying(a, c)
        b = addCarrying(b, d)
        while i &+ 8 <= n {
            a = addCarrying(a, base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i &+= 8
        }
        // The last 1 to 7 bytes, each at its place in a zero-padded little-endian word.
        var tail: UInt64 = 0, shift: UInt64 = 0
        if i + 4 <= n {
            tail = UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            i += 4
            shift = 32
        }
        if i + 2 <= n {
            tail |= UInt64(base.loadUnaligned(fromByteOffset: i, as: UInt16.self)) << shift
            i += 2
            shift += 16
        }
        if i < n { tail |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift }
        b = addCarrying(b, tail)
        var sum = addCarrying(a, b)
        sum = (sum >> 32) &+ (sum & 0xffff_ffff)
        sum = (sum >> 32) &+ (sum & 0xffff_ffff)
        sum = (sum >> 16) &+ (sum & 0xffff)
        sum = (sum >> 16) &+ (sum & 0xffff)
        let native = UInt16(truncatingIfNeeded: sum)
        return initial &+ UInt64(UInt16(bigEndian: native))
    }

    /// Folds a sum to 16 bits with end-around carry: four fixed steps cover any 64-bit value
    /// (no loop to predict).
    @inline(__always)
    static func fold(_ value: UInt64) -> UInt16 {
        var sum = (value & 0xffff_ffff) &+ (value >> 32)  // < 2^33
        sum = (sum & 0xffff) &+ (sum >> 16)                 // < 2^17 + 2^16
        sum = (sum & 0xffff) &+ (sum >> 16)                 // <= 0xffff + 3
        sum = (sum & 0xffff) &+ (sum >> 16)                 // <= 0xffff
        return UInt16(truncatingIfNeeded: sum)
    }

    static func sum(_ bytes: UnsafeRawBufferPointer) -> UInt16 { fold(add(bytes, to: 0)) }

    /// The sum of an IPv4 header without options (20 bytes): five 32-bit words added in
    /// a 64-bit accumulator, which cannot overflow, then folded.
    @inline(__always)
    static func sumOf20Bytes(_ base: UnsafeRawPointer) -> UInt16 {
        var sum: UInt64 = 0
        for i in 0..<5 { sum &+= UInt64(UInt32(bigEndian: base.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))) }
        return fold(sum)
    }

    /// Sum over the pseudo-header and the segment.
    static func transport(_ segment: UnsafeRawBufferPointer, source: IPAddress, destination: IPAddress, proto: UInt8) -> UInt16 {
        @inline(__always) func words(_ w: UInt64) -> UInt64 {
            (w >> 48 & 0xffff) &+ (w >> 32 & 0xffff) &+ (w >> 16 & 0xffff) &+ (w & 0xffff)
        }
        @inline(__always) func address(_ a: IPAddress) -> UInt64 {
            a.isV4 ? (a.low >> 16 & 0xffff) &+ (a.low & 0xffff) : words(a.high) &+ words(a.low)
        }
        var sum = address(source) &+ address(destination)
        sum &+= UInt64(proto) + UInt64(segment.count)
        return fold(add(segment, to: sum))
    }
}
