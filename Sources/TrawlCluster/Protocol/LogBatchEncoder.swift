import TrawlAnalysis
import TrawlCore

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
