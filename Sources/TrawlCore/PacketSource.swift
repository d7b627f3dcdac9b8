/// Where a source reads from.
public enum SourceMode: Sendable, Equatable, CustomStringConvertible {
    case live     // an interface
    case offline  // a trace file

    public var description: String { self == .live ? "live" : "trace" }
}

/// The set of modes a component supports.
public struct SourceModes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let live = SourceModes(rawValue: 1)    // TRAWL_MODE_LIVE
    public static let offline = SourceModes(rawValue: 2) // TRAWL_MODE_OFFLINE

    public func contains(_ mode: SourceMode) -> Bool {
        contains(mode == .live ? SourceModes.live : SourceModes.offline)
    }

    /// "live and trace input", "live input", "trace input", as `trawl -NN` says it.
    public var summary: String {
        switch (contains(.live), contains(.offline)) {
        case (true, true): return "live and trace input"
        case (true, false): return "live input"
        case (false, true): return "trace input"
        case (false, false): return "no input"
        }
    }
}

/// Properties of an open source.
public struct SourceInfo: Sendable, Equatable {
    /// A LINKTYPE_* value as written in pcap file headers (1 = Ethernet).
    public var linkType: UInt32
    public var snaplen: UInt32
    /// IPv4 netmask of a live interface in host order, 0 when unknown.
    public var netmask: UInt32
    /// A file descriptor to poll for readability, nil when the source has none.
    public var selectableFD: Int32?
    public var isLive: Bool

    public init(linkType: UInt32, snaplen: UInt32, netmask: UInt32 = 0, selectableFD: Int32? = nil, isLive: Bool) {
        self.linkType = linkType
        self.snaplen = snaplen
        self.netmask = netmask
        self.selectableFD = selectableFD
        self.isLive = isLive
    }
}

/// Counters the capture mechanism keeps. A field is nil when the source cannot measure it.
public struct CaptureStatistics: Sendable, Equatable {
    public var received: UInt64?
    public var dropped: UInt64?
    public var interfaceDropped: UInt64?
    public var filtered: UInt64?
    public var bytes: UInt64?

    public init(received: UInt64? = nil, dropped: UInt64? = nil, interfaceDropped: UInt64? = nil,
                filtered: UInt64? = nil, bytes: UInt64? = nil) {
        self.received = received
        self.dropped = dropped
        self.interfaceDropped = interfaceDropped
        self.filtered = filtered
        self.bytes = bytes
    }
}

/// A packet source: an open interface or trace file that delivers packets in batches.
///
/// Packets are read in place (`PacketBatch` holds pointers into the source's memory), so a
/// consumer must finish with a batch before it asks for the next one.
public protocol PacketSource: AnyObject {
    /// The name as the user gave it, e.g. "af_packet::eth0" or "trace.pcap".
    var name: String { get }
    var info: SourceInfo { get }

    /// Fills `batch` with up to `batch.capacity` packets. Returns false once offline input
    /// is exhausted. A live source may return true with `batch.count == 0` after its timeout.
    func nextBatch(_ batch: PacketBatch) throws(PacketSourceError) -> Bool

    /// Installs a BPF filter in tcpdump syntax.
    func setFilter(_ expression: String) throws(PacketSourceError)

    func statistics() throws(PacketSourceError) -> CaptureStatistics

    /// Makes a blocked `nextBatch` return soon. Safe to call from another thread.
    func interrupt()

    func close()

    /// What the source says beside its packets (warnings, weirds, a failure), if it can.
    var reports: SourceReports? { get }
}

extension PacketSource {
    public var reports: SourceReports? { nil }
}
