import CNetmap
import NetmapInterface
import TrawlPluginSDK
import TrawlPluginSupport
#if canImport(Glibc)
import Glibc
#endif

/// Trawl::Netmap: live capture through netmap, spoken directly: /dev/netmap is opened, the
/// port registered (NIOCCTRL; the legacy NIOCREGIF on kernels without it), the shared
/// region mapped, and the receive rings read in place. Packets are handed out where they
/// lie in netmap's buffers; their slots go back to the kernel on the next read.
public final class NetmapSource: SourcePlugin {
    public static let metadata = PluginMetadata(
        name: "Trawl::Netmap",
        description: "Packet acquisition via netmap",
        version: "1.0.0",
        optionNamespace: "Netmap",
        componentName: "NetmapReader",
        prefix: "netmap",
        modes: [.live],
        options: []
    )

    /// Where the control device is; a test may point elsewhere.
    static var devicePath: String { getenv("TRAWL_NETMAP_DEVICE").map { String(cString: $0) } ?? "/dev/netmap" }

    public let info: PluginSourceInfo
    private let port: NetmapPort
    private let device: Int32
    private let wait: WakeupWait // the port, or interrupt()
    private let region: UnsafeMutableRawPointer
    private let regionSize: Int
    private let reader: NetmapReader
    private let timeoutMilliseconds: Int32
    private var filter: PacketFilter?
    private var received: UInt64 = 0
    /// A NIC's own drop counter; pipes have none.
    private let interfaceDrops: InterfaceDrops?

    public init(request: OpenRequest) throws(PluginError) {
        do { port = try NetmapPort(parsing: request.path) } catch { throw PluginError(error.description, code: .invalid) }
        timeoutMilliseconds = request.timeoutMilliseconds == 0 ? 0 : Int32(clamping: request.timeoutMilliseconds)

        let path = Self.devicePath
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw PluginError(errno == ENOENT
                ? "netmap is not available: \(path) not found; load the netmap kernel module"
                : "netmap is not available: \(path): \(String(cString: strerror(errno)))", code: .unavailable, errno: errno)
        }
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            throw errno == EACCES || errno == EPERM
                ? PluginError("permission denied opening \(path): netmap capture needs root, or read-write access to \(path)",
                              code: .permission, errno: errno)
                : PluginError.system("cannot open \(path)", errno: errno)
        }
        var registration: Registration
        do { registration = try Self.register(port, on: fd) } catch { close(fd); throw error }
        guard let mapped = mmap(nil, registration.memorySize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0),
              mapped != MAP_FAILED else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw PluginError("cannot map netmap's memory (\(registration.memorySize) bytes): \(reason)", code: .noMemory)
        }
        do { wait = try WakeupWait(watching: fd) } catch {
            munmap(mapped, registration.memorySize)
            close(fd)
            throw error
        }
        device = fd
        region = mapped
        regionSize = registration.memorySize
        reader = NetmapReader(rings: ReceiveRings(interface: mapped + registration.interfaceOffset, mode: port.mode.mode,
                                                  ring: port.mode.ring, apiVersion: registration.apiVersion))
        info = PluginSourceInfo(linkType: 1, snaplen: 65_535, selectableFD: fd, isLive: true)
        interfaceDrops = port.isPipe ? nil : InterfaceDrops(interface: port.interface)
        registration.release()
    }

    deinit {
        munmap(region, regionSize)
        close(device)
    }

    // MARK: Registration

    private struct Registration {
        var interfaceOffset: Int
        var memorySize: Int
        var apiVersion: UInt16
        func release() {}
    }

    /// Binds the port to the descriptor: NIOCCTRL with a register request, or NIOCREGIF on
    /// a kernel that does not know NIOCCTRL.
    private static func register(_ port: NetmapPort, on fd: Int32) throws(PluginError) -> Registration {
        var body = trawl_nmreq_register()
        body.mode = port.mode.mode
        body.ring_id = port.mode.ring
        body.flags = port.flags
        var header = trawl_nmreq_header()
        header.version = UInt16(TRAWL_NETMAP_API)
        header.request_type = UInt16(TRAWL_NETMAP_REQ_REGISTER)
        guard copyName(port.kernelName, into: &header.name) else {
            throw PluginError("netmap port name '\(port.kernelName)' is too long", code: .invalid)
        }
        let status = withUnsafeMutablePointer(to: &body) { bodyPointer -> Int32 in
            header.body = UInt64(UInt(bitPattern: bodyPointer))
            return ioctl(fd, trawl_netmap_ctrl_request, &header)
        }
        if status == 0 {
            return Registration(interfaceOffset: Int(body.offset), memorySize: Int(body.memory_size), apiVersion: header.version)
        }
        let failure = errno
        if failure == ENOTTY || failure == EOPNOTSUPP { return try registerLegacy(port, on: fd) }
        throw describeRegistration(failure, port)
    }

    private static func registerLegacy(_ port: NetmapPort, on fd: Int32) throws(PluginError) -> Registration {
        var request = trawl_nmreq_legacy()
        request.version = UInt32(TRAWL_NETMAP_LEGACY_API)
        request.ring_id = port.mode.ring
        request.flags = port.mode.mode | UInt32(truncatingIfNeeded: port.flags)
        var name = port.kernelName
        // Older kernels do not read pipes from the name: the parent goes in the name, the
        // end in the mode (NR_REG_PIPE_MASTER 5, NR_REG_PIPE_SLAVE 6), the pipe in the ring.
        switch port.rings {
        case let .pipeMaster(id), let .pipeSlave(id):
            guard let pipe = UInt16(id), pipe <= 4095 else {
                throw PluginError("this kernel's netmap names pipes by number (0-4095), not '\(id)'", code: .notSupported)
            }
            name = port.interface
            request.ring_id = pipe
            request.flags = (port.rings == .pipeMaster(id) ? 5 : 6) | UInt32(truncatingIfNeeded: port.flags)
        default:
            break
        }
        guard copyName(name, into: &request.name) else {
            throw PluginError("netmap port name '\(name)' is too long for this kernel's netmap (15 bytes at most)", code: .invalid)
        }
        guard ioctl(fd, trawl_netmap_register_legacy_request, &request) == 0 else { throw describeRegistration(errno, port) }
        return Registration(interfaceOffset: Int(request.offset), memorySize: Int(request.memory_size), apiVersion: 11)
    }

    private static func describeRegistration(_ code: Int32, _ port: NetmapPort) -> PluginError {
        switch code {
        case ENXIO, ENODEV, ENOENT: return PluginError("No such device", code: .noSuchDevice, errno: code)
        case EBUSY:
            return PluginError("\(port.kernelName) is busy: another process holds these rings exclusively (or asks to)", code: .busy, errno: code)
        case EINVAL:
            return PluginError("netmap refused to register \(port.kernelName) (the kernel module's API version or the ring number may not fit)",
                               code: .notSupported, errno: code)
        default: return PluginError.system("cannot register \(port.kernelName) with netmap", errno: code)
        }
    }

    /// Copies `name` with its terminating zero into a fixed C array; false if it does not fit.
    private static func copyName<T>(_ name: String, into field: inout T) -> Bool {
        let bytes = Array(name.utf8)
        return withUnsafeMutableBytes(of: &field) { raw in
            guard bytes.count < raw.count else { return false }
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
            return true
        }
    }

    // MARK: Reading

    public func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool {
        try reader.next(wait: waitForPackets, now: NetmapReader.wallClock) { data, length, stamp in
            guard !batch.isFull else { return false }
            self.received &+= 1
            if let filter = self.filter, !filter.matches(data, captured: UInt32(length), wire: UInt32(length)) {
                return true // consumed, not kept
            }
            batch.append(timestampNanoseconds: stamp, capturedLength: UInt32(length), wireLength: UInt32(length), data: data)
            return true
        }
        return true
    }

    /// Polls the port (which syncs its receive rings), or waits for an interrupt.
    private func waitForPackets() throws(PluginError) -> Bool {
        guard case let .polled(revents) = try wait.wait(timeoutMilliseconds: timeoutMilliseconds) else { return false }
        if revents & Int16(POLLERR) != 0 { throw PluginError("netmap reported an error on \(port.kernelName)", code: .io) }
        if timeoutMilliseconds == 0 { _ = ioctl(device, trawl_netmap_rx_sync_request) } // no poll wait: sync by hand
        return true
    }

    /// Filters run here, in user space, with libpcap's interpreter: netmap has no kernel filter.
    public func setFilter(_ expression: String) throws(PluginError) {
        filter = try PacketFilter(compiling: expression, linkType: info.linkType, snaplen: info.snaplen)
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        var stats = trawl_stats()
        stats.received = received
        stats.valid = UInt64(TRAWL_STAT_RECEIVED)
        interfaceDrops?.add(to: &stats)
        return stats
    }

    public func interrupt() { wait.interrupt() }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(NetmapSource.self) }
