import CLibpcap
#if canImport(Glibc)
import Glibc
#endif
import TrawlPluginSDK
import TrawlPluginSupport
import PcapReaders

/// Trawl::Pcap: live interfaces and trace files through libpcap.
///
/// libpcap reuses one buffer for each packet it hands out, so to return whole batches this
/// source copies each packet once into an arena that stays valid until the next batch.
/// Classic pcap files, the common case, are read by `PcapFileReader` instead, which hands
/// out packets in place; libpcap still compiles their filters.
public final class PcapSource: SourcePlugin {
    public static let metadata = PluginMetadata(
        name: "Trawl::Pcap",
        description: "Packet acquisition via libpcap",
        version: "1.0.0",
        optionNamespace: "Pcap",
        componentName: "PcapReader",
        prefix: "pcap",
        modes: [.live, .offline],
        options: [Options.snaplen.declaration, Options.bufferSize.declaration, Options.promiscuous.declaration,
                  Options.immediateMode.declaration],
        // Classic pcap in both byte orders, micro- and nanosecond, and pcapng's section header.
        fileMagics: [[0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4], [0x4d, 0x3c, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d],
                     [0x0a, 0x0d, 0x0d, 0x0a]]
    )

    /// The options, each with its default, stated here once.
    enum Options {
        static let snaplen = SourceOption("snaplen", default: UInt64(262_144), "Bytes kept of each live packet")
        static let bufferSize = SourceOption("buffer_size", default: UInt64(128 * 1024 * 1024), "Kernel capture buffer of a live interface, in bytes")
        static let promiscuous = SourceOption("promiscuous", default: true, "Put a live interface into promiscuous mode")
        static let immediateMode = SourceOption("immediate_mode", default: false, "Deliver live packets as they arrive instead of in kernel-buffered blocks")
    }

    /// Where warnings and failures go beside the calls' errors.
    private let host: SourceHost

    /// libpcap's handle: a live interface, standard input, or a trace libpcap reads; nil for
    /// the traces read here (classic pcap files, pcapng files libpcap refuses), which are
    /// filtered with a PacketFilter.
    private let handle: OpaquePointer?
    private let nanosecond: Bool
    private let path: String
    public let info: PluginSourceInfo
    /// Where a batch's packets are copied; room for `arenaReserve` more always remains
    /// after a packet is accepted.
    private let arena: UnsafeMutablePointer<UInt8>
    private let arenaSize: Int
    private let arenaReserve: Int
    /// The batch being filled by `pcap_dispatch`'s callback, and how much arena it used.
    /// Touched for every packet, so dynamic exclusivity checks are off for them.
    @exclusivity(unchecked) private var filling: UnsafeMutablePointer<BatchOutput>?
    @exclusivity(unchecked) private var arenaUsed = 0
    /// The stdio buffer of a trace file; lives until pcap_close has closed the file.
    private let streamBuffer: UnsafeMutablePointer<CChar>?
    static let streamBufferSize = 1 << 20
    /// Set when `accept` stopped a dispatch because the arena is nearly full.
    private var brokeForArena = false
    /// A read error met after some packets of a batch; thrown on the next call.
    private var pendingFailure: PluginError?
    /// Set for pcapng files libpcap refuses.
    private let pcapng: PcapngReader?
    /// The pcapng path's filter, compiled once per link type met (interfaces may differ);
    /// nil for a link type it cannot be compiled for, whose packets are then dropped.
    private var pcapngFilterExpression: String?
    private var pcapngFilters: [UInt16: PacketFilter?] = [:]
    /// Set for classic pcap files in regular files.
    private let classic: PcapFileReader?
    @exclusivity(unchecked) private var classicFilter: PacketFilter?

    public init(request: OpenRequest) throws(PluginError) {
        path = request.path
        host = request.host
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        switch request.mode {
        case .offline where request.path != "-":
            if let reader = try PcapFileReader.open(request.path) {
                handle = nil
                streamBuffer = nil
                pcapng = nil
                classic = reader
                nanosecond = true
                info = PluginSourceInfo(linkType: reader.linkType, snaplen: reader.snaplen, isLive: false)
                break
            }
            fallthrough
        case .offline:
            let (opened, buffer, reader) = try Self.openTrace(request.path, errorBuffer: &errorBuffer)
            handle = opened
            streamBuffer = buffer
            pcapng = reader
            classic = nil
            if let opened {
                nanosecond = pcap_get_tstamp_precision(opened) == PCAP_TSTAMP_PRECISION_NANO
                info = PluginSourceInfo(linkType: PacketFilter.linkType(pcap_datalink(opened)),
                                        snaplen: UInt32(clamping: pcap_snapshot(opened)), isLive: false)
            } else {
                let reader = reader! // openTrace gives a handle or a reader
                nanosecond = true
                info = PluginSourceInfo(linkType: PacketFilter.linkType(Int32(reader.linkType)),
                                        snaplen: min(reader.snaplen, UInt32(Int32.max)), isLive: false)
            }
        case .live:
            guard let created = pcap_create(request.path, &errorBuffer) else {
                throw PluginError(Self.text(errorBuffer), code: .noSuchDevice)
            }
            do {
                (nanosecond, info) = try Self.activate(created, request: request)
            } catch {
                pcap_close(created)
                throw error
            }
            handle = created
            streamBuffer = nil
            pcapng = nil
            classic = nil
        }
        // libpcap never hands out more than max(snaplen, 256 KiB) bytes of one packet, and
        // the file readers here no more than 256 KiB (a live snaplen is the user's to choose).
        arenaReserve = max(Int(min(info.snaplen, 1 << 30)), 262_144)
        arenaSize = (1 << 20) + arenaReserve
        arena = .allocate(capacity: arenaSize)
    }

    deinit {
        if let handle { pcap_close(handle) }
        arena.deallocate()
        streamBuffer?.deallocate()
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Configures and activates a live capture; returns its timestamp precision and info.
    private static func activate(_ p: OpaquePointer, request: OpenRequest) throws(PluginError) -> (Bool, PluginSourceInfo) {
        pcap_set_snaplen(p, Int32(clamping: request[Options.snaplen]))
        pcap_set_promisc(p, request[Options.promiscuous] ? 1 : 0)
        pcap_set_buffer_size(p, Int32(clamping: request[Options.bufferSize]))
        pcap_set_immediate_mode(p, request[Options.immediateMode] ? 1 : 0)
        // A zero timeout means "never block": poll with a short timeout, then non-blocking.
        pcap_set_timeout(p, Int32(clamping: max(request.timeoutMilliseconds, 1)))
        _ = pcap_set_tstamp_precision(p, Int32(PCAP_TSTAMP_PRECISION_NANO)) // microseconds if unsupported
        let status = pcap_activate(p)
        if status < 0 {
            throw liveFailure(status, detail: String(cString: pcap_geterr(p)))
        }
        if request.timeoutMilliseconds == 0 {
            var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            if pcap_setnonblock(p, 1, &errorBuffer) != 0 { throw PluginError(Self.text(errorBuffer), code: .io) }
        }
        var network: bpf_u_int32 = 0
        var netmask: bpf_u_int32 = 0
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        if pcap_lookupnet(request.path, &network, &netmask, &errorBuffer) != 0 { netmask = 0 }
        let info = PluginSourceInfo(
            linkType: PacketFilter.linkType(pcap_datalink(p)), snaplen: UInt32(clamping: pcap_snapshot(p)),
            netmask: UInt32(bigEndian: netmask), selectableFD: pcap_get_selectable_fd(p), isLive: true
        )
        return (pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO, info)
    }

    /// Opens a trace file with a 1 MiB stdio buffer: libpcap reads each record with two
    /// freads, and the default 4 KiB buffer turns a large trace into a read call per 4 KiB.
    /// "-" is standard input, which libpcap opens itself. Gives libpcap's handle, or (for a
    /// pcapng file libpcap refuses) the reader that reads it here.
    static func openTrace(_ path: String, errorBuffer: inout [CChar]) throws(PluginError)
        -> (OpaquePointer?, UnsafeMutablePointer<CChar>?, PcapngReader?)
    {
        let precision = UInt32(PCAP_TSTAMP_PRECISION_NANO)
        if path == "-" {
            guard let p = pcap_open_offline_with_tstamp_precision(path, precision, &errorBuffer) else {
                throw PluginError(text(errorBuffer), code: .format)
            }
            return (p, nil, nil)
        }
        guard let file = fopen(path, "rb") else {
            throw PluginError("unable to open \(path): " + String(cString: strerror(errno)), code: PluginErrorCode(errno: errno), errno: errno)
        }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: streamBufferSize)
        setvbuf(file, buffer, _IOFBF, streamBufferSize) // glibc ignores a size given without a buffer
        // libpcap refuses pcapng files whose interfaces differ in snapshot length (common in
        // multi-interface captures): those are read here.
        if PcapngReader.interfacesDifferInSnaplen(file) {
            do throws(PluginError) {
                let reader = try PcapngReader(file: file) // owns the FILE from here
                return (nil, buffer, reader)
            } catch {
                buffer.deallocate()
                throw error
            }
        }
        guard let p = pcap_fopen_offline_with_tstamp_precision(file, precision, &errorBuffer) else {
            fclose(file) // libpcap leaves the FILE to its caller on failure
            buffer.deallocate()
            throw PluginError(text(errorBuffer), code: .format)
        }
        return (p, buffer, nil) // pcap_close closes the FILE; the buffer is freed after it
    }

    static func liveFailure(_ status: Int32, detail: String) -> PluginError {
        switch status {
        case PCAP_ERROR_NO_SUCH_DEVICE:
            return PluginError("No such device", code: .noSuchDevice)
        case PCAP_ERROR_PERM_DENIED:
            return PluginError("permission denied: live capture needs CAP_NET_RAW and CAP_NET_ADMIN", code: .permission)
        case PCAP_ERROR_IFACE_NOT_UP:
            return PluginError("interface is down", code: .unavailable)
        default:
            let kind = String(cString: pcap_statustostr(status))
            return PluginError(detail.isEmpty ? kind : "\(kind): \(detail)")
        }
    }

    public func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool {
        if let classic {
            guard let filter = classicFilter else { return try classic.next(into: &batch) { _, _, _ in true } }
            return try classic.next(into: &batch) { captured, wire, data in filter.matches(data, captured: captured, wire: wire) }
        }
        if let pcapng { return try nextBatch(from: pcapng, into: &batch) }
        if let failure = pendingFailure {
            pendingFailure = nil
            throw failure
        }
        arenaUsed = 0
        var received = dispatch(into: &batch)
        if received == PCAP_ERROR_BREAK && brokeForArena {
            // The arena break of the last batch was still latched in libpcap; it is clear now.
            brokeForArena = false
            received = dispatch(into: &batch)
        }
        switch received {
        case 0 where !info.isLive:
            return false // end of the file
        case 0..., PCAP_ERROR_BREAK:
            return true // a live timeout, or an interrupt
        default:
            let failure = PluginError(String(cString: pcap_geterr(handle.unsafelyUnwrapped)), code: .io)
            // Hand out what was read before the failure; report it on the next call.
            guard batch.count == 0 else { pendingFailure = failure; return true }
            throw failure
        }
    }

    private func dispatch(into batch: inout BatchOutput) -> Int32 {
        withUnsafeMutablePointer(to: &batch) { pointer in
            filling = pointer
            defer { filling = nil }
            let room = Int32(clamping: pointer.pointee.capacity - pointer.pointee.count)
            // Only traces libpcap reads and live interfaces come here: the handle is there.
            return pcap_dispatch(handle.unsafelyUnwrapped, room, { user, header, data in
                Unmanaged<PcapSource>.fromOpaque(user!)._withUnsafeGuaranteedRef { $0.accept(header!, data!) }
            }, Unmanaged.passUnretained(self).toOpaque().assumingMemoryBound(to: UInt8.self))
        }
    }

    /// The `pcap_dispatch` callback: copies one packet into the arena and the batch.
    private func accept(_ header: UnsafePointer<pcap_pkthdr>, _ data: UnsafePointer<UInt8>) {
        let h = header.pointee
        let length = Int(h.caplen)
        let copy = arena + arenaUsed
        copy.update(from: data, count: length)
        arenaUsed += length
        let fraction = UInt64(UInt(bitPattern: h.ts.tv_usec))
        let ns = UInt64(UInt(bitPattern: h.ts.tv_sec)) &* 1_000_000_000 &+ (nanosecond ? fraction : fraction &* 1000)
        filling.unsafelyUnwrapped.pointee.append(timestampNanoseconds: ns, capturedLength: h.caplen, wireLength: h.len, data: copy)
        if arenaSize - arenaUsed < arenaReserve {
            brokeForArena = true
            pcap_breakloop(handle.unsafelyUnwrapped) // the next packet might not fit
        }
    }

    /// The filter compiled for packets of `linkType`; nil for a link type it cannot be
    /// compiled for, whose packets are then dropped, as the host is warned once.
    private func pcapngFilter(for linkType: UInt16) -> PacketFilter? {
        if let known = pcapngFilters[linkType] { return known }
        guard let expression = pcapngFilterExpression else { return nil }
        var filter: PacketFilter?
        do { filter = try PacketFilter(compiling: expression, linkType: UInt32(linkType)) } catch {
            host.warning("the filter '\(expression)' cannot be compiled for link type \(linkType) (\(error)); "
                         + "the packets of this file's interfaces of that link type are dropped")
        }
        pcapngFilters[linkType] = filter
        return filter
    }

    /// The pcapng fallback: copies packets that pass the filter into the arena.
    private func nextBatch(from reader: PcapngReader, into batch: inout BatchOutput) throws(PluginError) -> Bool {
        if let failure = pendingFailure {
            pendingFailure = nil
            throw failure
        }
        arenaUsed = 0
        while !batch.isFull && arenaSize - arenaUsed >= arenaReserve {
            let record: PcapngReader.Record?
            do { record = try reader.next() } catch {
                guard batch.count == 0 else { pendingFailure = error; return true }
                throw error
            }
            guard let record else { return batch.count > 0 }
            let length = min(record.capturedLength, arenaReserve)
            let copy = arena + arenaUsed
            let keep = reader.withBlock { block -> Bool in
                let data = (block.baseAddress! + record.dataOffset).assumingMemoryBound(to: UInt8.self)
                if pcapngFilterExpression != nil {
                    guard let filter = pcapngFilter(for: record.linkType),
                          filter.matches(data, captured: UInt32(length), wire: UInt32(record.wireLength)) else { return false }
                }
                copy.update(from: data, count: length)
                return true
            }
            guard keep else { continue }
            arenaUsed += length
            let linkType = UInt32(record.linkType) == info.linkType ? 0 : UInt32(record.linkType)
            batch.append(timestampNanoseconds: record.timestampNanoseconds, capturedLength: UInt32(length),
                         wireLength: UInt32(record.wireLength), data: UnsafePointer(copy), linkType: linkType)
        }
        return true
    }

    public func setFilter(_ expression: String) throws(PluginError) {
        if pcapng != nil || classic != nil {
            // Filtered here, in user space. Compiled now for the file's link type, so that
            // a bad filter is refused at once.
            let filter = try PacketFilter(compiling: expression, linkType: info.linkType, snaplen: info.snaplen)
            if pcapng != nil {
                pcapngFilters = [UInt16(truncatingIfNeeded: info.linkType): filter]
                pcapngFilterExpression = expression
            } else {
                classicFilter = filter // applied by nextBatch
            }
            return
        }
        let handle = self.handle! // live or libpcap's trace: the traces without one returned above
        var program = bpf_program()
        let netmask = info.netmask == 0 ? PCAP_NETMASK_UNKNOWN : bpf_u_int32(info.netmask).bigEndian
        guard pcap_compile(handle, &program, expression, 1, netmask) == 0 else {
            throw PluginError("invalid filter '\(expression)': " + String(cString: pcap_geterr(handle)), code: .invalid)
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(handle, &program) == 0 else {
            throw PluginError("cannot install filter: " + String(cString: pcap_geterr(handle)), code: .io)
        }
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        var stats = trawl_stats()
        guard info.isLive, let handle else { return stats } // libpcap keeps no counters for files
        var p = pcap_stat()
        guard pcap_stats(handle, &p) == 0 else { throw PluginError(String(cString: pcap_geterr(handle)), code: .io) }
        stats.valid = UInt64(TRAWL_STAT_RECEIVED | TRAWL_STAT_DROPPED | TRAWL_STAT_IF_DROPPED)
        stats.received = UInt64(p.ps_recv)
        stats.dropped = UInt64(p.ps_drop)
        stats.if_dropped = UInt64(p.ps_ifdrop)
        return stats
    }

    public func interrupt() {
        if let handle { pcap_breakloop(handle) } // the traces read here are never blocked
    }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(PcapSource.self) }
