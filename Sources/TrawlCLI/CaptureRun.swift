#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import CTrawlABI
import TrawlAnalysis
import TrawlCore

/// Set by SIGINT/SIGTERM; the read loop stops at the next batch.
let stopRequested = Atomic<Bool>(false)

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

/// Reads every source to its end (or until stopped), feeding the writer and the tally.
final class CaptureRun {
    let sources: [any PacketSource]
    let writer: TraceWriter?
    let progress: Progress?
    /// The connection analysis the packets go through, if any.
    let tracker: ConnectionTracker?
    private(set) var tally = CaptureTally()
    /// Packets -w left out because their link type differs from the file's.
    private(set) var notWritten: UInt64 = 0
    private let batch = PacketBatch(capacity: 256)

    init(sources: [any PacketSource], writer: TraceWriter?, progress: Progress?, tracker: ConnectionTracker? = nil) {
        self.sources = sources
        self.writer = writer
        self.progress = progress
        self.tracker = tracker
    }

    func run() throws -> CaptureTally {
        if sources.count == 1 {
            try readSingle(sources[0])
        } else if sources.allSatisfy({ !$0.info.isLive }) {
            try mergeTraces()
        } else {
            try pollInterfaces()
        }
        progress?.finish()
        return tally
    }

    /// The common case, kept tight: one batch at a time, no per-packet allocation. The
    /// tally is a local so the loop does not go through the object for each packet.
    private func readSingle(_ source: any PacketSource) throws {
        var tally = self.tally
        defer { self.tally = tally }
        while !stopRequested.load(ordering: .relaxed) {
            guard try source.nextBatch(batch) else { break }
            try consume(batch, from: 0, to: batch.count, linkType: source.info.linkType, into: &tally)
        }
    }

    @inline(__always)
    private func consume(_ batch: PacketBatch, from start: Int, to end: Int, linkType: UInt32, into tally: inout CaptureTally) throws {
        let slots = batch.slots
        for i in start..<end {
            let slot = slots[i]
            tally.add(timestamp: slot.timestamp_ns, captured: slot.captured_length, wire: slot.wire_length)
        }
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

    /// Several trace files: packets are handed on in timestamp order across files.
    private func mergeTraces() throws {
        var tally = self.tally
        defer { self.tally = tally }
        let cursors = sources.map { TraceCursor(source: $0) }
        while !stopRequested.load(ordering: .relaxed) {
            var earliest: TraceCursor?
            for cursor in cursors where try cursor.refill() {
                if earliest == nil || cursor.timestamp < earliest!.timestamp { earliest = cursor }
            }
            guard let earliest else { break }
            try consume(earliest.batch, from: earliest.index, to: earliest.index + 1, linkType: earliest.source.info.linkType, into: &tally)
            earliest.index += 1
        }
    }

    /// Several live interfaces, opened non-blocking: read whichever has packets, else poll.
    /// A source that ends (a synthetic one may) drops out; the run ends when all have.
    private func pollInterfaces() throws {
        var tally = self.tally
        defer { self.tally = tally }
        var open = sources
        while !open.isEmpty && !stopRequested.load(ordering: .relaxed) {
            var idle = true
            var ended: [Int] = []
            for (index, source) in open.enumerated() {
                if try !source.nextBatch(batch) { ended.append(index) }
                if batch.count > 0 {
                    idle = false
                    try consume(batch, from: 0, to: batch.count, linkType: source.info.linkType, into: &tally)
                }
            }
            for index in ended.reversed() { open.remove(at: index) }
            guard idle, !open.isEmpty else { continue }
            var descriptors = open.compactMap(\.info.selectableFD).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if descriptors.count == open.count {
                _ = poll(&descriptors, nfds_t(descriptors.count), 100)
            } else {
                usleep(1000) // a source without a pollable descriptor
            }
        }
    }
}

/// One trace's position in a timestamp-ordered merge.
final class TraceCursor {
    let source: any PacketSource
    let batch = PacketBatch(capacity: 64)
    var index = 0
    var exhausted = false

    init(source: any PacketSource) { self.source = source }

    /// Makes sure a packet is ready at `index`; false once the trace is exhausted.
    func refill() throws -> Bool {
        while !exhausted && index >= batch.count {
            index = 0
            if try !source.nextBatch(batch) { exhausted = true; batch.count = 0 }
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
