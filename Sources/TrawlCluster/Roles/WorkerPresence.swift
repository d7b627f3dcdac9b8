#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCore

/// What a worker does in the cluster beside shipping its logs, all on its packet thread's
/// run loop and none of it blocking: heartbeats, its statistics to the manager every stats
/// interval (and at its start and end), and each local host that completed a handshake to
/// the proxy that owns it.
public final class WorkerPresence {
    public let membership: Membership
    let layout: ClusterLayout
    let node: ClusterNode
    private let sample: () -> [(String, UInt64)]
    private let tracker: ConnectionTracker?
    /// Hosts already sent to their proxy; cleared when the proxies change, so that the new
    /// owners hear of them (as Zeek's workers clear their Known caches).
    private var sent: Set<IPAddress> = []
    private var proxies: [String] = []
    /// Hosts waiting for a proxy to be heard from (at most `maximumPending`).
    private var pending: [IPAddress] = []
    static let maximumPending = 65_536
    public private(set) var hostsSent: UInt64 = 0
    /// Hosts with no proxy up to send them to.
    public private(set) var hostsUnsent: UInt64 = 0

    /// `sample` gives the worker's counters now (NodeStatistics.Name).
    public init(node: ClusterNode, layout: ClusterLayout, security: ClusterSecurity, context: ZMQContext,
                tracker: ConnectionTracker?, report: @escaping Reporter,
                sample: @escaping () -> [(String, UInt64)]) throws {
        self.node = node
        self.layout = layout
        self.sample = sample
        self.tracker = tracker
        membership = try Membership(context: context, layout: layout, me: node, security: security, topics: [],
                                    report: report, onEvent: { _, _ in }, onChange: { _ in })
        if !layout.nodes(.proxy).isEmpty { tracker?.watchEstablishedHosts() }
    }

    public func attach(to loop: RunLoop) {
        membership.attach(to: loop, joining: true)
        publishStatistics()
        loop.every(layout.statsInterval) { [unowned self] in publishStatistics() }
        loop.every(layout.heartbeatInterval) { [unowned self] in publishCapture() }
        if !layout.nodes(.proxy).isEmpty {
            loop.every(200_000_000) { [unowned self] in sendKnownHosts() }
        }
    }

    public func publishStatistics() {
        membership.publish(.statistics(NodeStatistics(node: node.name, time: Clock.wallNanoseconds(), counters: sample())),
                           topic: ClusterEvent.managerTopic)
    }

    /// The capture counters alone, for `trawlctl netstats` (through the manager).
    public func publishCapture() {
        let wanted: Set<String> = [NodeStatistics.Name.packets, NodeStatistics.Name.bytes, NodeStatistics.Name.dropped,
                                   NodeStatistics.Name.link]
        membership.publish(.capture(NodeStatistics(node: node.name, time: Clock.wallNanoseconds(),
                                                   counters: sample().filter { wanted.contains($0.0) })),
                           topic: ClusterEvent.managerTopic)
    }

    private func sendKnownHosts() {
        guard let tracker else { return }
        var hosts = tracker.takeEstablishedHosts()
        let up = membership.upNodes(.proxy)
        if up != proxies {
            proxies = up
            sent.removeAll()
        }
        if !pending.isEmpty && !proxies.isEmpty {
            hosts = pending + hosts
            pending.removeAll()
        }
        guard !hosts.isEmpty else { return }
        let now = Clock.wallNanoseconds()
        for host in hosts where !sent.contains(host) {
            guard let owner = rendezvousOwner(of: host, among: proxies) else {
                if pending.count < Self.maximumPending { pending.append(host) } else { hostsUnsent += 1 }
                continue
            }
            if sent.count >= 1 << 20 { sent.removeAll() }
            sent.insert(host)
            hostsSent += 1
            membership.publish(.knownHost(node: node.name, host: host, time: now), topic: ClusterEvent.nodeTopic(owner))
        }
    }

    /// The last statistics and known hosts, then goodbye.
    public func finish() {
        // Hosts still waiting for a proxy: give the proxies a node timeout to be heard from.
        let deadline = Clock.monotonicNanoseconds() &+ layout.nodeTimeout
        while !pending.isEmpty || (tracker?.statistics.establishedHosts.isEmpty == false && membership.upNodes(.proxy).isEmpty) {
            _ = try? membership.process()
            sendKnownHosts()
            guard pending.count > 0, Clock.monotonicNanoseconds() < deadline else { break }
            usleep(20_000)
        }
        sendKnownHosts()
        hostsUnsent += UInt64(pending.count)
        publishStatistics()
        membership.leave()
    }

    /// The process's resident memory, from /proc/self/statm (its second field, in pages).
    public static func residentBytes() -> UInt64 {
        guard let text = try? readFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension Membership {
    /// What a logger, proxy or the manager reports to the manager every stats interval (and
    /// now, as the baseline): its memory, so that stats.log has a row for every node, as Zeek's.
    public func reportStatistics(on loop: RunLoop, every interval: UInt64) {
        publishMemory()
        loop.every(interval) { [unowned self] in publishMemory() }
    }

    private func publishMemory() {
        let counters: [(String, UInt64)] = [(NodeStatistics.Name.memory, WorkerPresence.residentBytes())]
        let statistics = NodeStatistics(node: me.name, time: Clock.wallNanoseconds(), counters: counters)
        publish(.statistics(statistics), topic: ClusterEvent.managerTopic)
    }
}
