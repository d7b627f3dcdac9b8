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
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case `enum`(String)
    case set([String])
    case unset
}

/// The fields of one log stream (its "path", e.g. conn) and their Zeek types.
public struct LogSchema: Sendable {
    public let path: String
    public let fields: [(name: String, type: String)]

    public init(path: String, fields: [(name: String, type: String)]) {
        self.path = path
        self.fields = fields
    }
}

/// Where log records go: a file today, a remote logger in the cluster tomorrow. Records are
/// self-contained values, so a writer may serialise them anywhere.
public protocol LogWriter: AnyObject {
    func write(_ record: [LogValue]) throws(Errno)
    /// Hands what is buffered to the kernel: after this the rows survive the process.
    func flush() throws(Errno)
    /// Writes any trailer and closes; the log is complete after this.
    func close() throws(Errno)
}

/// A writer of one file: how big it is, and whether it holds rows back until `flush`.
public protocol FileLogWriter: LogWriter {
    var size: UInt64 { get }
    var holdsWrites: Bool { get set }
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
        var values: [LogValue] = []
        appendLogValues(to: &values)
        return values
    }

    /// Appends the values to `values`, which a caller may keep and reuse for every row.
    public func appendLogValues(to values: inout [LogValue]) {
        let protoName: String
        switch proto {
        case 6: protoName = "tcp"
        case 17: protoName = "udp"
        case 1, 58: protoName = "icmp"
        default: protoName = "unknown_transport"
        }
        let lasted = duration > 0
        values.reserveCapacity(values.count + 22) // conn.log's fields
        values.append(.time(start))
        values.append(.string(uid))
        values.append(.address(origAddress))
        values.append(.port(origPort))
        values.append(.address(respAddress))
        values.append(.port(respPort))
        values.append(.enum(protoName))
        values.append(.unset) // service: no protocol analyzers yet
        values.append(lasted ? .interval(duration) : .unset)
        values.append(lasted ? .count(origBytes) : .unset)
        values.append(lasted ? .count(respBytes) : .unset)
        values.append(.string(state))
        values.append(.bool(localOrig))
        values.append(.bool(localResp))
        values.append(.count(missedBytes))
        values.append(history.isEmpty ? .unset : .string(history))
        values.append(.count(origPackets))
        values.append(.count(origIPBytes))
        values.append(.count(respPackets))
        values.append(.count(respIPBytes))
        values.append(tunnelParents.isEmpty ? .unset : .set(tunnelParents))
        values.append(.count(UInt64(proto)))
    }
}

/// Formats seconds with six decimals, rounded, as Zeek's "%.6f" (as the writers do).
public func formatSeconds(_ nanoseconds: UInt64) -> String {
    ByteCursor.string(capacity: 27) { $0.putSeconds(nanoseconds) }
}

/// Sends finished connections to conn.log's writer, and weirds to weird.log (and those
/// whose action is a notice to notice.log), which are opened at their first row as Zeek
/// opens them; remembers the first write error.
public final class ConnLogSink: ConnectionSink {
    public let writer: LogWriter
    // Touched only on the log thread: no dynamic exclusivity checks per row.
    @exclusivity(unchecked) public private(set) var rows: UInt64 = 0
    @exclusivity(unchecked) public private(set) var weirdRows: UInt64 = 0
    @exclusivity(unchecked) public private(set) var failure: Errno?
    /// Where the failure happened: "conn", "weird" or "notice".
    @exclusivity(unchecked) public private(set) var failedPath: String?

    /// One row's values, kept between rows so that a row allocates nothing here.
    @exclusivity(unchecked) private var values: [LogValue] = []

    /// Opens another stream's writer (weird, notice), on the log thread; nil: weirds are
    /// not logged.
    private let openStream: ((LogSchema) throws -> LogWriter)?
    @exclusivity(unchecked) private var weirdWriter: LogWriter?
    @exclusivity(unchecked) private var noticeWriter: LogWriter?

    /// Called once, on the log thread, at the first write error: so that the run can stop
    /// and say so at once rather than lose every row after it.
    private let onFailure: @Sendable (Errno) -> Void

    public init(writer: LogWriter, openStream: ((LogSchema) throws -> LogWriter)? = nil,
                onFailure: @escaping @Sendable (Errno) -> Void = { _ in }) {
        self.writer = writer
        self.openStream = openStream
        self.onFailure = onFailure
    }

    public func connectionEnded(_ record: ConnectionRecord) {
        guard failure == nil else { return }
        values.removeAll(keepingCapacity: true)
        record.appendLogValues(to: &values)
        do { try writer.write(values); rows += 1 } catch { fail(error, "conn") }
    }

    public func weird(_ record: WeirdRecord) {
        guard failure == nil, let openStream else { return }
        do {
            if weirdWriter == nil { weirdWriter = try openStream(.weird) }
            try weirdWriter!.write(record.logValues)
            weirdRows += 1
            if record.notice {
                if noticeWriter == nil { noticeWriter = try openStream(.notice) }
                try noticeWriter!.write(record.noticeValues)
            }
        } catch {
            fail(error as? Errno ?? Errno(rawValue: EIO), weirdWriter == nil ? "weird" : "notice")
        }
    }

    public func flush() {
        guard failure == nil else { return }
        do {
            try writer.flush()
            try weirdWriter?.flush()
            try noticeWriter?.flush()
        } catch { fail(error, "conn") }
    }

    /// Closes every log this sink opened (complete after this).
    public func close() throws(Errno) {
        try writer.close()
        try weirdWriter?.close()
        try noticeWriter?.close()
    }

    private func fail(_ error: Errno, _ path: String) {
        failure = error
        failedPath = path
        onFailure(error)
    }
}
