import CLibpcap
import CLinuxPacket
import TrawlPluginSDK
import TrawlPluginSupport
#if canImport(Glibc)
import Glibc
#endif

/// Trawl::AF_Packet: live capture from a Linux TPACKET_V3 memory-mapped ring, with fanout
/// so that several processes share one interface's traffic, flow by flow.
///
/// Packets are handed out in place: a batch points into ring blocks, and a block goes back
/// to the kernel only on the next read after its last packet was handed out.
public final class AFPacketSource: SourcePlugin {
    public static let metadata = PluginMetadata(
        name: "Trawl::AF_Packet",
        description: "Packet acquisition via AF_Packet",
        version: "1.0.0",
        optionNamespace: "AF_Packet",
        componentName: "AF_PacketReader",
        prefix: "af_packet",
        modes: [.live],
        options: Options.all
    )

    /// The options, each with its default, stated here once.
    enum Options {
        static let bufferSize = SourceOption("buffer_size", default: UInt64(128 * 1024 * 1024), "Size of the ring, in bytes")
        static let blockSize = SourceOption("block_size", default: UInt64(1024 * 1024), "Size of one ring block, in bytes (a power of two, at least a page)")
        static let blockTimeout = SourceOption("block_timeout", default: UInt64(10), "Milliseconds after which the kernel hands over a block that is not full")
        static let enableFanout = SourceOption("enable_fanout", default: true, "Join a fanout group so that processes on one interface share its flows")
        static let fanoutMode = SourceOption("fanout_mode", default: FanoutMode.hash, "How the kernel spreads packets over the group's members")
        static let fanoutID = SourceOption("fanout_id", default: UInt64(23), "Fanout group id; unique per interface within a network namespace")
        static let enableDefrag = SourceOption("enable_defrag", default: false, "Let the kernel reassemble IP fragments before hashing, so fragments follow their flow")
        static let promiscuous = SourceOption("promiscuous", default: true, "Receive all packets on the link (PACKET_MR_PROMISC; the interface's IFF_PROMISC flag is not touched)")
        static let linkType = SourceOption("link_type", default: UInt64(1), "Link type reported for the interface (1 = Ethernet); raw-IP interfaces report 101")
        static let hardwareTimestamps = SourceOption("enable_hw_timestamping", default: false, "Timestamp packets in the NIC (SIOCSHWTSTAMP)")
        static let checksumMode = SourceOption("checksum_validation_mode", default: ChecksumMode.on,
                                               "on: analysis verifies checksums; off: it trusts them all; kernel: it trusts what the kernel or NIC verified")
        static let all: [PluginOption] = [
            bufferSize.declaration, blockSize.declaration, blockTimeout.declaration, enableFanout.declaration,
            fanoutMode.declaration, fanoutID.declaration, enableDefrag.declaration, promiscuous.declaration,
            linkType.declaration, hardwareTimestamps.declaration, checksumMode.declaration,
        ]
    }

    public let info: PluginSourceInfo
    private let interface: String
    private let socket: Int32
    private let wait: WakeupWait // the socket, or interrupt()
    private let ring: Ring
    private let timeoutMilliseconds: Int32
    private let checksumMode: ChecksumMode
    private let reinsertVLANTags: Bool
    private var filterInstalled = false
    private var counters = trawl_stats()
    private let interfaceDrops: InterfaceDrops

    public init(request: OpenRequest) throws(PluginError) {
        interface = request.path
        timeoutMilliseconds = request.timeoutMilliseconds == 0 ? 0 : Int32(clamping: request.timeoutMilliseconds)
        checksumMode = request[Options.checksumMode]
        let ifindex = if_nametoindex(interface)
        guard ifindex != 0 else { throw PluginError("No such device", code: .noSuchDevice) }

        // Protocol 0: no packet reaches the socket until it is bound below.
        let fd = Glibc.socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0)
        guard fd >= 0 else { throw Self.socketFailure(errno) }
        var cleanup = Cleanup(fd: fd)
        defer { cleanup.run() }

        try Self.set(fd, PACKET_VERSION, Int32(TPACKET_V3.rawValue), "select TPACKET_V3")
        // Headroom before each frame, so a VLAN tag the kernel stripped can be put back in place.
        try Self.set(fd, PACKET_RESERVE, UInt32(4), "reserve VLAN headroom")

        var arpType: Int32 = 0
        if trawl_interface_arp_type(fd, interface, &arpType) != 0 { arpType = Int32(ARPHRD_ETHER) }
        let isEthernet = arpType == ARPHRD_ETHER || arpType == ARPHRD_LOOPBACK
        reinsertVLANTags = isEthernet

        let blockSize = request[Options.blockSize]
        let bufferSize = request[Options.bufferSize]
        let layout = try RingLayout(blockSize: blockSize, bufferSize: bufferSize, blockTimeout: request[Options.blockTimeout])
        var ringRequest = layout.request
        guard setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &ringRequest, socklen_t(MemoryLayout<tpacket_req3>.size)) == 0 else {
            throw PluginError("cannot create a ring of \(layout.blockCount) blocks of \(blockSize) bytes: \(Self.describe(errno)); try a smaller AF_Packet::buffer_size or AF_Packet::block_size",
                              code: PluginErrorCode(errno: errno), errno: errno)
        }
        let ring = try Ring(fd: fd, layout: layout)
        cleanup.ring = ring

        // Deliver nothing until a filter is installed, or the first read opens the tap.
        try Self.attach(fd, program: .dropAll, "install the initial filter")

        var address = sockaddr_ll()
        address.sll_family = UInt16(AF_PACKET)
        address.sll_protocol = UInt16(ETH_P_ALL).bigEndian
        address.sll_ifindex = Int32(ifindex)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) }
        }
        guard bound == 0 else { throw PluginError.system("cannot bind to \(interface)", errno: errno) }

        if request[Options.promiscuous] {
            var membership = packet_mreq()
            membership.mr_ifindex = Int32(ifindex)
            membership.mr_type = UInt16(PACKET_MR_PROMISC)
            guard setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &membership, socklen_t(MemoryLayout<packet_mreq>.size)) == 0 else {
                throw PluginError.system("cannot enter promiscuous mode", errno: errno)
            }
        }

        if request[Options.hardwareTimestamps] {
            guard trawl_enable_hw_timestamping(fd, interface) == 0 else {
                throw PluginError("hardware timestamping is not available on \(interface): \(Self.describe(errno))", code: .notSupported, errno: errno)
            }
            try Self.set(fd, PACKET_TIMESTAMP, Int32(SOF_TIMESTAMPING_RAW_HARDWARE), "select hardware timestamps")
        }

        if request[Options.enableFanout] {
            try Fanout.join(fd, id: request[Options.fanoutID], mode: request[Options.fanoutMode],
                            defragment: request[Options.enableDefrag], interface: interface)
        }

        wait = try WakeupWait(watching: fd)

        var linkType = UInt32(clamping: request[Options.linkType])
        if arpType == ARPHRD_NONE { linkType = 101 } // tun and other raw-IP devices: no link header
        var network: bpf_u_int32 = 0, netmask: bpf_u_int32 = 0
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        if pcap_lookupnet(interface, &network, &netmask, &errorBuffer) != 0 { netmask = 0 }

        info = PluginSourceInfo(linkType: linkType, snaplen: UInt32(layout.maximumFrame),
                                netmask: UInt32(bigEndian: netmask), selectableFD: fd, isLive: true)
        socket = fd
        self.ring = ring
        interfaceDrops = InterfaceDrops(interface: interface)
        cleanup.disarm()
    }

    deinit {
        ring.unmap()
        close(socket)
    }

    // MARK: Reading

    public func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool {
        if !filterInstalled { try openTap() }
        ring.releaseFinishedBlocks()
        var waited = false
        while !batch.isFull {
            guard let packet = ring.nextPacket() else {
                // The current block is still the kernel's. Return what we have, else wait once.
                if batch.count > 0 || waited || timeoutMilliseconds == 0 { break }
                if try !waitForBlock() { break }
                waited = true
                continue
            }
            deliver(packet, into: &batch)
        }
        return true
    }

    /// Turns one ring frame into a batch entry, putting back a VLAN tag the kernel stripped.
    @inline(__always)
    private func deliver(_ header: UnsafeMutablePointer<tpacket3_hdr>, into batch: inout BatchOutput) {
        let h = header.pointee
        var data = UnsafeMutableRawPointer(header) + Int(h.tp_mac)
        var captured = h.tp_snaplen
        var wire = h.tp_len
        if reinsertVLANTags && h.tp_status & UInt32(TP_STATUS_VLAN_VALID) != 0 {
            let tpid = h.tp_status & UInt32(TP_STATUS_VLAN_TPID_VALID) != 0 ? h.hv1.tp_vlan_tpid : UInt16(ETH_P_8021Q)
            // Move both MAC addresses 4 bytes back into the reserved headroom; the tag goes after them.
            (data - 4).copyMemory(from: data, byteCount: 12)
            data -= 4
            data.storeBytes(of: tpid.bigEndian, toByteOffset: 12, as: UInt16.self)
            data.storeBytes(of: UInt16(truncatingIfNeeded: h.hv1.tp_vlan_tci).bigEndian, toByteOffset: 14, as: UInt16.self)
            captured += 4
            wire += 4
        }
        batch.append(timestampNanoseconds: UInt64(h.tp_sec) &* 1_000_000_000 &+ UInt64(h.tp_nsec),
                     capturedLength: captured, wireLength: wire,
                     data: UnsafePointer(data.assumingMemoryBound(to: UInt8.self)),
                     flags: checksumMode.flags(status: h.tp_status))
    }

    /// Waits for the socket or an interrupt. False when interrupted.
    private func waitForBlock() throws(PluginError) -> Bool {
        guard case let .polled(revents) = try wait.wait(timeoutMilliseconds: timeoutMilliseconds) else { return false }
        if revents & Int16(POLLERR) != 0 {
            var pending: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(socket, SOL_SOCKET, SO_ERROR, &pending, &length)
            if pending == ENETDOWN { throw PluginError("interface \(interface) went down", code: .noSuchDevice, errno: pending) }
            if pending != 0 { throw PluginError(Self.describe(pending), code: PluginErrorCode(errno: pending), errno: pending) }
        }
        return true
    }

    /// Replaces the initial drop-all filter with one that takes everything.
    private func openTap() throws(PluginError) {
        try Self.attach(socket, program: .acceptAll, "open the capture")
        filterInstalled = true
    }

    public func setFilter(_ expression: String) throws(PluginError) {
        let program = BPFProgram(try PacketFilter(compiling: expression, linkType: info.linkType, netmask: info.netmask))
        try Self.attach(socket, program: program, "install the filter")
        filterInstalled = true
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        // The kernel resets its counters on every read, so they are summed here.
        var kernel = tpacket_stats_v3()
        var length = socklen_t(MemoryLayout<tpacket_stats_v3>.size)
        guard getsockopt(socket, SOL_PACKET, PACKET_STATISTICS, &kernel, &length) == 0 else {
            throw PluginError.system("cannot read PACKET_STATISTICS", errno: errno)
        }
        counters.received &+= UInt64(kernel.tp_packets)
        counters.dropped &+= UInt64(kernel.tp_drops)
        counters.valid = UInt64(TRAWL_STAT_RECEIVED | TRAWL_STAT_DROPPED)
        interfaceDrops.add(to: &counters)
        return counters
    }

    public func interrupt() { wait.interrupt() }

    // MARK: Helpers

    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

    static func socketFailure(_ code: Int32) -> PluginError {
        code == EPERM || code == EACCES
            ? PluginError("permission denied: AF_PACKET capture needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode and fanout)",
                          code: .permission, errno: code)
            : PluginError.system("cannot open an AF_PACKET socket", errno: code)
    }

    static func set<T: BitwiseCopyable>(_ fd: Int32, _ option: Int32, _ value: T, _ what: String) throws(PluginError) {
        var value = value
        guard setsockopt(fd, SOL_PACKET, option, &value, socklen_t(MemoryLayout<T>.size)) == 0 else {
            throw PluginError.system("cannot \(what)", errno: errno)
        }
    }

    static func attach(_ fd: Int32, program: BPFProgram, _ what: String) throws(PluginError) {
        let failed = program.withSocketProgram { (fprog: inout sock_fprog) -> Bool in
            setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, socklen_t(MemoryLayout<sock_fprog>.size)) != 0
        }
        if failed { throw PluginError.system("cannot \(what)", errno: errno) }
    }
}

/// Closes a half-opened socket and ring when `init` fails part way.
private struct Cleanup {
    let fd: Int32
    var ring: Ring?
    var armed = true
    init(fd: Int32) { self.fd = fd }
    mutating func disarm() { armed = false }
    func run() {
        guard armed else { return }
        ring?.unmap()
        close(fd)
    }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(AFPacketSource.self) }
