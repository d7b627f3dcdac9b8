/// Zeek-style "weirds": things in the traffic that are wrong or unusual, or that hit one of
/// the analysis's bounds, by Zeek's name for them where Zeek has one. Every weird is
/// counted; with a reporter attached (the tracker's), each is also reported with where it
/// happened, for weird.log. The tracker keeps one at a stable address, which every stage of
/// its analysis notes into. Hostile traffic can make a weird of every packet, so a known
/// weird is one array slot (no hashing of its name); only names made on the spot go to a
/// dictionary, and reporting is off the fast path.
public struct Weirds {
    private var byCase = [UInt64](repeating: 0, count: Weird.allCases.count)
    private var named: [String: UInt64] = [:]

    /// What a packet weird is about, set by the packet path as it goes: whether the packet
    /// being analysed has had its IP header read (then the weird is about its flow, the
    /// decoded addresses), and whether it is inside a tunnel.
    var packetHasIP = false
    var insideTunnel = false
    /// The connection the packet belongs to, once the tracker has found it (its table
    /// slot; `noConnection` before): connection weirds are about it.
    var connectionSlot = Weirds.noConnection
    static let noConnection = UInt32.max
    /// Where reports go; nil for a scratch counter.
    let reporter: WeirdReporter?

    public init() { reporter = nil }

    init(reporter: WeirdReporter) { self.reporter = reporter }

    /// A weird of the packet being analysed, raised as its `origin` says.
    @inline(never) // off the fast path
    public mutating func note(_ weird: Weird, detail: WeirdDetail = .none) {
        byCase[weird.ordinal] &+= 1
        guard let reporter else { return }
        switch weird.origin {
        case let .packet(source): reporter.packetWeird(weird, source: source, detail: detail, hasIP: packetHasIP, tunnelled: insideTunnel)
        case let .connection(source): reporter.connectionWeird(WeirdName(weird), slot: connectionSlot, source: source, detail: detail)
        case .bound, .flow: reporter.netWeird(WeirdName(weird), source: nil, detail: detail)
        case .countedOnly: break
        }
    }

    /// A weird about the packet's connection, raised by the analyzer `source` (Zeek's
    /// adapter weirds for what Trawl finds before the connection is looked up).
    @inline(never)
    mutating func note(_ weird: Weird, connectionSource source: PacketAnalyzer) {
        byCase[weird.ordinal] &+= 1
        reporter?.connectionWeird(WeirdName(weird), slot: connectionSlot, source: source.staticName, detail: .none)
    }

    /// A packet analyzer's weird whose analyzer is known only where it is noted.
    @inline(never)
    mutating func note(_ weird: Weird, source: PacketAnalyzer) {
        byCase[weird.ordinal] &+= 1
        reporter?.packetWeird(weird, source: source.staticName, detail: .none, hasIP: packetHasIP, tunnelled: insideTunnel)
    }

    /// A weird about the flow between two addresses (IPv6 header chains, fragments).
    @inline(never)
    mutating func note(_ weird: Weird, from source: IPAddress, to destination: IPAddress, detail: WeirdDetail = .none) {
        byCase[weird.ordinal] &+= 1
        reporter?.flowWeird(WeirdName(weird), source, destination, detail: detail)
    }

    /// A weird whose name is made on the spot (an analyzer's violation): counted only, as
    /// Zeek logs violations elsewhere (analyzer.log).
    @inline(never)
    public mutating func note(named name: String) {
        named[name, default: 0] += 1
    }

    /// Every weird seen, by name.
    public var counts: [String: UInt64] {
        var all = named
        for (index, count) in byCase.enumerated() where count > 0 { all[Weird.allCases[index].rawValue, default: 0] += count }
        return all
    }

    public subscript(name: String) -> UInt64 { counts[name] ?? 0 }
}

/// A connection as weird.log names it: its uid and its id, in its orientation.
struct WeirdConnection {
    var uid: UInt64
    var origAddress: IPAddress, origPort: UInt16
    var respAddress: IPAddress, respPort: UInt16
    var proto: UInt8
}

extension Weird {
    /// The case's place in `allCases`: a case without payload is stored as its number in
    /// declaration order, which is the order of `allCases`.
    @inline(__always) var ordinal: Int { Int(unsafeBitCast(self, to: UInt8.self)) }
}
