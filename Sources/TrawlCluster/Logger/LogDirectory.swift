#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCore

/// A logger's files: one per stream (`conn.log`, `stats.log`, ...) in its log directory,
/// written as batches arrive, each batch whole in the file before it is acknowledged.
final class LogDirectory {
    struct Stream {
        var writer: any FileLogWriter
        var fields: [(name: String, type: LogFieldType)]
        /// Wall-clock ns when the file was opened: its name when rotated.
        var openedAt: UInt64
        var rows: UInt64 = 0
    }

    let directory: String
    let json: Bool
    private(set) var streams: [String: Stream] = [:]
    let ledger: Ledger
    /// Batches written, and those recognised as written before.
    private(set) var batchesWritten: UInt64 = 0
    private(set) var rowsWritten: UInt64 = 0
    private(set) var duplicates: UInt64 = 0

    init(directory: String, json: Bool) throws(Errno) {
        self.directory = directory
        self.json = json
        try makeDirectories(directory)
        ledger = try Ledger(directory: directory) { stream in
            var status = stat()
            return stat(directory + "/" + stream + ".log", &status) == 0 ? UInt64(status.st_size) : nil
        }
        // Files that end inside a batch (the logger died while writing it) are cut back to
        // the batch's start: its node sends it again.
        for (stream, size) in ledger.recovered {
            truncate(directory + "/" + stream + ".log", off_t(size))
        }
    }

    func fileName(_ stream: String) -> String { directory + "/" + stream + ".log" }

    enum Outcome: Equatable {
        case written, duplicate
        case refused(String)
    }

    /// Writes a batch unless it was written before.
    func write(_ batch: LogBatchDecoder) throws(Errno) -> Outcome {
        let header = batch.header
        if ledger.contains(node: header.node, session: header.session, sequence: header.sequence) {
            duplicates += 1
            return .duplicate
        }
        guard header.path.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            return .refused("stream name '\(header.path)' is not a file name")
        }
        if streams[header.path] == nil { try open(header.path, schema: batch.schema, fields: header.fields) }
        guard var stream = streams[header.path] else { return .refused("cannot open \(header.path)") }
        guard stream.fields.elementsEqual(header.fields, by: { $0.name == $1.name && $0.type == $1.type }) else {
            return .refused("the fields of \(header.path) differ from those of the file being written")
        }
        let offset = stream.writer.size
        if let ascii = stream.writer as? ZeekASCIIWriter {
            try batch.writeASCII(to: ascii) // from the bytes, without making values
        } else {
            var failure: Errno?
            batch.forEachRecord { values in
                guard failure == nil else { return }
                do throws(Errno) { try stream.writer.write(values) } catch { failure = error }
            }
            if let failure { throw failure }
        }
        try ledger.record(node: header.node, session: header.session, sequence: header.sequence, stream: header.path,
                          offset: offset, length: stream.writer.size - offset)
        try stream.writer.flush()
        stream.rows += UInt64(batch.recordCount)
        streams[header.path] = stream
        batchesWritten += 1
        rowsWritten += UInt64(batch.recordCount)
        return .written
    }

    private func open(_ path: String, schema: LogSchema, fields: [(name: String, type: LogFieldType)]) throws(Errno) {
        let name = fileName(path)
        let writer: any FileLogWriter = json ? try JSONLinesWriter(schema: schema, appendingTo: name)
                                             : try ZeekASCIIWriter(schema: schema, appendingTo: name)
        writer.holdsWrites = true
        streams[path] = Stream(writer: writer, fields: fields, openedAt: Clock.wallNanoseconds())
    }

    /// Closes every file with its #close line, in place (no rotation configured).
    func closeAll() throws(Errno) {
        try ledger.rewrite()
        for (_, stream) in streams.sorted(by: { $0.key < $1.key }) { try stream.writer.close() }
        streams.removeAll()
    }

    /// Closes every file with its #close line and renames it `PATH.YYYY-MM-DD-HH-MM-SS.log`
    /// after its opening time, as Zeek's rotation does; returns the rotated files (stream,
    /// new name, opened, closed). The ledger is rewritten first, so that a crash in between
    /// leaves nothing that would be written twice.
    func rotateAll(at now: UInt64) throws(Errno) -> [RotatedLog] {
        try ledger.rewrite()
        var rotated: [RotatedLog] = []
        for (path, stream) in streams.sorted(by: { $0.key < $1.key }) {
            try stream.writer.close()
            let target = directory + "/" + path + "." + ZeekASCIIWriter.stamp(stream.openedAt) + ".log"
            guard rename(fileName(path), target) == 0 else { throw Errno.current }
            rotated.append(RotatedLog(stream: path, file: target, opened: stream.openedAt, closed: now))
        }
        streams.removeAll()
        return rotated
    }
}

/// A log file rotation set aside, for the post-processor.
public struct RotatedLog: Equatable, Sendable {
    public var stream: String
    public var file: String
    public var opened: UInt64
    public var closed: UInt64
}
