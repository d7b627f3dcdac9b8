#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CTrawlABI
import TrawlAnalysis
import TrawlCore

/// The process's stop: SIGINT/SIGTERM set it (StopSignals); run loops stop at it.
let processStop = StopToken()

/// Counts of what a run read.
public struct CaptureTally: Equatable {
    public var packets: UInt64 = 0
    public var bytes: UInt64 = 0
    public var capturedBytes: UInt64 = 0
    public var firstTimestamp: UInt64 = .max
    public var lastTimestamp: UInt64 = 0

    @inline(__always)
    mutating func add(timestamp: UInt64, captured: UInt32, wire: UInt32) {
        packets &+= 1
        bytes &+= UInt64(wire)
        capturedBytes &+= UInt64(captured)
        if timestamp < firstTimestamp { firstTimestamp = timestamp }
        if timestamp > lastTimestamp { lastTimestamp = timestamp }
    }
}

/// Where the packets read go: the tally, the analysis, the -w file, the progress line.
final class PacketConsumer {
    let writer: TraceWriter?
    let progress: Progress?
    /// The connection analysis the packets go through, if any.
    let tracker: ConnectionTracker?
    var tally = CaptureTally()
    /// Packets -w left out because their link type differs from the file's.
    private(set) var notWritten: UInt64 = 0

    init(writer: TraceWriter?, progress: Progress?, tracker: ConnectionTracker?) {
        self.writer = writer
        self.progress = progress
        self.tracker = tracker
    }

    @inline(__always)
    func consume(_ batch: PacketBatch, from start: Int, to end: Int, linkType: UInt32) throws {
        let slots = batch.slots
        var tally = self.tally // a local, so that the loop does not go through the object per packet
        for i in start..<end {
            let slot = slots[i]
            tally.add(timestamp: slot.timestamp_ns, captured: slot.captured_length, wire: slot.wire_length)
        }
        self.tally = tally
        if let tracker {
            for i in start..<end {
                let packet = batch[i]
                tracker.process(packet, linkType: packet.linkType == 0 ? linkType : packet.linkType)
            }
        }
        if let writer {
            for i in start..<end {
                let packet = batch[i]
                // A file has one link type: packets of another (mixed pcapng input) are left out.
                if packet.linkType == 0 || packet.linkType == writer.linkType { try writer.write(packet) } else { notWritten += 1 }
            }
        }
        if let progress, progress.due(packets: tally.packets) { progress.report(tally) }
    }

    /// Hands the weirds a source reported to the analysis (Zeek's PktSrc::Weird); without
    /// analysis they are only counted by the source. Called after each read, cheaply when
    /// there are none.
    @inline(__always)
    func takeReports(of source: any PacketSource) {
        guard let reports = source.reports, reports.hasPending else { return }
        let weirds = reports.takeWeirds()
        if let tracker { weirds.forEach(tracker.sourceWeird) }
    }
}

/// Reads every source to its end (or until stopped) on a run loop, feeding the consumer.
final class CaptureRun {
    let sources: [any PacketSource]
    let consumer: PacketConsumer
    let loop: RunLoop

    init(sources: [any PacketSource], consumer: PacketConsumer, loop: RunLoop) {
        self.sources = sources
        self.consumer = consumer
        self.loop = loop
    }

    var tally: CaptureTally { consumer.tally }
    var notWritten: UInt64 { consumer.notWritten }

    func run() throws -> CaptureTally {
        if sources.count == 1 {
            loop.add(SourceReader(sources[0], consumer: consumer, stop: loop.stopToken), endsLoop: true)
        } else if sources.allSatisfy({ !$0.info.isLive }) {
            loop.add(TraceMerger(sources, consumer: consumer, stop: loop.stopToken), endsLoop: true)
        } else {
            // Several live interfaces, opened non-blocking: the loop reads whichever has
            // packets and polls their descriptors when none has.
            for source in sources { loop.add(SourceReader(source, consumer: consumer, stop: loop.stopToken, batchesPerTurn: 1), endsLoop: true) }
        }
        try loop.run()
        consumer.progress?.finish()
        return consumer.tally
    }
}

/// One packet source on the run loop. A turn reads several batches, so that the loop's own
/// work (timers, other descriptors) is spread over many packets.
final class SourceReader: IOSource {
    let source: any PacketSource
    let consumer: PacketConsumer
    let stop: StopToken
    private let batch = PacketBatch(capacity: 256)
    private let batchesPerTurn: Int
    private(set) var isExhausted = false

    init(_ source: any PacketSource, consumer: PacketConsumer, stop: StopToken, batchesPerTurn: Int = 64) {
        self.source = source
        self.consumer = consumer
        self.stop = stop
        self.batchesPerTurn = batchesPerTurn
    }

    var descriptor: Int32? { source.info.selectableFD }

    func process() throws -> Bool {
        var read = false
        let linkType = source.info.linkType
        for _ in 0..<batchesPerTurn where !isExhausted && !stop.isStopped {
            if try !source.nextBatch(batch) { isExhausted = true }
            guard batch.count > 0 else {
                consumer.takeReports(of: source)
                break
            }
            read = true
            try consumer.consume(batch, from: 0, to: batch.count, linkType: linkType)
            // After the batch, so that the weirds have its network time.
            consumer.takeReports(of: source)
        }
        return read
    }
}

/// Several trace files: packets are handed on in timestamp order across files.
final class TraceMerger: IOSource {
    let cursors: [TraceCursor]
    let consumer: PacketConsumer
    let stop: StopToken
    private(set) var isExhausted = false

    init(_ sources: [any PacketSource], consumer: PacketConsumer, stop: StopToken) {
        cursors = sources.map { TraceCursor(source: $0, consumer: consumer) }
        self.consumer = consumer
        self.stop = stop
    }

    var descriptor: Int32? { nil }

    func process() throws -> Bool {
        for _ in 0..<16384 where !stop.isStopped {
            var earliest: TraceCursor?
            for cursor in cursors where try cursor.refill() {
                if earliest == nil || cursor.timestamp < earliest!.timestamp { earliest = cursor }
            }
            guard let earliest else { isExhausted = true; return false }
            try consumer.consume(earliest.batch, from: earliest.index, to: earliest.index + 1, linkType: earliest.source.info.linkType)
            earliest.index += 1
        }
        return true
    }
}

/// One trace's position in a timestamp-ordered merge.
final class TraceCursor {
    let source: any PacketSource
    let batch = PacketBatch(capacity: 64)
    var index = 0
    var exhausted = false
    /// Where the source's reports go.
    let consumer: PacketConsumer

    init(source: any PacketSource, consumer: PacketConsumer) {
        self.source = source
        self.consumer = consumer
    }

    /// Makes sure a packet is ready at `index`; false once the trace is exhausted.
    func refill() throws -> Bool {
        while !exhausted && index >= batch.count {
            index = 0
            if try !source.nextBatch(batch) { exhausted = true; batch.count = 0 }
            consumer.takeReports(of: source)
        }
        return !exhausted
    }

    var timestamp: UInt64 { batch.slots[index].timestamp_ns }
}

/// A one-line progress report on standard error, at most once a second.
final class Progress {
    private var nextCheck: UInt64 = 1 << 16
    private var lastReport = Progress.now()
    private var printed = false

    static func now() -> UInt64 { Clock.monotonicNanoseconds() }

    /// Cheap test for the loop: only every 65536 packets does it look at the clock.
    @inline(__always)
    func due(packets: UInt64) -> Bool {
        guard packets >= nextCheck else { return false }
        nextCheck = packets + (1 << 16)
        let now = Progress.now()
        guard now - lastReport >= 1_000_000_000 else { return false }
        lastReport = now
        return true
    }

    func report(_ tally: CaptureTally) {
        writeStandardError("\rtrawl: \(tally.packets) packets, \(tally.bytes / 1_000_000) MB read")
        printed = true
    }

    func finish() {
        if printed { writeStandardError("\n") }
    }
}
