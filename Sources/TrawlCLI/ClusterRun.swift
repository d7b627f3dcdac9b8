#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCluster
import TrawlCore

extension Trawl {
    /// `--cluster-layout FILE`: runs this process as the node the layout names.
    static func runClusterNode(_ given: NodeConfiguration) throws -> Int32 {
        let file = given.clusterLayout!
        let layout: ClusterLayout
        do { layout = try ClusterLayout.load(path: file) } catch { throw FatalError(error) }
        guard let name = given.nodeName ?? environmentValue("CLUSTER_NODE") else {
            throw FatalError("which node of \(file) is this? Give --node NAME or set CLUSTER_NODE")
        }
        guard let node = layout.node(named: name) else {
            throw FatalError("\(file): no node named '\(name)' (nodes: \(layout.nodes.map(\.name).joined(separator: ", ")))")
        }
        // The layout's settings under the command line's (NodeConfiguration.applying).
        let options: NodeConfiguration
        do { options = try given.applying(layout: layout, node: node) } catch { throw FatalError("\(file): options: \(error)") }
        let security: ClusterSecurity
        do { security = try ClusterSecurity.forLayout(layout) { writeStandardError("warning: \($0)\n") } }
        catch { throw FatalError(error) }
        let reads = !options.interfaces.isEmpty || !options.traces.isEmpty
        let report: Reporter = { writeStandardError("\(name): \($0)\n") }
        if node.role != .worker && reads {
            throw FatalError("node \(name) is a \(node.role.rawValue): it reads no packets (no -r or -i)")
        }
        try pin(options.pinCPUs)
        let context = ZMQContext()
        switch node.role {
        case .worker:
            guard reads else { throw FatalError("node \(name) is a worker: give it -r TRACE or -i INTERFACE to read") }
            guard let registry = loadRegistry() else { return 1 }
            let shipping: WorkerShipping
            do { shipping = try WorkerShipping(layout: layout, node: node, security: security, context: context) { report("warning: \($0)") } }
            catch { throw FatalError("cannot use the spool \(layout.spoolDirectory)/\(name): \(error)") }
            try capture(options, registry: registry, logs: .cluster(shipping)) { loop, tracker, consumer, sources in
                let presence = try WorkerPresence(node: node, layout: layout, security: security, context: context, tracker: tracker,
                                                  report: report) { workerCounters(tracker, consumer, sources, shipping) }
                presence.attach(to: loop)
                try serveMetrics(node, layout: layout, on: loop) {
                    workerCounters(tracker, consumer, sources, shipping)
                        + [("outbox_batches", UInt64(shipping.pending)), ("batches_acknowledged", shipping.counters.acknowledged),
                           ("log_queue_waits", tracker?.logStage.waits ?? 0)]
                }
                return { presence.finish() }
            }
            let left = shipping.pending
            if left > 0 {
                writeStandardError("warning: \(left) log batches were not acknowledged by a logger in time; they are kept in \(layout.spoolDirectory)/\(name) and sent when this node runs again\n")
            }
            return 0
        case .logger, .manager, .proxy:
            return try runService(node, layout: layout, options: options, security: security, context: context, report: report)
        }
    }

    /// Serves the node's Prometheus metrics on its `metrics_port`, when the layout gives one.
    static func serveMetrics(_ node: ClusterNode, layout: ClusterLayout, on loop: RunLoop,
                             sample: @escaping () -> [(String, UInt64)]) throws {
        guard let port = node.metricsPort else { return }
        do {
            let server = try MetricsServer(address: layout.metricsAddress, port: port, node: node.name, role: node.role, sample: sample)
            loop.add(server)
        } catch {
            throw FatalError("cannot serve metrics on \(layout.metricsAddress):\(port): \(error)")
        }
    }

    /// The counters a worker reports (stats.log, capture_loss.log).
    static func workerCounters(_ tracker: ConnectionTracker?, _ consumer: PacketConsumer, _ sources: [any PacketSource],
                               _ shipping: WorkerShipping) -> [(String, UInt64)] {
        typealias N = NodeStatistics.Name
        var counters: [(String, UInt64)] = [(N.packets, consumer.tally.packets), (N.bytes, consumer.tally.bytes),
                                            (N.memory, WorkerPresence.residentBytes())]
        let statistics = sources.map { (try? $0.statistics()) ?? CaptureStatistics() }
        if statistics.allSatisfy({ $0.dropped != nil }) { counters.append((N.dropped, statistics.compactMap(\.dropped).reduce(0, +))) }
        if statistics.allSatisfy({ $0.received != nil }) { counters.append((N.link, statistics.compactMap(\.received).reduce(0, +))) }
        if sources.contains(where: { $0.info.isLive }), consumer.tally.packets > 0 {
            let now = Clock.wallNanoseconds()
            counters.append(("lag_ns", now > consumer.tally.lastTimestamp ? now - consumer.tally.lastTimestamp : 0))
        }
        if let tracker {
            let c = tracker.statistics.connections, g = tracker.statistics.gaps
            counters += [(N.tcpMade, c.made.tcp), (N.udpMade, c.made.udp), (N.icmpMade, c.made.icmp),
                         (N.activeTCP, c.activeTCP), (N.activeUDP, c.activeUDP), (N.activeICMP, c.activeICMP),
                         (N.acks, g.acks), (N.gaps, g.gaps),
                         (N.fragmentBytes, UInt64(tracker.fragmentBytesHeld))]
        }
        let delivery = shipping.counters
        counters += [(N.recordsSent, delivery.records), (N.batchesSpooled, delivery.spooled), (N.recordsDropped, delivery.droppedRecords)]
        return counters
    }

    /// A logger, the manager or a proxy: serves until SIGINT/SIGTERM, then closes its logs.
    static func runService(_ node: ClusterNode, layout: ClusterLayout, options: NodeConfiguration, security: ClusterSecurity,
                           context: ZMQContext, report: @escaping Reporter) throws -> Int32 {
        let loop = RunLoop(stopToken: processStop)
        let stopper = StopSignals(interrupting: [], stop: processStop)
        defer { stopper.disarm() }
        var logger: LoggerNode?
        var manager: ManagerNode?
        var proxy: ProxyNode?
        do {
            if layout.logWriters.contains(node) {
                logger = try LoggerNode(node: node, layout: layout, logDirectory: options.logDirectory, json: options.jsonLogs,
                                        security: security, context: context, report: report)
                logger?.attach(to: loop)
                writeStandardError("\(node.name): taking logs on \(node.endpoint()!), writing into \(options.logDirectory)\n")
            }
            if node.role == .manager {
                manager = try ManagerNode(node: node, layout: layout, security: security, context: context, report: report)
                manager?.attach(to: loop)
                writeStandardError("\(node.name): forwarding events on \(node.endpoint()!) and \(node.endpoint(offset: 1)!)\n")
            }
            if node.role == .proxy {
                proxy = try ProxyNode(node: node, layout: layout, security: security, context: context, report: report)
                proxy?.attach(to: loop)
                writeStandardError("\(node.name): serving as a proxy\n")
            }
        } catch {
            throw FatalError("node \(node.name): \(error)")
        }
        try serveMetrics(node, layout: layout, on: loop) { [(NodeStatistics.Name.memory, WorkerPresence.residentBytes())] }
        var failure: Error?
        do { try loop.run() } catch { failure = error }
        // The manager and proxies send their last records first; a log-writing manager is
        // still taking them while it does.
        if let manager {
            manager.log("node down: \(node.name) (stopped)")
            manager.closeLogs()
            if let logger {
                // This manager writes the logs: it takes its own last batches before it stops.
                let drain = RunLoop()
                drain.add(logger.intake)
                let deadline = Clock.monotonicNanoseconds() &+ layout.shutdownTimeout
                while manager.pendingBatches > 0 && Clock.monotonicNanoseconds() < deadline { try? drain.runOnce(maximumWait: 10) }
            }
            manager.finish()
        }
        proxy?.finish()
        if let logger {
            do { try logger.finish(rotate: layout.rotationInterval > 0) } catch { throw FatalError("node \(node.name): cannot close the logs: \(error)") }
        }
        if let failure { throw FatalError("node \(node.name): \(failure)") }
        print("node: \(node.name) (\(node.role.rawValue))")
        if let logger {
            print("logs: \(logger.rowsWritten) records in \(logger.batchesWritten) batches written, \(logger.duplicates) batches already written, \(logger.refusedMessages) messages refused")
        }
        if let proxy { print("known hosts: \(proxy.hostsLogged) logged") }
        return 0
    }

    static func environmentValue(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
