import TrawlCore

/// Where finished connections go. The tracker calls it on its log thread, one record at a
/// time, in order; `ConnectionTracker.finish()` returns after the last call.
public protocol ConnectionSink: AnyObject {
    func connectionEnded(_ record: ConnectionRecord)
    /// A weird.log row (`WeirdReporter`), in the order of the traffic among the records.
    func weird(_ record: WeirdRecord)
    /// Sends on what is buffered (ConnectionTracker.flushLogs, e.g. every second).
    func flush()
}

extension ConnectionSink {
    public func flush() {}
}

/// A finished connection, as conn.log describes it.
public struct ConnectionRecord: Sendable {
    public var start: UInt64
    public var uid: String
    public var origAddress: IPAddress, origPort: UInt16
    public var respAddress: IPAddress, respPort: UInt16
    public var proto: UInt8
    public var duration: UInt64
    public var origBytes: UInt64, respBytes: UInt64
    public var state: String
    public var localOrig: Bool, localResp: Bool
    public var missedBytes: UInt64
    public var history: String
    public var origPackets: UInt64, origIPBytes: UInt64
    public var respPackets: UInt64, respIPBytes: UInt64
    /// Uids of the connections or tunnels this one was carried in.
    public var tunnelParents: [String] = []

    public init(start: UInt64, uid: String, origAddress: IPAddress, origPort: UInt16, respAddress: IPAddress, respPort: UInt16,
                proto: UInt8, duration: UInt64, origBytes: UInt64, respBytes: UInt64, state: String, localOrig: Bool,
                localResp: Bool, missedBytes: UInt64, history: String, origPackets: UInt64, origIPBytes: UInt64,
                respPackets: UInt64, respIPBytes: UInt64, tunnelParents: [String] = []) {
        self.start = start
        self.uid = uid
        self.origAddress = origAddress
        self.origPort = origPort
        self.respAddress = respAddress
        self.respPort = respPort
        self.proto = proto
        self.duration = duration
        self.origBytes = origBytes
        self.respBytes = respBytes
        self.state = state
        self.localOrig = localOrig
        self.localResp = localResp
        self.missedBytes = missedBytes
        self.history = history
        self.origPackets = origPackets
        self.origIPBytes = origIPBytes
        self.respPackets = respPackets
        self.respIPBytes = respIPBytes
        self.tunnelParents = tunnelParents
    }
}

/// What the log thread is given: a finished connection to make a record of, or the record.
enum LogItem {
    case finished(FinishedConnection)
    case record(ConnectionRecord)
    case weird(WeirdEvent)
    case flush
}

/// A connection that has ended, with its rare state taken from the side tables: all that
/// its conn.log record is made of, built on the log thread.
struct FinishedConnection {
    var connection: Connection
    var key: ConnectionKey
    var moreHistory: [UInt8] = []
    var tunnelParents: [UInt64] = []
    var missedBytes: UInt64 = 0

    init(connection: Connection, key: ConnectionKey) {
        self.connection = connection
        self.key = key
    }

    func record(localNetworks: SubnetSet) -> ConnectionRecord {
        let c = connection
        let history = c.history.text(more: moreHistory)
        // Zeek's last time can go back with the packets' timestamps: no duration then.
        let duration = c.last > c.start ? c.last - c.start : 0
        let origAddress = c.origIsLow ? key.lowAddress : key.highAddress
        let respAddress = c.origIsLow ? key.highAddress : key.lowAddress
        return ConnectionRecord(
            start: c.start, uid: UIDGenerator.format(c.uid), origAddress: origAddress, origPort: c.origPort,
            respAddress: respAddress, respPort: c.respPort, proto: c.proto, duration: duration,
            origBytes: c.origSize, respBytes: c.respSize, state: c.state(history: history.utf8),
            localOrig: localNetworks.contains(origAddress),
            localResp: localNetworks.contains(respAddress),
            missedBytes: missedBytes, history: history,
            origPackets: c.orig.packets, origIPBytes: c.orig.ipBytes, respPackets: c.resp.packets, respIPBytes: c.resp.ipBytes,
            tunnelParents: tunnelParents.map(UIDGenerator.format)
        )
    }
}

/// The tunnels a connection travelled in: the last one's identity (`Encapsulation.stack`),
/// how often it changed, and the innermost tunnel of each (its tunnel_parents).
struct TunnelHistory {
    var stack: UInt64
    var changes = 0
    var parents: [UInt64]

    init(stack: UInt64, parents: [UInt64]) {
        self.stack = stack
        self.parents = parents
    }
}

/// One direction of one connection, as the side tables know it.
struct SideKey: Hashable {
    var uid: UInt64
    var isOrig: Bool
}

/// The counts behind a direction's scaled history letters (C, T, W, G), and the bytes its
/// content gaps missed.
struct RareCounts {
    var corrupt: UInt32 = 0
    var retransmissions: UInt32 = 0
    var zeroWindows: UInt32 = 0
    var gaps: UInt32 = 0
    var missedBytes: UInt64 = 0
}

/// Zeek-style connection uids: 64 random bits, written as "C" and base-62 digits.
enum UIDGenerator {
    /// A uid as Zeek spells them: "C" and the number in base 62, lowest digit first.
    static func format(_ number: UInt64) -> String {
        // At most 1 + 11 characters: a small string, built in place without an allocation.
        // Two 64-bit divisions split the number into chunks of five digits, whose digits
        // then come from cheap 32-bit divisions.
        String(unsafeUninitializedCapacity: 12) { text in
            text[0] = UInt8(ascii: "C")
            var count = 1
            func put(_ chunk: UInt32, all: Bool) {
                var rest = chunk
                var written = 0
                repeat {
                    let digit = UInt8(rest % 62)
                    text[count] = digit < 10 ? 0x30 + digit : digit < 36 ? 0x41 + digit - 10 : 0x61 + digit - 36
                    count += 1
                    written += 1
                    rest /= 62
                } while all ? written < 5 : rest > 0
            }
            let fiveDigits: UInt64 = 916_132_832 // 62^5
            var value = number
            for _ in 0..<2 {
                let chunk = UInt32(value % fiveDigits)
                value /= fiveDigits
                if value == 0 {
                    put(chunk, all: false)
                    return count
                }
                put(chunk, all: true)
            }
            put(UInt32(value), all: false)
            return count
        }
    }
}
