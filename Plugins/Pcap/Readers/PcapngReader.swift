#if canImport(Glibc)
import Glibc
#endif
import TrawlPluginSDK

/// A pcapng reader for the files libpcap refuses: those whose interfaces have different
/// snapshot lengths (common in multi-interface captures). It reads section header,
/// interface description, enhanced, simple and obsolete packet blocks, in either byte
/// order, and skips every other block. Interfaces may have different link types: each
/// packet says its own.
public final class PcapngReader {
    private let file: UnsafeMutablePointer<FILE>
    private var swapped = false
    /// The buffer blocks are read into, reused; only its first `blockLength` bytes are the
    /// current block's body (its trailing length word excluded).
    private var block: [UInt8] = []
    private var blockLength = 0
    /// Per interface: link type, snapshot length, timestamp resolution and offset.
    private var interfaces: [(linkType: UInt16, snaplen: UInt32, resolution: UInt8, offsetSeconds: Int64)] = []
    public private(set) var linkType: UInt16 = 0
    public private(set) var snaplen: UInt32 = 0

    /// One packet of the last block read: where its bytes are in `bytes`.
    public struct Record {
        public var timestampNanoseconds: UInt64
        public var capturedLength: Int
        public var wireLength: Int
        public var dataOffset: Int
        public var linkType: UInt16
    }
    /// Lends the bytes of the last block read (a record's data starts at its `dataOffset`).
    public func withBlock<T>(_ body: (UnsafeRawBufferPointer) -> T) -> T {
        block.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<blockLength])) }
    }

    private let owning: Bool

    /// Reads up to the first interface description, to learn the link type. An owning
    /// reader closes the file when it goes.
    public init(file: UnsafeMutablePointer<FILE>, owning: Bool = true) throws(PluginError) {
        self.file = file
        self.owning = owning
        while interfaces.isEmpty {
            guard try readBlock() != nil else { throw PluginError("pcapng file without an interface description", code: .format) }
        }
    }

    deinit { if owning { fclose(file) } }

    /// Whether the interfaces described before the first packet differ in snapshot length,
    /// which libpcap refuses to read. Leaves the file where it was.
    public static func interfacesDifferInSnaplen(_ file: UnsafeMutablePointer<FILE>) -> Bool {
        let start = ftell(file)
        defer { fseek(file, start, SEEK_SET) }
        guard let reader = try? PcapngReader(file: file, owning: false) else { return false }
        for _ in 0..<64 {
            guard let type = try? reader.readBlock(), type == 1 || type == 0x0a0d_0d0a else { break }
        }
        return Set(reader.interfaces.map(\.snaplen)).count > 1
    }

    private func u16(_ at: Int) -> UInt16 {
        let v = UInt16(block[at]) | UInt16(block[at + 1]) << 8
        return swapped ? v.byteSwapped : v
    }

    private func u32(_ at: Int) -> UInt32 {
        let v = UInt32(block[at]) | UInt32(block[at + 1]) << 8 | UInt32(block[at + 2]) << 16 | UInt32(block[at + 3]) << 24
        return swapped ? v.byteSwapped : v
    }

    /// Reads the next block into `block`; returns its type, nil at the end of the file.
    private func readBlock() throws(PluginError) -> UInt32? {
        var header = [UInt8](repeating: 0, count: 8)
        let got = fread(&header, 1, 8, file)
        if got == 0 { return nil }
        guard got == 8 else { throw PluginError("truncated pcapng block header", code: .format) }
        var type = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
        if type == 0x0a0d_0d0a { // section header: its byte-order magic decides how to read the rest
            var magic = [UInt8](repeating: 0, count: 4)
            guard fread(&magic, 1, 4, file) == 4 else { throw PluginError("truncated pcapng section header", code: .format) }
            let value = UInt32(magic[0]) | UInt32(magic[1]) << 8 | UInt32(magic[2]) << 16 | UInt32(magic[3]) << 24
            switch value {
            case 0x1a2b_3c4d: swapped = false
            case 0x4d3c_2b1a: swapped = true
            default: throw PluginError("pcapng section header with an unknown byte-order magic", code: .format)
            }
            interfaces.removeAll() // interface numbers start again in each section
            fseek(file, -4, SEEK_CUR)
        } else if swapped {
            type = type.byteSwapped
        }
        var length = UInt32(header[4]) | UInt32(header[5]) << 8 | UInt32(header[6]) << 16 | UInt32(header[7]) << 24
        if swapped { length = length.byteSwapped }
        guard length >= 12, length % 4 == 0, length <= 64 << 20 else {
            throw PluginError("pcapng block of impossible length \(length)", code: .format)
        }
        let body = Int(length) - 8 // including the trailing length
        if block.count < body { block = [UInt8](repeating: 0, count: body) }
        guard fread(&block, 1, body, file) == body else { throw PluginError("truncated pcapng block", code: .format) }
        blockLength = body - 4
        if type == 1 { try describeInterface() }
        return type
    }

    /// The most bytes of one packet this reader hands out, as libpcap's MAXIMUM_SNAPLEN.
    public static let maximumSnaplen: UInt32 = 262_144

    private func describeInterface() throws(PluginError) {
        guard blockLength >= 8 else { throw PluginError("truncated pcapng interface description", code: .format) }
        let type = u16(0), snap = u32(4)
        var resolution: UInt8 = 6
        var offset: Int64 = 0
        var at = 8
        // Options: code, length, value padded to 4 bytes; one cut off by the block's end ends them.
        while at + 4 <= blockLength {
            let code = u16(at), length = Int(u16(at + 2))
            if code == 0 || at + 4 + length > blockLength { break }
            if code == 9, length >= 1 { resolution = block[at + 4] }
            if code == 14, length == 8 { offset = Int64(bitPattern: UInt64(u32(at + 4)) | UInt64(u32(at + 8)) << 32) }
            at += 4 + (length + 3) & ~3
        }
        if interfaces.isEmpty && linkType == 0 { linkType = type }
        let kept = snap == 0 || snap > Self.maximumSnaplen ? Self.maximumSnaplen : snap
        snaplen = max(snaplen, kept)
        interfaces.append((type, kept, resolution, offset))
    }

    /// A timestamp in the interface's resolution (if_tsresol: a power of 10, or of 2 with
    /// the top bit set) and offset (if_tsoffset, in seconds), as nanoseconds since 1970.
    /// Any resolution a file states is handled: ticks finer than a nanosecond are divided
    /// away, coarser ones multiplied (wrapping, as a garbage timestamp must not stop a run).
    public static func nanoseconds(_ ticks: UInt64, resolution: UInt8, offsetSeconds: Int64) -> UInt64 {
        var ns: UInt64
        if resolution & 0x80 == 0 {
            let exponent = Int(resolution)
            if exponent <= 9 {
                var scale: UInt64 = 1
                for _ in 0..<(9 - exponent) { scale &*= 10 }
                ns = ticks &* scale
            } else if exponent - 9 < 20 {
                var scale: UInt64 = 1
                for _ in 0..<(exponent - 9) { scale &*= 10 }
                ns = ticks / scale
            } else {
                ns = 0 // 10^20 and beyond: no tick reaches a nanosecond
            }
        } else {
            // ticks / 2^shift seconds: (ticks * 10^9) >> shift, in 128 bits.
            let shift = Int(resolution & 0x7f)
            let product = ticks.multipliedFullWidth(by: 1_000_000_000)
            if shift == 0 {
                ns = product.low
            } else if shift < 64 {
                ns = product.low >> UInt64(shift) | product.high << UInt64(64 - shift)
            } else {
                ns = product.high >> UInt64(shift - 64)
            }
        }
        return UInt64(bitPattern: Int64(bitPattern: ns) &+ offsetSeconds &* 1_000_000_000)
    }

    /// Enhanced and obsolete packet blocks share this layout after the interface field:
    /// timestamp high and low words, captured and original length, then the data.
    private func timestampedRecord(interface: Int) throws(PluginError) -> Record {
        guard blockLength >= 20 else { throw PluginError("truncated pcapng packet block", code: .format) }
        guard interface < interfaces.count else { throw PluginError("pcapng packet for an undeclared interface", code: .format) }
        let captured = Int(u32(12))
        guard captured <= blockLength - 20 else { throw PluginError("pcapng packet longer than its block", code: .format) }
        let ticks = UInt64(u32(4)) << 32 | UInt64(u32(8))
        let (_, _, resolution, offset) = interfaces[interface]
        return Record(timestampNanoseconds: Self.nanoseconds(ticks, resolution: resolution, offsetSeconds: offset),
                      capturedLength: captured, wireLength: Int(u32(16)), dataOffset: 20,
                      linkType: interfaces[interface].linkType)
    }

    /// The next packet, or nil at the end of the file. Its bytes are in the block until the
    /// next call.
    public func next() throws(PluginError) -> Record? {
        while let type = try readBlock() {
            switch type {
            case 6: // enhanced packet block: a 32-bit interface id
                guard blockLength >= 4 else { throw PluginError("truncated pcapng packet block", code: .format) }
                return try timestampedRecord(interface: Int(u32(0)))
            case 2: // obsolete packet block: a 16-bit interface id and a drop count
                guard blockLength >= 4 else { throw PluginError("truncated pcapng packet block", code: .format) }
                return try timestampedRecord(interface: Int(u16(0)))
            case 3: // simple packet block: no timestamp, interface 0
                guard !interfaces.isEmpty else { throw PluginError("pcapng packet before any interface", code: .format) }
                guard blockLength >= 4 else { throw PluginError("truncated pcapng packet block", code: .format) }
                let wire = Int(u32(0))
                let captured = min(wire, Int(interfaces[0].snaplen), blockLength - 4)
                return Record(timestampNanoseconds: 0, capturedLength: captured, wireLength: wire, dataOffset: 4,
                              linkType: interfaces[0].linkType)
            default:
                continue // statistics, name resolution, custom and other blocks
            }
        }
        return nil
    }
}
