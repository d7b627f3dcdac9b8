#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Hands items to a thread of its own, in batches, as Zeek hands log records to its writer
/// threads: the packet loop appends and goes on, the thread does the slow part (building
/// rows, formatting, writing). At most `queuedBatches` batches wait; beyond that `append`
/// waits for the thread, so memory stays bounded when the consumer falls behind.
final class BackgroundQueue<Item> {
    private let shared: Shared
    private var thread = pthread_t()
    private var batch: [Item] = []
    private let batchSize: Int
    private var finished = false

    /// `consume` runs on the queue's thread, with the items in the order they were appended.
    init(batchSize: Int = 1024, queuedBatches: Int = 16, consume: @escaping ([Item]) -> Void) {
        shared = Shared(limit: queuedBatches, consume: consume)
        self.batchSize = batchSize
        batch.reserveCapacity(batchSize)
        let shared = self.shared
        thread = startThread { shared.drain() }
    }

    deinit { finish() }

    /// Takes `item` over (consumed: moved into the batch, not copied and released).
    func append(_ item: consuming Item) {
        precondition(!finished, "append after finish")
        batch.append(item)
        if batch.count >= batchSize { handOver() }
    }

    /// Hands over what is left and returns once the thread has consumed everything.
    func finish() {
        guard !finished else { return }
        finished = true
        handOver()
        shared.endInput()
        pthread_join(thread, nil)
    }

    /// How often `append` waited for the thread (the queue full).
    var producerWaits: UInt64 { shared.waits }

    /// Hands the items appended so far to the thread now, without waiting for a full batch.
    func handOver() {
        guard !batch.isEmpty else { return }
        let full = batch
        batch = []
        batch.reserveCapacity(batchSize)
        shared.push(full)
    }

    /// What both threads touch, under one lock.
    private final class Shared: @unchecked Sendable {
        private let limit: Int
        private let consume: ([Item]) -> Void
        private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private var queue: [[Item]] = []
        private var inputEnded = false
        private var waitCount: UInt64 = 0

        var waits: UInt64 {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            return waitCount
        }

        init(limit: Int, consume: @escaping ([Item]) -> Void) {
            self.limit = limit
            self.consume = consume
            pthread_mutex_init(lock, nil)
            pthread_cond_init(changed, nil)
        }

        deinit {
            pthread_mutex_destroy(lock)
            pthread_cond_destroy(changed)
            lock.deallocate()
            changed.deallocate()
        }

        func push(_ batch: [Item]) {
            pthread_mutex_lock(lock)
            if queue.count >= limit { waitCount += 1 }
            while queue.count >= limit { pthread_cond_wait(changed, lock) }
            queue.append(batch)
            pthread_cond_signal(changed) // only the consumer waits while the queue is not full
            pthread_mutex_unlock(lock)
        }

        func endInput() {
            pthread_mutex_lock(lock)
            inputEnded = true
            pthread_cond_signal(changed)
            pthread_mutex_unlock(lock)
        }

        /// The thread: consumes batches until the input has ended and the queue is empty.
        func drain() {
            while true {
                pthread_mutex_lock(lock)
                while queue.isEmpty && !inputEnded { pthread_cond_wait(changed, lock) }
                let taken = queue
                queue.removeAll(keepingCapacity: true)
                let wasFull = taken.count >= limit
                pthread_mutex_unlock(lock)
                if wasFull { pthread_cond_signal(changed) } // the producer may be waiting for room
                if taken.isEmpty { return }
                for batch in taken { consume(batch) }
            }
        }
    }
}
