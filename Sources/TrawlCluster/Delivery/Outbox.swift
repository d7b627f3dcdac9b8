#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// What happened to a node's log batches, for its statistics and the end-of-run summary.
public struct DeliveryCounters: Equatable, Sendable {
    public var made: UInt64 = 0
    public var records: UInt64 = 0
    public var sent: UInt64 = 0
    public var acknowledged: UInt64 = 0
    /// Acknowledged as written before (a resend after a lost acknowledgement).
    public var duplicates: UInt64 = 0
    public var spooled: UInt64 = 0
    public var resent: UInt64 = 0
    /// Batches given up: only when the spool's disk limit is hit, or a logger refuses one.
    public var dropped: UInt64 = 0
    public var droppedRecords: UInt64 = 0
}

/// The batches a node has made and no logger has acknowledged yet, in order. The log
/// thread adds, the shipper thread sends and retires; neither waits on the network. Up to
/// `memoryLimit` bytes are held in memory, the rest in the spool on disk.
final class Outbox: @unchecked Sendable {
    struct Entry {
        let session: UInt64
        let sequence: UInt64
        let records: UInt32
        let size: Int
        var bytes: [UInt8]?
        var spoolPath: String?
        /// The logger it was last sent to, and when (monotonic ns); nil when unsent.
        var sentTo: Int?
        var sentAt: UInt64 = 0
    }

    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let emptied = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var entries: [Entry] = []
    private var memoryBytes = 0
    private let memoryLimit: Int
    private let spoolLimit: Int
    let spool: Spool
    let wakeup: Wakeup
    private var counters = DeliveryCounters()
    /// Said on stderr when batches are dropped (the spool's disk limit).
    private let warn: @Sendable (String) -> Void
    let sessionStart: UInt64

    init(spool: Spool, memoryLimit: Int, spoolLimit: Int, sessionStart: UInt64, warn: @escaping @Sendable (String) -> Void) throws(Errno) {
        self.spool = spool
        self.memoryLimit = memoryLimit
        self.spoolLimit = spoolLimit
        self.sessionStart = sessionStart
        self.warn = warn
        wakeup = try Wakeup()
        pthread_mutex_init(lock, nil)
        pthread_cond_init(emptied, nil)
        // Batches left by an earlier run of this node go first, in their order.
        for path in spool.existing() {
            guard let bytes = try? spool.load(path), let batch = try? LogBatchDecoder(bytes) else {
                warn("cluster: spooled batch \(path) is unreadable; moved aside to \(path).bad")
                rename(path, path + ".bad")
                continue
            }
            entries.append(Entry(session: batch.header.session, sequence: batch.header.sequence,
                                 records: UInt32(batch.recordCount), size: bytes.count, bytes: nil, spoolPath: path))
            counters.made += 1
            counters.records += UInt64(batch.recordCount)
        }
    }

    deinit {
        pthread_mutex_destroy(lock)
        pthread_cond_destroy(emptied)
        lock.deallocate()
        emptied.deallocate()
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body()
    }

    var snapshot: DeliveryCounters { locked { counters } }
    var pending: Int { locked { entries.count } }
    var bytesInMemory: Int { locked { memoryBytes } }

    /// Takes a sealed batch. Beyond the memory bound it goes to disk; beyond the spool's
    /// bound it is dropped, counted and said.
    func add(_ bytes: [UInt8], session: UInt64, sequence: UInt64, records: UInt32) {
        var entry = Entry(session: session, sequence: sequence, records: records, size: bytes.count)
        pthread_mutex_lock(lock)
        counters.made += 1
        counters.records += UInt64(records)
        if memoryBytes + bytes.count <= memoryLimit {
            entry.bytes = bytes
            memoryBytes += bytes.count
        } else if spool.bytes + bytes.count <= spoolLimit {
            pthread_mutex_unlock(lock) // the disk write without holding up the shipper
            let path = try? spool.store(bytes, order: (sessionStart, sequence))
            pthread_mutex_lock(lock)
            if let path {
                entry.spoolPath = path
                counters.spooled += 1
            } else {
                drop(entry, reason: "cannot write to the spool \(spool.directory)")
                pthread_mutex_unlock(lock)
                return
            }
        } else {
            drop(entry, reason: "the spool \(spool.directory) is full (\(spoolLimit) bytes)")
            pthread_mutex_unlock(lock)
            return
        }
        entries.append(entry)
        pthread_mutex_unlock(lock)
        wakeup.signal()
    }

    private func drop(_ entry: Entry, reason: String) {
        counters.dropped += 1
        counters.droppedRecords += UInt64(entry.records)
        warn("cluster: dropped a batch of \(entry.records) records: \(reason); \(counters.droppedRecords) records dropped so far")
    }

    /// The next batches to send: unsent ones, oldest first, while fewer than `window` are
    /// in flight to `logger`. Marks them sent.
    func takeForSending(to logger: Int, window: Int, now: UInt64) -> [(session: UInt64, sequence: UInt64, bytes: [UInt8])] {
        var taken: [(session: UInt64, sequence: UInt64, bytes: [UInt8])] = []
        var spooled: [(slot: Int, path: String)] = []
        locked {
            var inFlight = 0
            for index in entries.indices {
                if entries[index].sentTo != nil { inFlight += 1; continue }
                guard inFlight < window else { break }
                inFlight += 1
                entries[index].sentTo = logger
                entries[index].sentAt = now
                counters.sent += 1
                if let path = entries[index].spoolPath, entries[index].bytes == nil { spooled.append((taken.count, path)) }
                taken.append((entries[index].session, entries[index].sequence, entries[index].bytes ?? []))
            }
        }
        // Spooled batches are read back outside the lock; one that cannot be read is sent
        // again on the next requeue.
        for (slot, path) in spooled {
            if let bytes = try? spool.load(path) { taken[slot].bytes = bytes }
        }
        return taken.filter { !$0.bytes.isEmpty }
    }

    /// A logger has the batch: it leaves the outbox (and the spool).
    func acknowledge(session: UInt64, sequence: UInt64, duplicate: Bool, refused: Bool) {
        var removed: (path: String, size: Int)?
        locked {
            guard let index = entries.firstIndex(where: { $0.session == session && $0.sequence == sequence }) else { return }
            let entry = entries[index]
            if refused { drop(entry, reason: "a logger refused it") } else { counters.acknowledged += 1 }
            if duplicate { counters.duplicates += 1 }
            if entry.bytes != nil { memoryBytes -= entry.size }
            if let path = entry.spoolPath { removed = (path, entry.size) }
            entries.remove(at: index)
            if entries.isEmpty { pthread_cond_broadcast(emptied) }
        }
        if let removed { spool.remove(removed.path, size: removed.size) }
    }

    /// Batches sent to `logger` longer ago than `timeout` (or all sent to it, with timeout
    /// 0) go back to unsent: the logger restarted, or went away.
    func requeue(from logger: Int, olderThan timeout: UInt64, now: UInt64) -> Int {
        locked {
            var count = 0
            for index in entries.indices where entries[index].sentTo == logger && now &- entries[index].sentAt >= timeout {
                entries[index].sentTo = nil
                counters.resent += 1
                count += 1
            }
            return count
        }
    }

    /// Batches taken for sending that could not be handed to the socket: unsent again,
    /// without counting as resent.
    func unsend(_ batches: [(UInt64, UInt64)]) -> Int {
        locked {
            var count = 0
            for index in entries.indices where batches.contains(where: { $0.0 == entries[index].session && $0.1 == entries[index].sequence }) {
                entries[index].sentTo = nil
                counters.sent -= 1
                count += 1
            }
            return count
        }
    }

    /// Waits until every batch is acknowledged or `deadline` (monotonic ns) passes; true
    /// when emptied.
    func waitUntilEmpty(deadline: UInt64) -> Bool {
        locked {
            while !entries.isEmpty {
                let now = Clock.monotonicNanoseconds()
                guard now < deadline else { return false }
                var wake = timespec()
                clock_gettime(CLOCK_REALTIME, &wake)
                let until = UInt64(wake.tv_sec) * 1_000_000_000 + UInt64(wake.tv_nsec) + min(deadline - now, 100_000_000)
                wake.tv_sec = Int(until / 1_000_000_000)
                wake.tv_nsec = Int(until % 1_000_000_000)
                pthread_cond_timedwait(emptied, lock, &wake)
            }
            return true
        }
    }

    /// Writes every batch still held only in memory to the spool, so that a node that stops
    /// before its loggers answered loses nothing: the next run sends them. Within the
    /// spool's bound; beyond it a batch is dropped, counted and said. Returns how many went.
    func spoolRemaining() -> Int {
        var toStore: [(index: Int, bytes: [UInt8], sequence: UInt64, records: UInt32)] = []
        locked {
            for index in entries.indices where entries[index].spoolPath == nil {
                if let bytes = entries[index].bytes { toStore.append((index, bytes, entries[index].sequence, entries[index].records)) }
            }
        }
        var stored = 0
        for item in toStore {
            if spool.bytes + item.bytes.count > spoolLimit {
                locked { drop(Entry(session: 0, sequence: item.sequence, records: item.records, size: item.bytes.count),
                              reason: "the spool \(spool.directory) is full (\(spoolLimit) bytes)") }
                continue
            }
            guard (try? spool.store(item.bytes, order: (sessionStart, item.sequence))) != nil else {
                locked { drop(Entry(session: 0, sequence: item.sequence, records: item.records, size: item.bytes.count),
                              reason: "cannot write to the spool \(spool.directory): \(Errno.current)") }
                continue
            }
            stored += 1
        }
        locked { counters.spooled += UInt64(stored) }
        return stored
    }
}
