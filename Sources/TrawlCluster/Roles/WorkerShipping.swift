import TrawlAnalysis
import TrawlCore

/// What a node that does not write its own logs needs to send them: its batch numbering,
/// the outbox with its spool, and the shipper thread towards the loggers.
public final class WorkerShipping {
    public let layout: ClusterLayout
    public let node: ClusterNode
    let context: ZMQContext
    let outbox: Outbox
    let shipper: LogShipper
    let numbering: BatchNumbering

    public init(layout: ClusterLayout, node: ClusterNode, security: ClusterSecurity, context: ZMQContext = ZMQContext(),
                warn: @escaping @Sendable (String) -> Void) throws(Errno) {
        self.layout = layout
        self.node = node
        self.context = context
        numbering = BatchNumbering(node: node.name)
        let spool = try Spool(directory: layout.spoolDirectory + "/" + node.name)
        outbox = try Outbox(spool: spool, memoryLimit: layout.memoryLimit, spoolLimit: layout.spoolLimit,
                            sessionStart: numbering.started, warn: warn)
        var settings = LogShipper.Settings()
        settings.ackTimeout = max(layout.nodeTimeout, 2_000_000_000)
        shipper = LogShipper(outbox: outbox, loggers: layout.logWriters, context: context, security: security,
                             settings: settings, warn: warn)
        shipper.start(node: node.name)
    }

    /// A writer for one stream; its batches share this node's numbering.
    public func writer(for schema: LogSchema) -> LogWriter {
        RemoteLogWriter(schema: schema, numbering: numbering, outbox: outbox, batchRecords: layout.batchRecords)
    }

    /// Waits for the loggers, then spools what they did not acknowledge.
    @discardableResult
    public func finish() -> Int { shipper.finish(timeout: layout.shutdownTimeout) }

    public var counters: DeliveryCounters { shipper.counters }
    /// Batches waiting for a logger, in memory or spooled.
    public var pending: Int { outbox.pending }
}
