import TrawlCore

/// Turns the weirds the analysis notes into weird.log rows as Zeek does: the core's
/// sampling (per name for the whole sensor, per flow, per connection), then weird.zeek's
/// policy, then the row, handed to the tracker's log stage. Runs on the packet thread, only
/// when a weird happens.
final class WeirdReporter {
    private let decoded: UnsafeMutablePointer<DecodedPacket>
    @exclusivity(unchecked) private var policy: WeirdPolicy
    @exclusivity(unchecked) private var netPlaces: WeirdPlaces<UInt64>
    @exclusivity(unchecked) private var flowPlaces: WeirdPlaces<WeirdFlow>
    @exclusivity(unchecked) private var connectionPlaces: WeirdPlaces<UInt64>
    /// The tracker that owns this reporter, which never outlives it: for network time, the
    /// connections, and its log stage, where the rows go. Held without reference counting
    /// (a weird can come with every packet), set once right after the tracker is made.
    private var owner: Unmanaged<ConnectionTracker>!
    func attach(to tracker: ConnectionTracker) { owner = .passUnretained(tracker) }
    @inline(__always) private func tracker<T>(_ body: (ConnectionTracker) -> T) -> T { owner._withUnsafeGuaranteedRef(body) }
    /// The settings read for every weird, apart (the rest hold strings and tables).
    private let enabled: Bool
    private let sampling: WeirdSampling
    /// Rows handed on, and weirds that sampling or the policy kept out of the log.
    @exclusivity(unchecked) private(set) var logged: UInt64 = 0
    @exclusivity(unchecked) private(set) var sampledOut: UInt64 = 0

    init(settings: WeirdSettings, decoded: UnsafeMutablePointer<DecodedPacket>) {
        self.decoded = decoded
        enabled = settings.enabled
        sampling = settings.sampling
        policy = WeirdPolicy(actions: settings.actions, bound: settings.stateBound)
        netPlaces = WeirdPlaces(bound: settings.stateBound, anyPlace: 0)
        let nowhere = IPAddress(high: 0, low: 0)
        flowPlaces = WeirdPlaces(bound: settings.stateBound, anyPlace: WeirdFlow(source: nowhere, destination: nowhere))
        connectionPlaces = WeirdPlaces(bound: settings.stateBound, anyPlace: 0)
    }

    /// Weirds not logged for want of room in the sampling or policy state.
    var overflow: UInt64 { netPlaces.overflow + flowPlaces.overflow + connectionPlaces.overflow + policy.overflow }

    /// A packet analyzer's weird: about the packet's flow once its IP header was read.
    func packetWeird(_ weird: Weird, source: StaticString, detail: WeirdDetail, hasIP: Bool, tunnelled: Bool) {
        let name = WeirdName(weird, tunnelled: tunnelled)
        if hasIP {
            flowWeird(name, decoded.pointee.source, decoded.pointee.destination, detail: detail, source: source)
        } else {
            netWeird(name, source: source, detail: detail)
        }
    }

    func netWeird(_ name: WeirdName, source: StaticString?, detail: WeirdDetail, reported: SourceWeird? = nil) {
        guard enabled else { return }
        let now = tracker { $0.now }
        guard netPlaces.check(name, in: 0, at: now, sampling, hold: WeirdPolicy.hold(for: name)) == .passes,
              let notice = policy.admit(name, about: .none, originator: nil, at: now) else { return dropped() }
        netPlaces.pass(name, in: 0, at: now)
        publish(WeirdEvent(time: now, uid: 0, id: nil, name: name, detail: detail, notice: notice, source: source, reported: reported))
    }

    /// A weird a packet source reported under one of Zeek's names: sampled, held back and
    /// logged, ignored or made a notice as Zeek's policy does that name, with the source's
    /// addl.
    func sourceWeird(_ weird: SourceWeird, known: Weird) {
        netWeird(WeirdName(known), source: nil, detail: .none, reported: weird)
    }

    /// A weird a packet source reported, under its own name: sampled and held back per
    /// name as Zeek's core does for a net weird (the name's `index` among the names seen
    /// stands for it), then given weird.zeek's action for the name (most names: logged).
    func sourceWeird(_ weird: SourceWeird, index: Int) {
        guard enabled else { return }
        let now = tracker { $0.now }
        let name = WeirdName(.sourceReported)
        let place = 1 << 63 | UInt64(index)
        guard netPlaces.check(name, in: place, at: now, sampling, hold: WeirdPolicy.hold(for: name)) == .passes,
              let notice = policy.admit(sourceWeird: weird.name, index: index, at: now) else { return dropped() }
        netPlaces.pass(name, in: place, at: now)
        publish(WeirdEvent(time: now, uid: 0, id: nil, name: name, detail: .none, notice: notice, source: nil, reported: weird))
    }

    func flowWeird(_ name: WeirdName, _ source: IPAddress, _ destination: IPAddress, detail: WeirdDetail,
                   source analyzer: StaticString? = nil) {
        guard enabled else { return }
        let now = tracker { $0.now }
        let pair = WeirdFlow(source: source, destination: destination)
        guard flowPlaces.check(name, in: pair, at: now, sampling, hold: WeirdPolicy.hold(for: name)) == .passes,
              let notice = policy.admit(name, about: .flow(source, destination), originator: source, at: now)
        else { return dropped() }
        flowPlaces.pass(name, in: pair, at: now)
        let id = WeirdRecord.WeirdID(origAddress: source, origPort: 0, respAddress: destination, respPort: 0, proto: 0)
        publish(WeirdEvent(time: now, uid: 0, id: id, name: name, detail: detail, notice: notice, source: analyzer))
    }

    /// A weird about the connection in `slot`; about nothing when there is none (a bug).
    func connectionWeird(_ name: WeirdName, slot: UInt32, source: StaticString?, detail: WeirdDetail) {
        guard enabled else { return }
        guard slot != Weirds.noConnection, let uid = tracker({ $0.weirdUID(slot) }) else {
            return netWeird(name, source: source, detail: detail)
        }
        let now = tracker { $0.now }
        let hold = WeirdPolicy.hold(for: name)
        // A frequent weird on a connection younger than the hold is decided by the
        // connection alone: one it let through is still held back, and the sampling count
        // is of no consequence, as its period (no longer than the hold) ends before the
        // hold does. The table remembers it too when it has room, for when the connection
        // is older; without room, it is taken as let through when the connection began.
        let bit = name.weird.connectionBit
        let young = bit != 0 && hold > 0 && sampling.duration <= hold && tracker({ $0.age(slot, at: now) }) < hold
        let before = tracker { $0.weirdsLogged(slot) }
        if young && before & bit != 0 { return dropped() }
        if !young {
            if bit != 0 && before & bit != 0 && before & Weird.rememberedBit == 0 {
                // Let through while young, not remembered: the earliest it could have been.
                _ = connectionPlaces.remember(name, in: uid, at: tracker { $0.start(slot) })
                tracker { $0.noteWeirdsLogged(slot, Weird.rememberedBit) }
            }
            tracker { $0.noteWeirdsLogged(slot, Weird.rememberedBit) } // the check below remembers it
            guard connectionPlaces.check(name, in: uid, at: now, sampling, hold: hold) == .passes else { return dropped() }
        }
        guard let c = tracker({ $0.weirdConnection(slot) }),
              let notice = policy.admit(name, about: .connection(uid), originator: c.origAddress, at: now)
        else { return dropped() }
        if young {
            if connectionPlaces.remember(name, in: uid, at: now) { tracker { $0.noteWeirdsLogged(slot, Weird.rememberedBit) } }
            tracker { $0.noteWeirdsLogged(slot, bit) }
        } else {
            connectionPlaces.pass(name, in: uid, at: now)
            if bit != 0 { tracker { $0.noteWeirdsLogged(slot, bit) } }
        }
        let id = WeirdRecord.WeirdID(origAddress: c.origAddress, origPort: c.origPort, respAddress: c.respAddress,
                                     respPort: c.respPort, proto: c.proto)
        publish(WeirdEvent(time: now, uid: c.uid, id: id, name: name, detail: detail, notice: notice, source: source))
    }

    /// Forgets what was remembered of the connection `uid`, which has ended (its weirds
    /// are held back per connection).
    func forget(connection uid: UInt64) { connectionPlaces.forget(uid) }

    /// Hands the weird to the log stage, whose thread makes the row's strings.
    private func publish(_ event: WeirdEvent) {
        logged += 1
        tracker { $0.logStage.append(event) }
    }

    private func dropped() { sampledOut += 1 }
}

/// A weird let into weird.log, as the packet thread hands it on: numbers only (the uid,
/// the name's code, the detail), made into strings on the log thread.
struct WeirdEvent {
    var time: UInt64
    /// The connection's uid, 0 for none.
    var uid: UInt64
    var id: WeirdRecord.WeirdID?
    var name: WeirdName
    var detail: WeirdDetail
    var notice: Bool
    var source: StaticString?
    /// A packet source's own weird: its name and addl (then `name` is `.sourceReported`).
    var reported: SourceWeird?

    func record(peer: String) -> WeirdRecord {
        WeirdRecord(time: time, uid: uid == 0 ? nil : UIDGenerator.format(uid), id: id, name: reported?.name ?? name.text,
                    addl: reported.map(\.addl) ?? name.weird.addl(detail), notice: notice, peer: peer, source: source?.description)
    }
}

/// How weirds are logged: Zeek's settings of the weird framework.
public struct WeirdSettings: Sendable {
    /// False: weirds are counted only, no weird.log (Zeek's Log::disable_stream(Weird::LOG)).
    public var enabled = true
    public var sampling = WeirdSampling()
    /// weird.log's `peer` (Zeek's peer_description: "zeek" outside a cluster, the node's
    /// name in one).
    public var peer = "zeek"
    /// The action per weird name (Zeek's Weird::actions); names not here are logged.
    var actions = WeirdPolicy.zeekActions
    /// The most places (flows, connections, names) sampling and the policy remember at once.
    public var stateBound = 65_536

    public init() {}
}
