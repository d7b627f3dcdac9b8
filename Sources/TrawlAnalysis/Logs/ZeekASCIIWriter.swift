#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Zeek's ASCII log format: a header of #-lines, tab-separated rows, and a #close line.
public final class ZeekASCIIWriter: FileLogWriter {
    private let schema: LogSchema
    private let file: LogFile

    public convenience init(schema: LogSchema, directory: String, openedAt: UInt64 = ZeekASCIIWriter.wallClock()) throws(Errno) {
        try self.init(schema: schema, file: LogFile(path: directory + "/" + schema.path + ".log"), openedAt: openedAt)
    }

    /// Writes at the end of `path` as it goes (a logger's file), with the header only when
    /// the file is new.
    public convenience init(schema: LogSchema, appendingTo path: String, openedAt: UInt64 = ZeekASCIIWriter.wallClock()) throws(Errno) {
        try self.init(schema: schema, file: LogFile(appendingTo: path), openedAt: openedAt)
    }

    init(schema: LogSchema, file: LogFile, openedAt: UInt64) throws(Errno) {
        self.schema = schema
        self.file = file
        guard file.initialSize == 0 else { return }
        try file.append("""
            #separator \\x09
            #set_separator\t,
            #empty_field\t(empty)
            #unset_field\t-
            #path\t\(schema.path)
            #open\t\(Self.stamp(openedAt))
            #fields\t\(schema.fields.map(\.name).joined(separator: "\t"))
            #types\t\(schema.fields.map(\.type).joined(separator: "\t"))

            """)
    }

    public static func wallClock() -> UInt64 { Clock.wallNanoseconds() }

    /// "2026-11-29-07-50-33", in local time as Zeek writes it.
    public static func stamp(_ nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : String(v) }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))-\(pad(parts.tm_hour))-\(pad(parts.tm_min))-\(pad(parts.tm_sec))"
    }

    /// Formats a row straight into the file's buffer, in room reserved for the longest
    /// text its values can take.
    public func write(_ record: [LogValue]) throws(Errno) {
        try record.withUnsafeBufferPointer { (values) throws(Errno) in
            var bound = 1
            for index in values.indices { bound += Self.longest(values[index]) + 1 }
            var cursor = try file.reserve(bound)
            for index in values.indices {
                if index > 0 { cursor.put(0x09) }
                Self.put(values[index], into: &cursor)
            }
            cursor.put(0x0a)
            try file.commit(cursor)
        }
    }

    /// The most bytes `value` can take: strings may triple (\xNN for one byte).
    static func longest(_ value: LogValue) -> Int {
        switch value {
        case .time, .interval: return 27
        case .count, .int: return 20
        case .double: return 40
        case .port: return 5
        case .bool, .unset: return 1
        case .address: return 45
        case let .string(text), let .enum(text): return max(7, 4 * text.utf8.count)
        case let .set(items): return items.reduce(7) { $0 + 1 + max(7, 4 * $1.utf8.count) }
        }
    }

    static func put(_ value: LogValue, into cursor: inout ByteCursor) {
        switch value {
        case let .time(ns), let .interval(ns): cursor.putSeconds(ns)
        case let .count(count): cursor.putDecimal(count)
        case let .int(value): cursor.putSigned(value)
        case let .double(value): cursor.putDouble(value)
        case let .port(port): cursor.putDecimal(UInt64(port))
        case let .bool(flag): cursor.put(flag ? UInt8(ascii: "T") : UInt8(ascii: "F"))
        case .unset: cursor.put(UInt8(ascii: "-"))
        case let .address(address): cursor.putAddress(address)
        case let .string(text), let .enum(text): putEscaped(text, into: &cursor)
        case let .set(items):
            if items.isEmpty { putEscaped("", into: &cursor) }
            for (position, item) in items.enumerated() {
                if position > 0 { cursor.put(UInt8(ascii: ",")) }
                putEscaped(item, into: &cursor)
            }
        }
    }

    /// A string field: "(empty)" when empty, else its bytes, with non-printable bytes and
    /// the backslash as \xNN, as Zeek escapes them.
    static func putEscaped(_ text: String, into cursor: inout ByteCursor) {
        // The bytes in place when the string has them contiguous (native strings do).
        if let done = text.utf8.withContiguousStorageIfAvailable({ putEscaped(UnsafeRawBufferPointer($0), into: &cursor) }) {
            return done
        }
        var copy = text
        copy.withUTF8 { putEscaped(UnsafeRawBufferPointer($0), into: &cursor) }
    }

    /// A string field's bytes: "(empty)" when there are none, else escaped byte by byte.
    static func putEscaped(_ bytes: UnsafeRawBufferPointer, into cursor: inout ByteCursor) {
        if bytes.isEmpty { cursor.put("(empty)"); return }
        for byte in bytes { putEscaped(byte, into: &cursor) }
    }

    @inline(__always) static func putEscaped(_ byte: UInt8, into cursor: inout ByteCursor) {
        if byte < 0x20 || byte == 0x7f || byte == UInt8(ascii: "\\") {
            cursor.put(UInt8(ascii: "\\"))
            cursor.put(UInt8(ascii: "x"))
            cursor.putHexDigit(byte >> 4)
            cursor.putHexDigit(byte & 0xf)
        } else {
            cursor.put(byte)
        }
    }

    public func flush() throws(Errno) { try file.flush() }

    /// The file's size with what is buffered.
    public var size: UInt64 { file.size }

    /// While set, rows stay buffered until `flush` (see LogFile.holdsWrites).
    public var holdsWrites: Bool {
        get { file.holdsWrites }
        set { file.holdsWrites = newValue }
    }

    public func close() throws(Errno) { try close(at: Self.wallClock()) }

    public func close(at time: UInt64) throws(Errno) {
        try file.append("#close\t\(Self.stamp(time))\n")
        try file.finish()
    }
}

extension ZeekASCIIWriter {
    /// Writes rows formatted by `body` straight into the file's buffer, in room for
    /// `maximumBytes`: for a writer whose values are not `LogValue`s (a logger formatting a
    /// batch from its wire bytes). `body` must write no more than it asked room for.
    public func writeRows(maximumBytes: Int, _ body: (inout RowBuilder) -> Void) throws(Errno) {
        var builder = RowBuilder(cursor: try file.reserve(maximumBytes))
        body(&builder)
        try file.commit(builder.cursor)
    }

    /// Formats values as Zeek's ASCII writer does, into memory reserved by `writeRows`.
    public struct RowBuilder {
        var cursor: ByteCursor

        @inline(__always) public mutating func byte(_ value: UInt8) { cursor.put(value) }
        public mutating func unset() { cursor.put(UInt8(ascii: "-")) }
        public mutating func seconds(_ nanoseconds: UInt64) { cursor.putSeconds(nanoseconds) }
        public mutating func decimal(_ value: UInt64) { cursor.putDecimal(value) }
        public mutating func signed(_ value: Int64) { cursor.putSigned(value) }
        public mutating func double(_ value: Double) { cursor.putDouble(value) }
        public mutating func bool(_ value: Bool) { cursor.put(value ? UInt8(ascii: "T") : UInt8(ascii: "F")) }
        public mutating func address(_ value: IPAddress) { cursor.putAddress(value) }
        /// A string's bytes: "(empty)" when there are none, non-printable bytes and the
        /// backslash as \xNN. At most 4 bytes per byte, 7 at least.
        public mutating func string(_ bytes: UnsafeRawBufferPointer) { ZeekASCIIWriter.putEscaped(bytes, into: &cursor) }
    }
}
