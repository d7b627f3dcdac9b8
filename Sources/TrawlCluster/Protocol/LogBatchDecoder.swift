import TrawlAnalysis
import TrawlCore

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
        var (reader, flags) = try WireReader.opening(bytes, magic: ClusterProtocol.batchMagic)
        guard flags == 0 else { throw .invalid("reserved bits set") }
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
        if let problem = bytes.withUnsafeBytes({ Self.checkRecords($0, from: start, count: count, types: types) }) {
            throw problem
        }
        header = LogBatchHeader(node: node, session: session, sequence: sequence, path: path, fields: fields)
        recordCount = count
        self.bytes = bytes
    }

    /// What is wrong with the `count` records of `types` from `start` to the message's end,
    /// or nil: every presence and bool byte, address length, string length and set size
    /// checked against what is left, and nothing after the last record. One quick walk over
    /// the bytes (a logger checks a million values a second this way).
    static func checkRecords(_ raw: UnsafeRawBufferPointer, from start: Int, count: Int, types: [LogFieldType]) -> ProtocolError? {
        let end = raw.count
        var at = start
        @inline(__always) func length32() -> Int? {
            guard end - at >= 4 else { return nil }
            defer { at += 4 }
            return Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        }
        for _ in 0..<count {
            for type in types {
                guard at < end else { return .truncated("presence") }
                let present = raw[at]
                at += 1
                if present == 0 { continue }
                guard present == 1 else { return .invalid("presence byte \(present)") }
                switch type {
                case .bool:
                    guard at < end else { return .truncated("bool") }
                    guard raw[at] <= 1 else { return .invalid("bool value") }
                    at += 1
                case .count, .int, .double, .time, .interval:
                    guard end - at >= 8 else { return .truncated("number") }
                    at += 8
                case .port:
                    guard end - at >= 2 else { return .truncated("port") }
                    at += 2
                case .address:
                    guard at < end else { return .truncated("address length") }
                    let length = Int(raw[at])
                    guard length == 4 || length == 16 else { return .invalid("address of \(length) bytes") }
                    guard end - at - 1 >= length else { return .truncated("address") }
                    at += 1 + length
                case .string, .enumeration:
                    guard let length = length32() else { return .truncated("string length") }
                    guard end - at >= length else { return .truncated("string") }
                    at += length
                case .stringSet:
                    guard let items = length32() else { return .truncated("set size") }
                    guard items <= (end - at) / 4 else { return .truncated("set") }
                    for _ in 0..<items {
                        guard let length = length32() else { return .truncated("set item length") }
                        guard end - at >= length else { return .truncated("set item") }
                        at += length
                    }
                }
            }
        }
        return at == end ? nil : .invalid("\(end - at) bytes after the last record")
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
