#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// One value of a log record, typed as Zeek types log fields.
public enum LogValue: Sendable {
    case time(UInt64)      // nanoseconds since the epoch
    case interval(UInt64)  // nanoseconds
    case string(String)
    case address(IPAddress)
    case port(UInt16)
    case count(UInt64)
    case bool(Bool)
    case `enum`(String)
    case set([String])
    case unset
}

/// The fields of one log stream (its "path", e.g. conn) and their Zeek types.
public struct LogSchema: Sendable {
    public let path: String
    public let fields: [(name: String, type: String)]
}

/// Where log records go: a file today, a remote logger in the cluster tomorrow. Records are
/// self-contained values, so a writer may serialise them anywhere.
public protocol LogWriter: AnyObject {
    func write(_ record: [LogValue]) throws(Errno)
    /// Writes any trailer and closes; the log is complete after this.
    func close() throws(Errno)
}

extension LogSchema {
    public static let conn = LogSchema(path: "conn", fields: [
        ("ts", "time"), ("uid", "string"), ("id.orig_h", "addr"), ("id.orig_p", "port"), ("id.resp_h", "addr"),
        ("id.resp_p", "port"), ("proto", "enum"), ("service", "string"), ("duration", "interval"),
        ("orig_bytes", "count"), ("resp_bytes", "count"), ("conn_state", "string"), ("local_orig", "bool"),
        ("local_resp", "bool"), ("missed_bytes", "count"), ("history", "string"), ("orig_pkts", "count"),
        ("orig_ip_bytes", "count"), ("resp_pkts", "count"), ("resp_ip_bytes", "count"), ("tunnel_parents", "set[string]"),
        ("ip_proto", "count"),
    ])
}

extension ConnectionRecord {
    /// The record in LogSchema.conn's field order. Duration and sizes are left unset for a
    /// connection of one instant, as Zeek leaves them.
    public var logValues: [LogValue] {
        let protoName: String
        switch proto {
        case 6: protoName = "tcp"
        case 17: protoName = "udp"
        case 1, 58: protoName = "icmp"
        default: protoName = "unknown_transport"
        }
        let lasted = duration > 0
        return [
            .time(start), .string(uid), .address(origAddress), .port(origPort), .address(respAddress), .port(respPort),
            .enum(protoName), .unset, lasted ? .interval(duration) : .unset,
            lasted ? .count(origBytes) : .unset, lasted ? .count(respBytes) : .unset,
            .string(state), .bool(localOrig), .bool(localResp), .count(missedBytes),
            history.isEmpty ? .unset : .string(history),
            .count(origPackets), .count(origIPBytes), .count(respPackets), .count(respIPBytes),
            tunnelParents.isEmpty ? .unset : .set(tunnelParents), .count(UInt64(proto)),
        ]
    }
}

/// Formats seconds with six decimals, rounded, as Zeek's "%.6f".
func formatSeconds(_ nanoseconds: UInt64) -> String {
    let micro = (nanoseconds + 500) / 1000
    let fraction = String(micro % 1_000_000)
    return "\(micro / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
}

/// A buffered file that appears under its name only when complete.
final class LogFile {
    let path: String
    private let temporary: String
    private let file: FileDescriptor
    /// Bytes not yet written; writers format straight into it (one thread at a time, so
    /// without dynamic exclusivity checks on every field).
    @exclusivity(unchecked) var buffer: [UInt8] = []
    private var closed = false

    init(path: String) throws(Errno) {
        self.path = path
        temporary = path + ".partial-\(getpid())"
        file = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        buffer.reserveCapacity(1 << 16)
    }

    deinit {
        guard !closed else { return }
        try? file.close()
        unlink(temporary)
    }

    func append(_ text: String) throws(Errno) {
        buffer.append(contentsOf: text.utf8)
        try flushIfFull()
    }

    func flushIfFull() throws(Errno) {
        if buffer.count >= 1 << 16 { try flush() }
    }

    func flush() throws(Errno) {
        let failure = buffer.withUnsafeBytes { raw -> Errno? in
            do throws(Errno) { try file.writeAll(raw); return nil } catch { return error }
        }
        buffer.removeAll(keepingCapacity: true)
        if let failure { throw failure }
    }

    func finish() throws(Errno) {
        try flush()
        closed = true
        try file.close()
        guard rename(temporary, path) == 0 else { throw Errno.current }
    }
}

/// Zeek's ASCII log format: a header of #-lines, tab-separated rows, and a #close line.
public final class ZeekASCIIWriter: LogWriter {
    private let schema: LogSchema
    private let file: LogFile

    public init(schema: LogSchema, directory: String, openedAt: UInt64 = ZeekASCIIWriter.wallClock()) throws(Errno) {
        self.schema = schema
        file = try LogFile(path: directory + "/" + schema.path + ".log")
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
    static func stamp(_ nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func pad(_ v: Int32) -> String { v < 10 ? "0\(v)" : String(v) }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))-\(pad(parts.tm_hour))-\(pad(parts.tm_min))-\(pad(parts.tm_sec))"
    }

    public func write(_ record: [LogValue]) throws(Errno) {
        for (index, value) in record.enumerated() {
            if index > 0 { file.buffer.append(0x09) }
            Self.append(value, to: &file.buffer)
        }
        file.buffer.append(0x0a)
        try file.flushIfFull()
    }

    /// Formats a value straight into the output bytes: no intermediate strings for the
    /// numbers and addresses that make up most of a row.
    static func append(_ value: LogValue, to out: inout [UInt8]) {
        switch value {
        case let .time(ns), let .interval(ns): appendSeconds(ns, to: &out)
        case let .count(count): appendDecimal(count, to: &out)
        case let .port(port): appendDecimal(UInt64(port), to: &out)
        case let .bool(flag): out.append(flag ? UInt8(ascii: "T") : UInt8(ascii: "F"))
        case .unset: out.append(UInt8(ascii: "-"))
        case let .address(address) where address.isV4:
            let v = address.v4Value
            appendDecimal(UInt64(v >> 24), to: &out)
            out.append(UInt8(ascii: "."))
            appendDecimal(UInt64(v >> 16 & 0xff), to: &out)
            out.append(UInt8(ascii: "."))
            appendDecimal(UInt64(v >> 8 & 0xff), to: &out)
            out.append(UInt8(ascii: "."))
            appendDecimal(UInt64(v & 0xff), to: &out)
        case let .string(text), let .enum(text):
            appendEscaped(text, to: &out)
        case let .set(items):
            if items.isEmpty { appendEscaped("", to: &out) }
            for (position, item) in items.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                appendEscaped(item, to: &out)
            }
        default:
            out.append(contentsOf: format(value).utf8)
        }
    }

    /// A string field: "(empty)" when empty, else its bytes, escaped only where needed.
    static func appendEscaped(_ text: String, to out: inout [UInt8]) {
        if text.isEmpty { out.append(contentsOf: "(empty)".utf8); return }
        let plain = text.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "\\") }
        if plain { out.append(contentsOf: text.utf8) } else { out.append(contentsOf: escape(text).utf8) }
    }

    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 { out.append(0x30 + UInt8(value)); return }
        var digits = 1
        var power: UInt64 = 10
        while digits < 20 && value >= power { digits += 1; power = power &* 10 }
        let end = out.count + digits
        out.append(contentsOf: repeatElement(0, count: digits))
        out.withUnsafeMutableBufferPointer { bytes in
            var rest = value
            var at = end
            while at > end - digits {
                at -= 1
                bytes[at] = 0x30 + UInt8(rest % 10)
                rest /= 10
            }
        }
    }

    /// Seconds with six decimals, rounded, as "%.6f" prints them.
    static func appendSeconds(_ nanoseconds: UInt64, to out: inout [UInt8]) {
        let micro = (nanoseconds + 500) / 1000
        appendDecimal(micro / 1_000_000, to: &out)
        out.append(UInt8(ascii: "."))
        let fraction = micro % 1_000_000
        var divisor: UInt64 = 100_000
        while divisor > 0 {
            out.append(0x30 + UInt8(fraction / divisor % 10))
            divisor /= 10
        }
    }

    static func format(_ value: LogValue) -> String {
        switch value {
        case let .time(ns), let .interval(ns): return formatSeconds(ns)
        case let .string(text), let .enum(text): return text.isEmpty ? "(empty)" : escape(text)
        case let .address(address): return address.description
        case let .port(port): return String(port)
        case let .count(count): return String(count)
        case let .bool(flag): return flag ? "T" : "F"
        case let .set(items): return items.isEmpty ? "(empty)" : items.map(escape).joined(separator: ",")
        case .unset: return "-"
        }
    }

    /// Non-printable bytes and the separators as \xNN, as Zeek escapes them.
    static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7f || byte == UInt8(ascii: "\\") {
                let hex = String(byte, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    public func close() throws(Errno) {
        try file.append("#close\t\(Self.stamp(Self.wallClock()))\n")
        try file.finish()
    }
}

/// One JSON object per line, as Zeek writes with LogAscii::use_json=T: unset fields left out.
public final class JSONLinesWriter: LogWriter {
    private let schema: LogSchema
    private let file: LogFile

    public init(schema: LogSchema, directory: String) throws(Errno) {
        self.schema = schema
        file = try LogFile(path: directory + "/" + schema.path + ".log")
    }

    public func write(_ record: [LogValue]) throws(Errno) {
        var line = "{"
        var first = true
        for (field, value) in zip(schema.fields, record) {
            let rendered: String
            switch value {
            case .unset: continue
            case let .time(ns), let .interval(ns): rendered = formatSeconds(ns)
            case let .string(text), let .enum(text): rendered = Self.quote(text)
            case let .address(address): rendered = Self.quote(address.description)
            case let .port(port): rendered = String(port)
            case let .count(count): rendered = String(count)
            case let .bool(flag): rendered = flag ? "true" : "false"
            case let .set(items): rendered = "[" + items.map(Self.quote).joined(separator: ",") + "]"
            }
            line += (first ? "" : ",") + Self.quote(field.name) + ":" + rendered
            first = false
        }
        try file.append(line + "}\n")
    }

    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    public func close() throws(Errno) { try file.finish() }
}

/// Sends finished connections to a log writer; remembers the first write error.
public final class ConnLogSink: ConnectionSink {
    public let writer: LogWriter
    public private(set) var rows: UInt64 = 0
    public private(set) var failure: Errno?

    public init(writer: LogWriter) { self.writer = writer }

    public func connectionEnded(_ record: ConnectionRecord) {
        guard failure == nil else { return }
        do { try writer.write(record.logValues); rows += 1 } catch { failure = error }
    }
}
