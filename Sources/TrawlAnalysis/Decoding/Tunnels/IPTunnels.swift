/// The bounds of the IP tunnel table (see `IPTunnels`).
public struct IPTunnelLimits: Sendable {
    public var maximumTunnels = 65_536
    /// Zeek's Tunnel::ip_tunnel_timeout: 24 hours without traffic.
    public var timeout: UInt64 = 86_400_000_000_000
    public init() {}
}

/// The IP-in-IP and GRE tunnels seen: each pair of outer addresses (in either direction)
/// keeps one uid, which the connections inside name as their tunnel parent, while it stays
/// active. Zeek forgets a tunnel after `Tunnel::ip_tunnel_timeout` (24 hours) without
/// traffic, and so does this table; it also holds at most `maximumTunnels`, dropping the
/// least recently used beyond that (Zeek's table has no bound).
final class IPTunnels {

    private struct Pair: Hashable {
        var low: IPAddress, high: IPAddress
    }

    private struct Tunnel {
        var uid: UInt64
        var lastSeen: UInt64
    }

    let limits: IPTunnelLimits
    private var table = RecencyTable<Pair, Tunnel>()
    private var clock: UInt64 = 0
    private(set) var expired: UInt64 = 0
    private(set) var evicted: UInt64 = 0
    private(set) var peak = 0
    var count: Int { table.count }

    init(limits: IPTunnelLimits = IPTunnelLimits()) {
        self.limits = limits
    }

    /// The uid of the tunnel between `a` and `b`, made with `newUID` if it is new.
    func uid(between a: IPAddress, and b: IPAddress, at time: UInt64, newUID: () -> UInt64) -> UInt64 {
        advance(to: time)
        let pair = a < b ? Pair(low: a, high: b) : Pair(low: b, high: a)
        if let slot = table.find(pair) {
            table[slot].lastSeen = clock
            table.touch(slot)
            return table[slot].uid
        }
        if table.count >= limits.maximumTunnels && table.oldest >= 0 {
            evicted += 1
            table.remove(table.oldest)
        }
        let uid = newUID()
        _ = table.insert(pair, Tunnel(uid: uid, lastSeen: clock))
        peak = max(peak, table.count)
        return uid
    }

    /// Forgets the tunnels idle for longer than the timeout.
    func advance(to time: UInt64) {
        if time > clock { clock = time }
        while table.oldest >= 0 && table[table.oldest].lastSeen &+ limits.timeout <= clock {
            expired += 1
            table.remove(table.oldest)
        }
    }
}
