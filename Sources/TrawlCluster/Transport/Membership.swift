#if canImport(Glibc)
import Glibc
#endif
import CZeroMQ
import TrawlCore

/// A node's place in the cluster's event traffic: it publishes through the manager's
/// forwarder (PUB to its XSUB port) and hears what it subscribed to (SUB from its XPUB
/// port). It says it is alive every heartbeat interval and keeps the list of the other
/// nodes it hears from: a node silent for the node timeout is down (killed, or its host
/// gone), one whose id changed restarted. Runs on the node's run loop.
public final class Membership: IOSource {
    public enum Change: Equatable {
        case up(node: String, id: String)
        case down(node: String, reason: String)
    }

    public struct Peer: Equatable {
        public var role: NodeRole
        public var id: String
        public var lastHeard: UInt64
    }

    public let me: ClusterNode
    public let id: String
    private let layout: ClusterLayout
    private let publisher: ZMQSocket
    private let subscriber: ZMQSocket
    public private(set) var peers: [String: Peer] = [:]
    /// Events published but not taken by the socket (its queue full): counted, not retried.
    public private(set) var eventsDropped: UInt64 = 0
    public private(set) var eventsRefused: UInt64 = 0
    private let onEvent: (String, ClusterEvent) -> Void
    private let onChange: (Change) -> Void
    private let report: Reporter

    public init(context: ZMQContext, layout: ClusterLayout, me: ClusterNode, security: ClusterSecurity, topics: [String],
                report: @escaping Reporter, onEvent: @escaping (String, ClusterEvent) -> Void,
                onChange: @escaping (Change) -> Void) throws(ZMQError) {
        self.me = me
        self.layout = layout
        self.report = report
        self.onEvent = onEvent
        self.onChange = onChange
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        id = "trawl_\(me.name)_\(cText(host))_\(getpid())_\(String(SplitMix64.freshSeed() & 0xffff_ffff, radix: 16))"
        let manager = layout.manager
        publisher = try ZMQSocket(context, .pub)
        try publisher.set(ZMQ_SNDHWM, Int32(10_000))
        try security.configureClient(publisher, server: manager)
        try publisher.connect(manager.endpoint(offset: 1)!)
        subscriber = try ZMQSocket(context, .sub)
        try subscriber.set(ZMQ_RCVHWM, Int32(100_000))
        try subscriber.set(ZMQ_MAXMSGSIZE, Int64(1 << 20))
        try security.configureClient(subscriber, server: manager)
        for topic in [ClusterEvent.heartbeatTopic] + topics { try subscriber.set(ZMQ_SUBSCRIBE, text: topic) }
        try subscriber.connect(manager.endpoint()!)
    }

    public var descriptor: Int32? { subscriber.fileDescriptor }
    public var isExhausted: Bool { false }

    /// Our own heartbeat came back through the forwarder: what we publish now reaches the
    /// others (a publisher's first messages are lost until its connection and the
    /// subscriptions are through, ZeroMQ's "slow joiner").
    public private(set) var joined = false
    private var heardOwnGoodbye = false

    /// Waits, up to `timeout`, until this node's heartbeats come back through the forwarder.
    @discardableResult
    public func join(timeout: UInt64) -> Bool {
        let deadline = Clock.monotonicNanoseconds() &+ timeout
        while !joined && Clock.monotonicNanoseconds() < deadline {
            beat()
            for _ in 0..<5 where !joined {
                usleep(10_000)
                _ = try? process()
            }
        }
        if !joined { report("the manager's forwarder at \(layout.manager.endpoint()!) does not answer yet; going on, and trying") }
        return joined
    }

    /// Starts the heartbeats and the checks for silent nodes. With `joining`, first waits
    /// (2 s at most) for the path through the forwarder: for a short-lived node (a worker on
    /// a trace) whose first words would otherwise be lost. A long-running node just goes on
    /// beating until the manager is there.
    public func attach(to loop: RunLoop, joining: Bool = false) {
        loop.add(self)
        if joining && !joined { join(timeout: 2_000_000_000) } else { beat() }
        loop.every(layout.heartbeatInterval) { [unowned self] in
            beat()
            checkSilence(now: Clock.monotonicNanoseconds())
        }
    }

    public func publish(_ event: ClusterEvent, topic: String) {
        let sent = (try? publisher.send([Array(topic.utf8), event.bytes])) ?? false
        if !sent { eventsDropped += 1 }
    }

    public func beat(stopping: Bool = false) {
        publish(.heartbeat(.init(node: me.name, role: me.role, id: id, stopping: stopping)), topic: ClusterEvent.heartbeatTopic)
    }

    /// The nodes of `role` heard from and not down, by name, sorted; this node included when
    /// it has that role.
    public func upNodes(_ role: NodeRole) -> [String] {
        var names = peers.filter { $0.value.role == role }.map(\.key)
        if me.role == role { names.append(me.name) }
        return Set(names).sorted()
    }

    public func process() throws -> Bool {
        var any = false
        for _ in 0..<256 {
            guard subscriber.canReceive, let frames = try subscriber.receive() else { break }
            any = true
            guard frames.count == 2, let event = try? ClusterEvent(frames[1]) else {
                eventsRefused += 1
                if eventsRefused <= 100 { report("refused an event message of \(frames.count) frames") }
                continue
            }
            let topic = String(decoding: frames[0], as: UTF8.self)
            if case let .heartbeat(beat) = event { heard(beat) } else { onEvent(topic, event) }
        }
        return any
    }

    private func heard(_ beat: ClusterEvent.Heartbeat) {
        guard beat.node != me.name || beat.id != id else { // our own, back from the forwarder
            joined = true
            if beat.stopping { heardOwnGoodbye = true }
            return
        }
        guard layout.node(named: beat.node) != nil else {
            eventsRefused += 1
            if eventsRefused <= 100 { report("heard from \(beat.node), which is not in the layout") }
            return
        }
        if beat.stopping {
            if peers.removeValue(forKey: beat.node) != nil { onChange(.down(node: beat.node, reason: "stopped")) }
            return
        }
        let now = Clock.monotonicNanoseconds()
        if let known = peers[beat.node], known.id == beat.id {
            peers[beat.node]?.lastHeard = now
            return
        }
        if let known = peers[beat.node] { onChange(.down(node: beat.node, reason: "restarted as \(beat.id), was \(known.id)")) }
        peers[beat.node] = Peer(role: beat.role, id: beat.id, lastHeard: now)
        onChange(.up(node: beat.node, id: beat.id))
    }

    private func checkSilence(now: UInt64) {
        for (name, peer) in peers.sorted(by: { $0.key < $1.key }) where now &- peer.lastHeard > layout.nodeTimeout {
            peers.removeValue(forKey: name)
            let silent = Double(now &- peer.lastHeard) / 1e9
            onChange(.down(node: name, reason: "no heartbeat for \(formatSeconds(silent)) s"))
        }
    }

    /// Says goodbye, so that the others need not wait for the timeout. Once the goodbye comes
    /// back through the forwarder, everything published before it has gone out too (one
    /// connection keeps the order); without a forwarder to hear it, a quarter of a second is
    /// given, not more.
    public func leave() {
        let deadline = Clock.monotonicNanoseconds() &+ 250_000_000
        repeat {
            beat(stopping: true)
            for _ in 0..<5 where !heardOwnGoodbye {
                usleep(10_000)
                _ = try? process()
            }
        } while joined && !heardOwnGoodbye && Clock.monotonicNanoseconds() < deadline
        publisher.close() // linger 0: what the forwarder did not take by now it will not
        subscriber.close()
    }
}

/// "2.5" for 2.5, one decimal.
func formatSeconds(_ seconds: Double) -> String {
    let tenths = Int((seconds * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
