import TrawlAnalysis
import TrawlCore

/// A bounds-checked little-endian reader over a message.
struct WireReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The 8 bytes every message begins with: its magic, the version, one byte of its own
    /// (a batch's flags, an ack's status, an event's kind) and a reserved u16 that must be 0.
    /// Returns the reader after them, and that byte.
    static func opening(_ bytes: [UInt8], magic: [UInt8]) throws(ProtocolError) -> (reader: WireReader, byte: UInt8) {
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { throw .badMagic }
        var reader = WireReader(bytes)
        reader.position = 4
        let version = try reader.u8("version")
        guard version == ClusterProtocol.version else { throw .unsupportedVersion(version) }
        let byte = try reader.u8("flags, status or kind")
        guard try reader.u16("reserved") == 0 else { throw .invalid("reserved bits set") }
        return (reader, byte)
    }

    mutating func take(_ count: Int, _ what: StaticString) throws(ProtocolError) -> Range<Int> {
        guard count >= 0, bytes.count - position >= count else { throw .truncated("\(what)") }
        defer { position += count }
        return position..<(position + count)
    }

    mutating func integer<T: FixedWidthInteger>(_ what: StaticString, as: T.Type) throws(ProtocolError) -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - position >= size else { throw .truncated("\(what)") }
        defer { position += size }
        let at = position
        return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) })
    }

    mutating func u8(_ what: StaticString) throws(ProtocolError) -> UInt8 { try integer(what, as: UInt8.self) }
    mutating func u16(_ what: StaticString) throws(ProtocolError) -> UInt16 { try integer(what, as: UInt16.self) }
    mutating func u32(_ what: StaticString) throws(ProtocolError) -> UInt32 { try integer(what, as: UInt32.self) }
    mutating func u64(_ what: StaticString) throws(ProtocolError) -> UInt64 { try integer(what, as: UInt64.self) }

    mutating func name(_ what: StaticString) throws(ProtocolError) -> String {
        let length = Int(try u16(what))
        guard length <= LogBatchLimits.maximumName else { throw .tooLarge("\(what) of \(length) bytes") }
        let range = try take(length, what)
        guard let text = String(validating: bytes[range], as: UTF8.self) else { throw .invalid("\(what) is not UTF-8") }
        return text
    }

    mutating func text(_ what: StaticString) throws(ProtocolError) -> String {
        let range = try take(Int(try u32(what)), what)
        // Log text is bytes (Zeek logs them escaped): invalid UTF-8 is repaired, not refused.
        return String(decoding: bytes[range], as: UTF8.self)
    }

    mutating func value(_ type: LogFieldType) throws(ProtocolError) -> LogValue {
        guard try u8("presence") == 1 else { return .unset }
        switch type {
        case .bool: return .bool(try u8("bool") == 1)
        case .count: return .count(try u64("count"))
        case .int: return .int(Int64(bitPattern: try u64("int")))
        case .double: return .double(Double(bitPattern: try u64("double")))
        case .time: return .time(try u64("time"))
        case .interval: return .interval(try u64("interval"))
        case .port: return .port(try u16("port"))
        case .address:
            let length = try u8("address length")
            let range = try take(Int(length), "address")
            return bytes.withUnsafeBytes { raw in
                let view = UnsafeRawBufferPointer(rebasing: raw[range])
                return .address(length == 4 ? IPAddress(v4: view, at: 0) : IPAddress(v6: view, at: 0))
            }
        case .string: return .string(try text("string"))
        case .enumeration: return .enum(try text("enum"))
        case .stringSet:
            let count = try u32("set size")
            var items: [String] = []
            for _ in 0..<count { items.append(try text("set item")) }
            return .set(items)
        }
    }
}
