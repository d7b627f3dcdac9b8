/// Where finished connections become conn.log records and reach their sink: a thread of
/// its own behind a bounded queue, so that the packet thread hands a connection over and
/// goes on. The tracker only decides when a connection ends; this stage owns the log
/// thread, the record building and the sink.
public final class ConnectionLogStage {
    private let queue: BackgroundQueue<LogItem>
    let localNetworks: SubnetSet

    /// `sink` is called on the stage's thread, one record at a time, in order; weird.log
    /// rows say they come from `peer` (Zeek's peer_description).
    public init(sink: ConnectionSink, localNetworks: [Subnet] = AnalysisConfiguration.privateAddressSpace,
                peer: String = WeirdSettings().peer) {
        let networks = SubnetSet(localNetworks)
        self.localNetworks = networks
        queue = BackgroundQueue { items in
            for item in items {
                switch item {
                case let .finished(connection): sink.connectionEnded(connection.record(localNetworks: networks))
                case let .record(record): sink.connectionEnded(record)
                case let .weird(event): sink.weird(event.record(peer: peer))
                case .flush: sink.flush()
                }
            }
        }
    }

    /// Hands a finished connection over; with `buildRecord`, its record is built here (at
    /// the end of input, when this thread has nothing else to do).
    func append(_ finished: FinishedConnection, buildRecord: Bool) {
        queue.append(buildRecord ? .record(finished.record(localNetworks: localNetworks)) : .finished(finished))
    }

    /// Hands a weird over, for a weird.log row.
    func append(_ weird: WeirdEvent) {
        queue.append(.weird(weird))
    }

    /// Has the stage's thread send on what it holds, now.
    public func flush() {
        queue.append(.flush)
        queue.handOver()
    }

    /// Returns once the sink has been given every record.
    public func finish() { queue.finish() }

    /// How often the packet thread had to wait because the log thread was behind (its queue
    /// full): a writer that cannot keep up shows here.
    public var waits: UInt64 { queue.producerWaits }
}
