#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Runs another writer on a thread of its own, as Zeek runs its log writers: the analysis
/// hands over records in batches and goes back to packets while the rows are formatted and
/// written. A bounded queue makes the analysis wait when the writer falls behind, so memory
/// stays bounded. The first error of the writer is thrown by the next `write` and by `close`.
public final class BackgroundLogWriter: LogWriter {
    private let shared: Shared
    private var thread = pthread_t()
    private var batch: [[LogValue]] = []
    private let batchSize: Int
    private var closed = false

    /// `batchSize` records travel together; at most `queuedBatches` wait for the writer.
    public init(_ writer: LogWriter, batchSize: Int = 256, queuedBatches: Int = 64) {
        shared = Shared(writer: writer, limit: queuedBatches)
        self.batchSize = batchSize
        batch.reserveCapacity(batchSize)
        let context = Unmanaged.passRetained(shared).toOpaque()
        pthread_create(&thread, nil, { context in
            Unmanaged<Shared>.fromOpaque(context!).takeRetainedValue().drain()
            return nil
        }, context)
    }

    deinit {
        if !closed { shutDown() }
    }

    public func write(_ record: [LogValue]) throws(Errno) {
        batch.append(record)
        if batch.count >= batchSize { try handOver() }
    }

    public func close() throws(Errno) {
        guard !closed else { return }
        try? handOver()
        shutDown()
        if let failure = shared.failure { throw failure }
        try shared.writer.close()
    }

    private func handOver() throws(Errno) {
        let full = batch
        batch = []
        batch.reserveCapacity(batchSize)
        if let failure = shared.push(full) { throw failure }
    }

    private func shutDown() {
        closed = true
        shared.finishInput()
        pthread_join(thread, nil)
    }

    /// What both threads touch, under one lock.
    private final class Shared: @unchecked Sendable {
        let writer: LogWriter
        private let limit: Int
        private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var queue: [[[LogValue]]] = []
        private var inputDone = false
        private(set) var failure: Errno?

        init(writer: LogWriter, limit: Int) {
            self.writer = writer
            self.limit = limit
            pthread_mutex_init(lock, nil)
            pthread_cond_init(changed, nil)
        }

        deinit {
            pthread_mutex_destroy(lock)
            pthread_cond_destroy(changed)
            lock.deallocate()
            changed.deallocate()
        }

        /// Queues a batch, waiting while the queue is full; returns the writer's error, if any.
        func push(_ batch: [[LogValue]]) -> Errno? {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            while queue.count >= limit && failure == nil { pthread_cond_wait(changed, lock) }
            if failure == nil && !batch.isEmpty {
                queue.append(batch)
                pthread_cond_broadcast(changed)
            }
            return failure
        }

        func finishInput() {
            pthread_mutex_lock(lock)
            inputDone = true
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
        }

        /// The writer thread: writes batches until the input is done and the queue empty.
        func drain() {
            while true {
                pthread_mutex_lock(lock)
                while queue.isEmpty && !inputDone { pthread_cond_wait(changed, lock) }
                let taken = queue
                queue.removeAll(keepingCapacity: true)
                pthread_cond_broadcast(changed)
                pthread_mutex_unlock(lock)
                if taken.isEmpty { return } // input done and nothing left
                for batch in taken {
                    for record in batch {
                        do throws(Errno) { try writer.write(record) } catch { fail(error); return }
                    }
                }
            }
        }

        private func fail(_ error: Errno) {
            pthread_mutex_lock(lock)
            if failure == nil { failure = error }
            queue.removeAll()
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
        }
    }
}
