#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TrawlPluginSDK

/// Trawl::PF_Ring: live capture through PF_RING's library, loaded at run time. A cluster id
/// makes the processes that share it split the interface's traffic, flow by flow (as
/// AF_PACKET's fanout does), in the way `PF_Ring::cluster_type` says.
///
/// Packets are copied once, by the library, into a batch arena: a zero-copy packet from
/// pfring_recv is valid only until the next call, and a batch holds many.
public final class PFRingSource: SourcePlugin {
    /// PF_RING's cluster_type enum, by the names the option takes, in its order.
    enum ClusterType: String, SourceOptionChoice {
        case flow, roundRobin = "round_robin", twoTuple = "2_tuple", fourTuple = "4_tuple", fiveTuple = "5_tuple"
        case tcpFiveTuple = "tcp_5_tuple", innerFlow = "inner_flow", innerTwoTuple = "inner_2_tuple"
        case innerFourTuple = "inner_4_tuple", innerFiveTuple = "inner_5_tuple", innerTCPFiveTuple = "inner_tcp_5_tuple"

        /// The value of PF_RING's cluster_type enum.
        var value: UInt32 { UInt32(Self.allCases.firstIndex(of: self)!) }
    }

    /// The options, each with its default, stated here once.
    enum Options {
        static let clusterID = SourceOption("cluster_id", default: UInt64(0), "PF_RING cluster to join, so that the processes in it share the traffic (0: none)")
        static let clusterType = SourceOption("cluster_type", default: ClusterType.flow,
                                              "How a cluster spreads packets: per flow (flow: 6-tuple with VLAN; 2_tuple, 4_tuple, 5_tuple, tcp_5_tuple; inner_*: on tunnel contents) or round_robin")
        static let snaplen = SourceOption("snaplen", default: UInt64(65_535), "Bytes kept of each packet")
        static let promiscuous = SourceOption("promiscuous", default: true, "Put the interface into promiscuous mode")
    }

    public static let metadata = PluginMetadata(
        name: "Trawl::PF_Ring",
        description: "Packet acquisition via PF_RING",
        version: "1.0.0",
        optionNamespace: "PF_Ring",
        componentName: "PF_RingReader",
        prefix: "pf_ring",
        modes: [.live],
        options: [Options.clusterID.declaration, Options.clusterType.declaration, Options.snaplen.declaration,
                  Options.promiscuous.declaration]
    )

    public let info: PluginSourceInfo
    private let library: PFRingLibrary
    private let ring: PFRingLibrary.Ring
    private let device: String
    private let snaplen: Int
    private let timeoutMilliseconds: UInt32
    private let header = UnsafeMutableRawPointer.allocate(byteCount: PFRingLibrary.headerSize, alignment: 16)
    private let arena: UnsafeMutablePointer<UInt8>
    private let arenaSize: Int
    private var enabled = false
    /// Set by interrupt() on another thread while nextBatch may run: an atomic.
    private let interrupted = Atomic<Bool>(false)

    public init(request: OpenRequest) throws(PluginError) {
        library = try PFRingLibrary.shared()
        device = request.path
        snaplen = Int(clamping: request[Options.snaplen])
        guard snaplen > 0 && snaplen <= 262_144 else {
            throw PluginError("PF_Ring::snaplen must be from 1 to 262144, not \(snaplen)", code: .invalid)
        }
        timeoutMilliseconds = UInt32(clamping: request.timeoutMilliseconds)
        var flags = PFRingLibrary.longHeader | PFRingLibrary.timestamp
        if request[Options.promiscuous] { flags |= PFRingLibrary.promiscuous }
        errno = 0
        guard let opened = library.open(device, UInt32(snaplen), flags) else {
            let code = errno
            throw Self.describeOpen(code, library: library.path)
        }
        ring = opened
        arenaSize = 1 << 20
        arena = .allocate(capacity: arenaSize + snaplen)
        if let setName = library.setApplicationName {
            var name = Array("trawl".utf8CString)
            _ = setName(opened, &name)
        }
        if let setMode = library.setSocketMode { _ = setMode(opened, 1) } // receive only
        let clusterID = request[Options.clusterID]
        if clusterID > 0 {
            let type = request[Options.clusterType]
            guard clusterID <= UInt64(UInt32.max) else {
                library.close(opened)
                throw PluginError("PF_Ring::cluster_id must be below 2^32", code: .invalid)
            }
            let status = library.setCluster(opened, UInt32(clusterID), type.value)
            guard status == 0 else {
                library.close(opened)
                throw PluginError("cannot join PF_RING cluster \(clusterID) (PF_Ring::cluster_type=\(type.rawValue)): error \(status)", code: .busy)
            }
        }
        // A descriptor to poll lets trawl wait on several interfaces at once.
        let descriptor = library.selectableFD.map { $0(opened) } ?? -1
        info = PluginSourceInfo(linkType: 1, snaplen: UInt32(snaplen), selectableFD: descriptor >= 0 ? descriptor : -1, isLive: true)
    }

    deinit {
        library.close(ring)
        header.deallocate()
        arena.deallocate()
    }

    static func describeOpen(_ code: Int32, library: String) -> PluginError {
        switch code {
        case ENODEV, ENXIO: return PluginError("No such device", code: .noSuchDevice, errno: code)
        case EPERM, EACCES: return PluginError("permission denied: PF_RING capture needs root (or CAP_NET_ADMIN)", code: .permission, errno: code)
        case 0: return PluginError("pfring_open failed (\(library)); is the pf_ring kernel module loaded?", code: .unavailable)
        default:
            return PluginError("pfring_open failed: \(String(cString: strerror(code))); is the pf_ring kernel module loaded?",
                               code: .unavailable, errno: code)
        }
    }

    // MARK: Reading

    public func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool {
        if !enabled {
            let status = library.enable(ring)
            guard status == 0 else { throw PluginError("cannot enable the PF_RING socket on \(device): error \(status)", code: .io) }
            enabled = true
        }
        var used = 0
        var waited = false
        // The arena has snaplen bytes past arenaSize: a packet always fits while used < arenaSize.
        while !batch.isFull && used < arenaSize {
            if interrupted.exchange(false, ordering: .acquiringAndReleasing) { break }
            var data: UnsafeMutablePointer<UInt8>? = arena + used
            // A buffer length makes the library copy the packet into the arena.
            let status = library.receive(ring, &data, UInt32(snaplen), header, 0)
            if status < 0 { throw PluginError("pfring_recv failed on \(device): error \(status)", code: .io) }
            if status == 0 {
                if batch.count > 0 || waited || timeoutMilliseconds == 0 { break }
                waited = true
                if let poll = library.poll { _ = poll(ring, timeoutMilliseconds) } else { usleep(1000) }
                continue
            }
            let captured = min(Int(header.load(fromByteOffset: PFRingLibrary.capturedOffset, as: UInt32.self)), snaplen)
            let wire = header.load(fromByteOffset: PFRingLibrary.wireOffset, as: UInt32.self)
            var nanoseconds = header.load(fromByteOffset: PFRingLibrary.nanosecondsOffset, as: UInt64.self)
            if nanoseconds == 0 { // no extended timestamp: the timeval
                let seconds = header.load(fromByteOffset: 0, as: Int.self), micro = header.load(fromByteOffset: 8, as: Int.self)
                nanoseconds = UInt64(max(seconds, 0)) &* 1_000_000_000 &+ UInt64(max(micro, 0)) &* 1000
            }
            let start = arena + used
            batch.append(timestampNanoseconds: nanoseconds, capturedLength: UInt32(captured), wireLength: wire, data: start)
            used += captured
        }
        return true
    }

    public func setFilter(_ expression: String) throws(PluginError) {
        var text = Array(expression.utf8CString)
        let status = library.setFilter(ring, &text)
        guard status == 0 else {
            throw PluginError("invalid filter '\(expression)': PF_RING could not install it (error \(status))", code: .invalid)
        }
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        var raw = [UInt64](repeating: 0, count: PFRingLibrary.statsSize / 8)
        let status = raw.withUnsafeMutableBytes { library.stats(ring, $0.baseAddress!) }
        guard status == 0 else { throw PluginError("pfring_stats failed on \(device): error \(status)", code: .io) }
        var stats = trawl_stats()
        stats.received = raw[0]
        stats.dropped = raw[1]
        stats.valid = UInt64(TRAWL_STAT_RECEIVED | TRAWL_STAT_DROPPED)
        return stats
    }

    public func interrupt() {
        interrupted.store(true, ordering: .releasing)
        library.breakLoop(ring)
    }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(PFRingSource.self) }
