/// A process's log streams, as Zeek's logging framework keeps them: each stream registered
/// once with its schema (conn, cluster, stats, ...), its writer opened through one
/// destination — files in a directory, or the cluster's loggers — and flushed, closed and
/// checked for errors together. The first write error is kept and handed to `onFailure` at
/// once, so that a run stops and says so instead of losing every row after it.
public final class LogManager {
    /// Makes the writer of a stream.
    public enum Destination {
        /// `DIR/PATH.log`, Zeek's TSV or JSON lines.
        case files(directory: String, json: Bool)
        /// Anything else: a cluster's loggers, a test's collector.
        case writers((LogSchema) throws -> LogWriter)
    }

    public struct Stream {
        public let schema: LogSchema
        public let writer: LogWriter
        public fileprivate(set) var rows: UInt64 = 0
    }

    private let destination: Destination
    public private(set) var streams: [String: Stream] = [:]
    /// The stream names in the order they were registered.
    public private(set) var order: [String] = []
    public private(set) var failure: (path: String, error: Error)?
    private let onFailure: (String, Error) -> Void

    public init(_ destination: Destination, onFailure: @escaping (String, Error) -> Void = { _, _ in }) {
        self.destination = destination
        self.onFailure = onFailure
    }

    /// Registers `schema`'s stream and opens its writer; registering it again returns the
    /// same writer (a stream has one schema).
    @discardableResult
    public func register(_ schema: LogSchema) throws -> LogWriter {
        if let stream = streams[schema.path] { return stream.writer }
        let writer: LogWriter
        switch destination {
        case let .files(directory, json):
            writer = json ? try JSONLinesWriter(schema: schema, directory: directory)
                          : try ZeekASCIIWriter(schema: schema, directory: directory)
        case let .writers(make):
            writer = try make(schema)
        }
        streams[schema.path] = Stream(schema: schema, writer: writer)
        order.append(schema.path)
        return writer
    }

    /// Writes a record to a registered stream; a failure is kept and said once.
    public func write(_ path: String, _ record: [LogValue]) {
        guard failure == nil, var stream = streams[path] else { return }
        do {
            try stream.writer.write(record)
            stream.rows += 1
            streams[path] = stream
        } catch {
            fail(path, error)
        }
    }

    public func flushAll() {
        for path in order where failure == nil {
            do { try streams[path]!.writer.flush() } catch { fail(path, error) }
        }
    }

    /// Closes every stream (their logs are complete after this); the first failure is thrown.
    public func closeAll() throws {
        for path in order {
            do { try streams[path]!.writer.close() } catch { if failure == nil { fail(path, error) } }
        }
        if let failure { throw failure.error }
    }

    public func rows(_ path: String) -> UInt64 { streams[path]?.rows ?? 0 }

    private func fail(_ path: String, _ error: Error) {
        failure = (path, error)
        onFailure(path, error)
    }
}
