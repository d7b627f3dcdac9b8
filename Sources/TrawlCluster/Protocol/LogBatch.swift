import TrawlAnalysis
import TrawlCore

/// A batch of log records of one stream from one node, as it travels to a logger: the
/// stream's schema, then the records. docs/cluster-protocol.md describes the bytes.
public struct LogBatchHeader: Equatable, Sendable {
    public var node: String
    /// Chosen at random when the node starts: with `sequence`, names the batch uniquely.
    public var session: UInt64
    /// 1, 2, 3... within a session, in the order the node made its batches.
    public var sequence: UInt64
    public var path: String
    public var fields: [(name: String, type: LogFieldType)]

    public init(node: String, session: UInt64, sequence: UInt64, path: String, fields: [(name: String, type: LogFieldType)]) {
        self.node = node
        self.session = session
        self.sequence = sequence
        self.path = path
        self.fields = fields
    }

    public static func == (a: LogBatchHeader, b: LogBatchHeader) -> Bool {
        a.node == b.node && a.session == b.session && a.sequence == b.sequence && a.path == b.path
            && a.fields.elementsEqual(b.fields, by: { $0.name == $1.name && $0.type == $1.type })
    }
}

/// The field types a batch can carry, with their codes on the wire.
public enum LogFieldType: UInt8, Sendable {
    case bool = 1, count = 2, int = 3, double = 4, time = 5, interval = 6, string = 7, address = 8, port = 9,
         enumeration = 10, stringSet = 11

    /// From Zeek's name of the type, as schemas spell it.
    public init?(zeekName: String) {
        switch zeekName {
        case "bool": self = .bool
        case "count": self = .count
        case "int": self = .int
        case "double": self = .double
        case "time": self = .time
        case "interval": self = .interval
        case "string": self = .string
        case "addr": self = .address
        case "port": self = .port
        case "enum": self = .enumeration
        case "set[string]": self = .stringSet
        default: return nil
        }
    }

    public var zeekName: String {
        switch self {
        case .bool: return "bool"
        case .count: return "count"
        case .int: return "int"
        case .double: return "double"
        case .time: return "time"
        case .interval: return "interval"
        case .string: return "string"
        case .address: return "addr"
        case .port: return "port"
        case .enumeration: return "enum"
        case .stringSet: return "set[string]"
        }
    }
}

/// The limits a decoder holds a batch to; anything beyond is refused whole.
public enum LogBatchLimits {
    public static let maximumBytes = 64 << 20
    public static let maximumFields = 256
    public static let maximumRecords = 1 << 20
    public static let maximumName = 1024
}

/// Why a message was refused.
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case badMagic
    case unsupportedVersion(UInt8)
    case invalid(String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case let .truncated(what): return "truncated message (in \(what))"
        case .badMagic: return "not a Trawl cluster message"
        case let .unsupportedVersion(version): return "unsupported protocol version \(version) (this node speaks \(ClusterProtocol.version))"
        case let .invalid(what): return "invalid message: \(what)"
        case let .tooLarge(what): return "message too large: \(what)"
        }
    }
}

public enum ClusterProtocol {
    public static let version: UInt8 = 1
    static let batchMagic: [UInt8] = Array("TRLB".utf8)
    static let ackMagic: [UInt8] = Array("TRLA".utf8)
    static let eventMagic: [UInt8] = Array("TRLE".utf8)
}

/// Builds a batch: the header at once, then records one at a time, into one growing
/// buffer written with plain stores (a worker encodes a million records a second).
public final class LogBatchEncoder {
    private var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    public private(set) var records: UInt32 = 0
    private var countOffset = 0
    private let types: [LogFieldType]

    public init(_ header: LogBatchHeader, reserve: Int = 1 << 16) {
        capacity = max(reserve, 256)
        storage = .allocate(byteCount: capacity, alignment: 8)
        types = header.fields.map(\.type)
        append(bytes: ClusterProtocol.batchMagic)
        append(bytes: [ClusterProtocol.version, 0, 0, 0])
        put(header.session)
        put(header.sequence)
        putName(header.node)
        putName(header.path)
        put(UInt16(header.fields.count))
        for field in header.fields {
            putName(field.name)
            put(field.type.rawValue)
        }
        countOffset = used
        put(UInt32(0))
    }

    deinit { storage.deallocate() }

    /// The batch as it goes on the wire.
    public var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: storage, count: used)) }
    public var byteCount: Int { used }

    /// Appends a record whose values follow the schema's order and types; a value whose
    /// case does not match its field's type is written unset.
    public func append(_ record: [LogValue]) {
        record.withUnsafeBufferPointer { values in
            for index in types.indices {
                append(index < values.count ? values[index] : .unset, as: types[index])
            }
        }
        records += 1
        storage.storeBytes(of: records.littleEndian, toByteOffset: countOffset, as: UInt32.self)
    }

    @inline(__always) private func reserve(_ count: Int) {
        guard used + count > capacity else { return }
        let larger = max(capacity * 2, used + count)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: larger, alignment: 8)
        grown.copyMemory(from: storage, byteCount: used)
        storage.deallocate()
        storage = grown
        capacity = larger
    }

    @inline(__always) private func put<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        storage.storeBytes(of: value.littleEndian, toByteOffset: used, as: T.self)
        used += MemoryLayout<T>.size
    }

    private func append(bytes: [UInt8]) {
        reserve(bytes.count)
        bytes.withUnsafeBytes { (storage + used).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        used += bytes.count
    }

    private func putName(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            let count = min(utf8.count, LogBatchLimits.maximumName)
            put(UInt16(count))
            reserve(count)
            if count > 0 { (storage + used).copyMemory(from: utf8.baseAddress!, byteCount: count) }
            used += count
        }
    }

    private func putText(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            put(UInt32(utf8.count))
            reserve(utf8.count)
            if utf8.count > 0 { (storage + used).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count) }
            used += utf8.count
        }
    }

    @inline(__always) private func append(_ value: LogValue, as type: LogFieldType) {
        switch (type, value) {
        case let (.bool, .bool(flag)): put(UInt16(flag ? 0x0101 : 0x0001))
        case let (.count, .count(number)), let (.time, .time(number)), let (.interval, .interval(number)):
            put(UInt8(1))
            put(number)
        case let (.int, .int(number)):
            put(UInt8(1))
            put(UInt64(bitPattern: number))
        case let (.double, .double(number)):
            put(UInt8(1))
            put(number.bitPattern)
        case let (.port, .port(port)):
            put(UInt8(1))
            put(port)
        case let (.address, .address(address)):
            if address.isV4 {
                put(UInt16(0x0401))
                put(address.v4Value.bigEndian.littleEndian) // network order on the wire
            } else {
                put(UInt16(0x1001))
                put(address.high.bigEndian.littleEndian)
                put(address.low.bigEndian.littleEndian)
            }
        case let (.string, .string(text)), let (.enumeration, .enum(text)):
            put(UInt8(1))
            putText(text)
        case let (.stringSet, .set(items)):
            put(UInt8(1))
            put(UInt32(items.count))
            for item in items { putText(item) }
        default:
            put(UInt8(0))
        }
    }

    static func put<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    static func putName(_ text: String, into bytes: inout [UInt8]) {
        let utf8 = text.utf8.prefix(LogBatchLimits.maximumName)
        put(UInt16(utf8.count), into: &bytes)
        bytes += utf8
    }
}

/// Reads a batch. `init` checks the whole message (header, schema, every record) before
/// anything is taken from it, so that a bad batch is refused whole and nothing of it is
/// written; `records` then decodes the values.
public struct LogBatchDecoder {
    public let header: LogBatchHeader
    public let recordCount: Int
    private let bytes: [UInt8]
    private let recordsStart: Int

    public init(_ bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count <= LogBatchLimits.maximumBytes else { throw .tooLarge("\(bytes.count) bytes") }
        var reader = WireReader(bytes)
        guard bytes.count >= 4, Array(bytes[0..<4]) == ClusterProtocol.batchMagic else { throw .badMagic }
        reader.position = 4
        let version = try reader.u8("version")
        guard version == ClusterProtocol.version else { throw .unsupportedVersion(version) }
        guard try reader.u8("flags") == 0, try reader.u16("reserved") == 0 else { throw .invalid("reserved bits set") }
        let session = try reader.u64("session"), sequence = try reader.u64("sequence")
        let node = try reader.name("node"), path = try reader.name("path")
        guard !node.isEmpty, !path.isEmpty else { throw .invalid("empty node or path") }
        let fieldCount = Int(try reader.u16("field count"))
        guard fieldCount > 0, fieldCount <= LogBatchLimits.maximumFields else { throw .invalid("\(fieldCount) fields") }
        var fields: [(name: String, type: LogFieldType)] = []
        for _ in 0..<fieldCount {
            let name = try reader.name("field name")
            let code = try reader.u8("field type")
            guard let type = LogFieldType(rawValue: code) else { throw .invalid("unknown field type \(code)") }
            fields.append((name, type))
        }
        let count = Int(try reader.u32("record count"))
        guard count <= LogBatchLimits.maximumRecords else { throw .tooLarge("\(count) records") }
        recordsStart = reader.position
        let types = fields.map(\.type), start = reader.position
        // The quick walk over every value; when it finds something wrong, the careful one
        // says what.
        if bytes.withUnsafeBytes({ Self.endOfRecords($0, from: start, count: count, types: types) }) != bytes.count {
            for _ in 0..<count {
                for field in fields { try reader.skipValue(field.type) }
            }
            guard reader.position == bytes.count else { throw .invalid("\(bytes.count - reader.position) bytes after the last record") }
            throw .invalid("a value out of bounds")
        }
        header = LogBatchHeader(node: node, session: session, sequence: sequence, path: path, fields: fields)
        recordCount = count
        self.bytes = bytes
    }

    /// Where `count` records of `types` starting at `start` end, or nil when a value is
    /// malformed or runs past the end: every length and count checked against what is left.
    static func endOfRecords(_ raw: UnsafeRawBufferPointer, from start: Int, count: Int, types: [LogFieldType]) -> Int? {
        let end = raw.count
        var at = start
        @inline(__always) func length32() -> Int? {
            guard end - at >= 4 else { return nil }
            defer { at += 4 }
            return Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        }
        for _ in 0..<count {
            for type in types {
                guard at < end else { return nil }
                let present = raw[at]
                at += 1
                if present == 0 { continue }
                guard present == 1 else { return nil }
                switch type {
                case .bool:
                    guard at < end, raw[at] <= 1 else { return nil }
                    at += 1
                case .count, .int, .double, .time, .interval:
                    guard end - at >= 8 else { return nil }
                    at += 8
                case .port:
                    guard end - at >= 2 else { return nil }
                    at += 2
                case .address:
                    guard at < end else { return nil }
                    let length = Int(raw[at])
                    guard length == 4 || length == 16, end - at - 1 >= length else { return nil }
                    at += 1 + length
                case .string, .enumeration:
                    guard let length = length32(), end - at >= length else { return nil }
                    at += length
                case .stringSet:
                    guard let items = length32(), items <= (end - at) / 4 else { return nil }
                    for _ in 0..<items {
                        guard let length = length32(), end - at >= length else { return nil }
                        at += length
                    }
                }
            }
        }
        return at
    }

    /// Calls `body` with each record's values (one array, reused between records).
    public func forEachRecord(_ body: ([LogValue]) throws -> Void) rethrows {
        var reader = WireReader(bytes)
        reader.position = recordsStart
        var values: [LogValue] = []
        values.reserveCapacity(header.fields.count)
        for _ in 0..<recordCount {
            values.removeAll(keepingCapacity: true)
            for field in header.fields {
                // Checked in init: cannot fail here.
                values.append((try? reader.value(field.type)) ?? .unset)
            }
            try body(values)
        }
    }

    /// The schema in the form the log writers take.
    public var schema: LogSchema {
        LogSchema(path: header.path, fields: header.fields.map { ($0.name, $0.type.zeekName) })
    }
}

/// A bounds-checked little-endian reader over a message.
struct WireReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

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

    mutating func skipValue(_ type: LogFieldType) throws(ProtocolError) {
        let present = try u8("presence")
        guard present <= 1 else { throw .invalid("presence byte \(present)") }
        guard present == 1 else { return }
        switch type {
        case .bool: guard try u8("bool") <= 1 else { throw .invalid("bool value") }
        case .count, .int, .double, .time, .interval: _ = try take(8, "number")
        case .port: _ = try take(2, "port")
        case .address:
            let length = try u8("address length")
            guard length == 4 || length == 16 else { throw .invalid("address of \(length) bytes") }
            _ = try take(Int(length), "address")
        case .string, .enumeration: _ = try take(Int(try u32("string length")), "string")
        case .stringSet:
            let count = try u32("set size")
            guard Int(count) <= (bytes.count - position) / 4 else { throw .truncated("set") }
            for _ in 0..<count { _ = try take(Int(try u32("set item length")), "set item") }
        }
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

/// The logger's answer to a batch: it is written (or was already).
public struct LogAck: Equatable, Sendable {
    public enum Status: UInt8, Sendable { case written = 0, duplicate = 1, refused = 2 }
    public var status: Status
    public var session: UInt64
    public var sequence: UInt64

    public init(status: Status, session: UInt64, sequence: UInt64) {
        self.status = status
        self.session = session
        self.sequence = sequence
    }

    public var bytes: [UInt8] {
        var bytes = ClusterProtocol.ackMagic + [ClusterProtocol.version, status.rawValue, 0, 0]
        LogBatchEncoder.put(session, into: &bytes)
        LogBatchEncoder.put(sequence, into: &bytes)
        return bytes
    }

    public init(_ bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count >= 4, Array(bytes[0..<4]) == ClusterProtocol.ackMagic else { throw .badMagic }
        var reader = WireReader(bytes)
        reader.position = 4
        let version = try reader.u8("version")
        guard version == ClusterProtocol.version else { throw .unsupportedVersion(version) }
        guard let status = Status(rawValue: try reader.u8("status")) else { throw .invalid("ack status") }
        _ = try reader.u16("reserved")
        self.status = status
        session = try reader.u64("session")
        sequence = try reader.u64("sequence")
        guard reader.position == bytes.count else { throw .invalid("bytes after the ack") }
    }
}

extension LogBatchDecoder {
    /// The most bytes the batch's rows can take as Zeek ASCII: a string byte becomes at most
    /// four, any other value at most 45 (an IPv6 address), plus a separator each.
    var asciiBound: Int { (bytes.count - recordsStart) * 4 + recordCount * header.fields.count * 48 + recordCount }

    /// Writes the records as Zeek ASCII rows straight from their bytes, without making
    /// values of them: a logger's fast path. The batch was checked whole in `init`, so the
    /// walk trusts its lengths.
    public func writeASCII(to writer: ZeekASCIIWriter) throws(Errno) {
        let types = header.fields.map(\.type)
        let count = recordCount, start = recordsStart
        var failure: Errno?
        bytes.withUnsafeBytes { raw in
            do throws(Errno) {
                try writer.writeRows(maximumBytes: asciiBound) { row in
                    var at = start
                    @inline(__always) func u64() -> UInt64 {
                        defer { at += 8 }
                        return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                    }
                    @inline(__always) func u32() -> Int {
                        defer { at += 4 }
                        return Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                    }
                    @inline(__always) func text() -> UnsafeRawBufferPointer {
                        let length = u32()
                        defer { at += length }
                        return UnsafeRawBufferPointer(rebasing: raw[at..<(at + length)])
                    }
                    for _ in 0..<count {
                        for (index, type) in types.enumerated() {
                            if index > 0 { row.byte(0x09) }
                            let present = raw[at]
                            at += 1
                            guard present == 1 else { row.unset(); continue }
                            switch type {
                            case .bool: row.bool(raw[at] == 1); at += 1
                            case .count: row.decimal(u64())
                            case .int: row.signed(Int64(bitPattern: u64()))
                            case .double: row.double(Double(bitPattern: u64()))
                            case .time, .interval: row.seconds(u64())
                            case .port:
                                row.decimal(UInt64(UInt16(raw[at]) | UInt16(raw[at + 1]) << 8))
                                at += 2
                            case .address:
                                let length = Int(raw[at])
                                at += 1
                                let view = UnsafeRawBufferPointer(rebasing: raw[at..<(at + length)])
                                row.address(length == 4 ? IPAddress(v4: view, at: 0) : IPAddress(v6: view, at: 0))
                                at += length
                            case .string, .enumeration: row.string(text())
                            case .stringSet:
                                let items = u32()
                                if items == 0 { row.string(UnsafeRawBufferPointer(start: nil, count: 0)) }
                                for item in 0..<items {
                                    if item > 0 { row.byte(UInt8(ascii: ",")) }
                                    row.string(text())
                                }
                            }
                        }
                        row.byte(0x0a)
                    }
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }
}
