import TrawlAnalysis
import TrawlCore

/// A proxy: holds a share of the cluster's state. Its first use is Zeek's known-hosts: each
/// worker sends a local host that completed a TCP handshake to the proxy that owns it
/// (rendezvous hashing over the proxies that are up), and the owner logs it once a day.
public final class ProxyNode {
    public let node: ClusterNode
    let layout: ClusterLayout
    public private(set) var membership: Membership!
    let shipping: WorkerShipping
    let logs: LogManager
    /// Hosts logged, with when (wall ns): logged again a day later, as Zeek's store expires.
    private var known: [IPAddress: UInt64] = [:]
    public static let expiry: UInt64 = 86_400_000_000_000
    /// At most this many hosts are remembered; beyond, the oldest day's go first.
    public static let maximumHosts = 1 << 20
    public private(set) var hostsLogged: UInt64 = 0
    public private(set) var hostsForgotten: UInt64 = 0
    private let report: Reporter

    public init(node: ClusterNode, layout: ClusterLayout, security: ClusterSecurity, context: ZMQContext,
                report: @escaping Reporter) throws {
        self.node = node
        self.layout = layout
        self.report = report
        shipping = try WorkerShipping(layout: layout, node: node, security: security, context: context) { report($0) }
        let shipping = self.shipping
        logs = LogManager(.writers { shipping.writer(for: $0) }) { path, error in report("cannot queue a \(path) record: \(error)") }
        try logs.register(ClusterLogs.knownHosts)
        membership = try Membership(context: context, layout: layout, me: node, security: security,
                                    topics: [ClusterEvent.nodeTopic(node.name)], report: report,
                                    onEvent: { [unowned self] _, event in handle(event) }, onChange: { _ in })
    }

    public func attach(to loop: RunLoop) {
        membership.attach(to: loop)
        membership.reportStatistics(on: loop, every: layout.statsInterval)
        loop.every(layout.flushInterval) { [unowned self] in logs.flushAll() }
        loop.every(3_600_000_000_000) { [unowned self] in expire(now: Clock.wallNanoseconds()) }
    }

    private func handle(_ event: ClusterEvent) {
        guard case let .knownHost(_, host, time) = event else { return }
        if let seen = known[host], time &- seen < Self.expiry { return }
        if known.count >= Self.maximumHosts { expire(now: time, all: true) }
        known[host] = time
        hostsLogged += 1
        logs.write(ClusterLogs.knownHosts.path, [.time(time), .address(host)])
    }

    private func expire(now: UInt64, all: Bool = false) {
        let before = known.count
        known = known.filter { now &- $0.value < (all ? Self.expiry / 2 : Self.expiry) }
        hostsForgotten += UInt64(before - known.count)
    }

    public func finish() {
        try? logs.closeAll()
        shipping.finish()
        membership.leave()
    }
}

/// Rendezvous (highest random weight) hashing: the owner of `key` among `nodes` is the one
/// whose hash with the key is highest, so a node leaving moves only its own keys.
public func rendezvousOwner(of key: IPAddress, among nodes: [String]) -> String? {
    var best: (name: String, score: UInt64)?
    for name in nodes {
        var h = stableHash(name) ^ key.high &* 0x9e37_79b9_7f4a_7c15 ^ key.low
        h = (h ^ (h >> 31)) &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 29
        if best == nil || h > best!.score || (h == best!.score && name < best!.name) { best = (name, h) }
    }
    return best?.name
}
