import TrawlAnalysis
import TrawlCore

/// The manager: runs the event forwarder every node connects to, follows which nodes are
/// up (cluster.log), and turns the workers' statistics into stats.log and capture_loss.log,
/// with a CaptureLoss::Too_Much_Loss notice above the loss threshold. Its own logs go to the
/// loggers like every node's (or to itself, when it is the cluster's log writer).
public final class ManagerNode {
    public let node: ClusterNode
    let layout: ClusterLayout
    let forwarder: Forwarder
    public private(set) var membership: Membership!
    let shipping: WorkerShipping
    /// cluster, stats, capture_loss and notice, written through the loggers.
    let logs: LogManager
    private var previous: [String: NodeStatistics] = [:]
    private let report: Reporter
    private let security: ClusterSecurity
    /// Handshakes that failed at the forwarder's ports (a node without the cluster's keys).
    private var monitors: [HandshakeMonitor] = []
    private var refusals: RefusalLog!
    /// Zeek's CaptureLoss::too_much_loss, as a percentage.
    public var tooMuchLoss = 10.0

    public init(node: ClusterNode, layout: ClusterLayout, security: ClusterSecurity, context: ZMQContext,
                report: @escaping Reporter) throws {
        self.node = node
        self.layout = layout
        self.report = report
        self.security = security
        try security.startAuthentication(context)
        forwarder = try Forwarder(context: context, manager: node, security: security)
        let refusals = RefusalLog()
        monitors = try forwarder.monitors(context: context) { message in
            report(message)
            refusals.add(message)
        }
        self.refusals = refusals
        forwarder.start()
        shipping = try WorkerShipping(layout: layout, node: node, security: security, context: context) { report($0) }
        let shipping = self.shipping
        logs = LogManager(.writers { shipping.writer(for: $0) }) { path, error in report("cannot queue a \(path) record: \(error)") }
        for schema in [ClusterLogs.cluster, ClusterLogs.stats, ClusterLogs.captureLoss, ClusterLogs.notice] { try logs.register(schema) }
        membership = try Membership(context: context, layout: layout, me: node, security: security,
                                    topics: [ClusterEvent.managerTopic], report: report,
                                    onEvent: { [unowned self] _, event in handle(event) },
                                    onChange: { [unowned self] change in changed(change) })
    }

    public func attach(to loop: RunLoop) {
        for monitor in monitors { loop.add(monitor) }
        // Refusals go to cluster.log too, where an operator looks for who could not join.
        loop.every(1_000_000_000) { [unowned self] in
            for message in refusals.take() { log(message) }
            for address in security.takeRefusals() {
                report("refused a connection from \(address): not the cluster's key")
                log("refused a connection from \(address): not the cluster's key")
            }
        }
        membership.attach(to: loop)
        membership.reportStatistics(on: loop, every: layout.statsInterval)
        loop.every(layout.flushInterval) { [unowned self] in logs.flushAll() }
    }

    /// cluster.log, in Zeek's words where Zeek has them.
    public func log(_ message: String) {
        logs.write(ClusterLogs.cluster.path, [.time(Clock.wallNanoseconds()), .string(node.name), .string(message)])
    }

    private func changed(_ change: Membership.Change) {
        switch change {
        case let .up(name, id): log("got hello from \(name) (\(id))")
        case let .down(name, reason):
            log("node down: \(name) (\(reason))")
            previous.removeValue(forKey: name)
        }
    }

    /// The workers' latest capture counters, written to `netstats` in the manager's working
    /// directory as they come (for `trawlctl netstats`): a line per worker,
    /// `NAME SECONDS recvd=N dropped=N link=N bytes=N` (a count unknown to the source: -).
    private var capture: [String: NodeStatistics] = [:]
    public static let netstatsFile = "netstats"

    private func noteCapture(_ stats: NodeStatistics) {
        capture[stats.node] = stats
        let lines = capture.keys.sorted().map { name -> String in
            let s = capture[name]!
            func v(_ n: String) -> String { s[n].map(String.init) ?? "-" }
            return "\(name) \(formatSeconds(s.time)) recvd=\(v(NodeStatistics.Name.packets)) "
                + "dropped=\(v(NodeStatistics.Name.dropped)) link=\(v(NodeStatistics.Name.link)) bytes=\(v(NodeStatistics.Name.bytes))"
        }
        // Best effort: the next capture report writes it again.
        try? writeFileAtomically(Self.netstatsFile, lines.joined(separator: "\n") + "\n")
    }

    private func handle(_ event: ClusterEvent) {
        if case let .capture(stats) = event {
            noteCapture(stats)
            return
        }
        guard case let .statistics(stats) = event else { return }
        defer { previous[stats.node] = stats }
        // The first report of a node is its baseline; a counter that went back means the
        // node restarted, and its new totals are this interval's.
        guard let before = previous[stats.node], before.time < stats.time else { return }
        func delta(_ name: String) -> UInt64? {
            guard let now = stats[name] else { return nil }
            let then = before[name] ?? 0
            return now >= then ? now - then : now
        }
        func count(_ name: String) -> LogValue { delta(name).map { .count($0) } ?? .unset }
        func current(_ name: String) -> LogValue { stats[name].map { .count($0) } ?? .unset }
        let time = stats.time
        var row: [LogValue] = [.time(time), .string(stats.node)]
        row.append(stats[NodeStatistics.Name.memory].map { .count($0 / 1_048_576) } ?? .unset)
        row += [count(NodeStatistics.Name.packets), count(NodeStatistics.Name.bytes), count(NodeStatistics.Name.dropped),
                count(NodeStatistics.Name.link), stats["lag_ns"].map { .interval($0) } ?? .unset, .unset, .unset, .unset,
                current(NodeStatistics.Name.activeTCP), current(NodeStatistics.Name.activeUDP), current(NodeStatistics.Name.activeICMP),
                count(NodeStatistics.Name.tcpMade), count(NodeStatistics.Name.udpMade), count(NodeStatistics.Name.icmpMade),
                .unset, .unset, .unset, .unset, .unset, .unset,
                .count(0), .unset, current(NodeStatistics.Name.fragmentBytes), .unset]
        logs.write(ClusterLogs.stats.path, row)

        // capture_loss.log is for the nodes that analyse packets, as in Zeek.
        guard stats[NodeStatistics.Name.acks] != nil else { return }
        let acks = delta(NodeStatistics.Name.acks) ?? 0, gaps = delta(NodeStatistics.Name.gaps) ?? 0
        let lost = acks == 0 ? 0.0 : 100.0 * Double(gaps) / Double(acks)
        logs.write(ClusterLogs.captureLoss.path, [.time(time), .interval(time - before.time), .string(stats.node), .count(gaps), .count(acks), .double(lost)])
        if lost >= tooMuchLoss {
            logs.write(ClusterLogs.notice.path, ClusterLogs.noticeRecord(
                time: time, note: "CaptureLoss::Too_Much_Loss",
                message: "The capture loss script detected an estimated loss rate above \(threeDecimals(lost))%", peer: stats.node))
        }
        if let dropped = delta(NodeStatistics.Name.recordsDropped), dropped > 0 {
            log("\(stats.node) dropped \(dropped) log records: its spool is full")
        }
    }

    /// Seals the last records into batches (before `finish`).
    public func closeLogs() { try? logs.closeAll() }

    /// Batches not yet acknowledged by a logger.
    public var pendingBatches: Int { shipping.pending }

    /// Stops: the last records out (or to the spool), goodbye, the forwarder closed.
    public func finish() {
        for monitor in monitors { monitor.close() }
        shipping.finish()
        membership.leave()
        forwarder.stop()
        security.stopAuthentication()
    }
}

/// "%.3f".
func threeDecimals(_ value: Double) -> String {
    let thousandths = Int((value * 1000).rounded())
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}

/// Messages from the handshake monitors, kept for cluster.log (they run on the same loop).
final class RefusalLog: @unchecked Sendable {
    private var messages: [String] = []
    func add(_ message: String) { if messages.count < 1000 { messages.append(message) } }
    func take() -> [String] { defer { messages.removeAll() }; return messages }
}
