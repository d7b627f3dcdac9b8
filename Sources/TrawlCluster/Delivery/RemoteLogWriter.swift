import Synchronization
import TrawlAnalysis
import TrawlCore

/// A node's identity in its batches: its name, the session it started with and the
/// sequence numbers of its batches, shared by all its streams.
public final class BatchNumbering: Sendable {
    public let node: String
    public let session: UInt64
    /// Wall-clock nanoseconds at the start: orders spooled batches across restarts.
    public let started: UInt64
    private let last = Atomic<UInt64>(0)

    public init(node: String, session: UInt64 = SplitMix64.freshSeed(), started: UInt64 = Clock.wallNanoseconds()) {
        self.node = node
        self.session = session
        self.started = started
    }

    func next() -> UInt64 { last.add(1, ordering: .relaxed).newValue }
}

/// A log stream's writer on a node that does not write files: records are encoded into
/// batches of `batchRecords` (or fewer at `flush`) and handed to the outbox, which never
/// blocks the caller.
public final class RemoteLogWriter: LogWriter {
    private let fields: [(name: String, type: LogFieldType)]
    private let path: String
    private let numbering: BatchNumbering
    private let outbox: Outbox
    private let batchRecords: Int
    private var encoder: LogBatchEncoder?
    private var sequence: UInt64 = 0

    init(schema: LogSchema, numbering: BatchNumbering, outbox: Outbox, batchRecords: Int) {
        path = schema.path
        fields = schema.fields.map { ($0.name, LogFieldType(zeekName: $0.type) ?? .string) }
        self.numbering = numbering
        self.outbox = outbox
        self.batchRecords = batchRecords
    }

    public func write(_ record: [LogValue]) throws(Errno) {
        if encoder == nil {
            sequence = numbering.next()
            encoder = LogBatchEncoder(LogBatchHeader(node: numbering.node, session: numbering.session, sequence: sequence,
                                                     path: path, fields: fields))
        }
        encoder!.append(record)
        if encoder!.records >= batchRecords { seal() }
    }

    public func flush() throws(Errno) { seal() }

    public func close() throws(Errno) { seal() }

    private func seal() {
        guard let encoder, encoder.records > 0 else { return }
        self.encoder = nil
        outbox.add(encoder.bytes, session: numbering.session, sequence: sequence, records: encoder.records)
    }
}
