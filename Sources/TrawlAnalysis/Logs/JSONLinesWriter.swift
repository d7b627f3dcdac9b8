import TrawlCore

/// One JSON object per line, as Zeek writes with LogAscii::use_json=T: unset fields left out.
public final class JSONLinesWriter: FileLogWriter {
    private let schema: LogSchema
    private let file: LogFile
    /// Each field's `"name":`, ready to copy.
    private let keys: [[UInt8]]

    public convenience init(schema: LogSchema, directory: String) throws(Errno) {
        try self.init(schema: schema, file: LogFile(path: directory + "/" + schema.path + ".log"))
    }

    /// Writes at the end of `path` as it goes (a logger's file).
    public convenience init(schema: LogSchema, appendingTo path: String) throws(Errno) {
        try self.init(schema: schema, file: LogFile(appendingTo: path))
    }

    init(schema: LogSchema, file: LogFile) throws(Errno) {
        self.schema = schema
        self.file = file
        keys = schema.fields.map { Array((Self.quote($0.name) + ":").utf8) }
    }

    public func write(_ record: [LogValue]) throws(Errno) {
        var bound = 3
        for (key, value) in zip(keys, record) { bound += key.count + 1 + Self.longest(value) }
        var cursor = try file.reserve(bound)
        cursor.put(UInt8(ascii: "{"))
        var first = true
        for (key, value) in zip(keys, record) {
            if case .unset = value { continue }
            if !first { cursor.put(UInt8(ascii: ",")) }
            first = false
            key.withUnsafeBytes { cursor.put($0) }
            switch value {
            case .unset: break
            case let .time(ns), let .interval(ns): cursor.putSeconds(ns)
            case let .string(text), let .enum(text): Self.putQuoted(text, into: &cursor)
            case let .address(address):
                cursor.put(UInt8(ascii: "\""))
                cursor.putAddress(address)
                cursor.put(UInt8(ascii: "\""))
            case let .port(port): cursor.putDecimal(UInt64(port))
            case let .count(count): cursor.putDecimal(count)
            case let .int(value): cursor.putSigned(value)
            case let .double(value): cursor.putDouble(value)
            case let .bool(flag): cursor.put(flag ? "true" : "false")
            case let .set(items):
                cursor.put(UInt8(ascii: "["))
                for (position, item) in items.enumerated() {
                    if position > 0 { cursor.put(UInt8(ascii: ",")) }
                    Self.putQuoted(item, into: &cursor)
                }
                cursor.put(UInt8(ascii: "]"))
            }
        }
        cursor.put(UInt8(ascii: "}"))
        cursor.put(0x0a)
        try file.commit(cursor)
    }

    /// The most bytes `value` can take: a control character becomes six (\u00XX).
    static func longest(_ value: LogValue) -> Int {
        switch value {
        case .time, .interval: return 27
        case .count, .int: return 20
        case .double: return 40
        case .port: return 5
        case .bool, .unset: return 5
        case .address: return 47
        case let .string(text), let .enum(text): return 2 + 6 * text.utf8.count
        case let .set(items): return items.reduce(2) { $0 + 3 + 6 * $1.utf8.count }
        }
    }

    static func putQuoted(_ text: String, into cursor: inout ByteCursor) {
        cursor.put(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                cursor.put(UInt8(ascii: "\\"))
                cursor.put(byte)
            case 0x0a: cursor.put("\\n")
            case 0x09: cursor.put("\\t")
            case ..<0x20:
                cursor.put("\\u00")
                cursor.putHexDigit(byte >> 4)
                cursor.putHexDigit(byte & 0xf)
            default: cursor.put(byte) // UTF-8 passes through whole
            }
        }
        cursor.put(UInt8(ascii: "\""))
    }

    /// `text` as a JSON string literal, escaped as the rows escape it.
    public static func quote(_ text: String) -> String {
        ByteCursor.string(capacity: 2 + 6 * text.utf8.count) { putQuoted(text, into: &$0) }
    }

    public func flush() throws(Errno) { try file.flush() }

    /// The file's size with what is buffered.
    public var size: UInt64 { file.size }

    /// While set, rows stay buffered until `flush` (see LogFile.holdsWrites).
    public var holdsWrites: Bool {
        get { file.holdsWrites }
        set { file.holdsWrites = newValue }
    }

    public func close() throws(Errno) { try file.finish() }
}
