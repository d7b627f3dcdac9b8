import CLibpcap
#if canImport(Glibc)
import Glibc
#endif
import TrawlPluginSDK
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
        options: [
            PluginOption("snaplen", .count(default: 262_144), "Bytes kept of each live packet"),
            PluginOption("buffer_size", .count(default: 128 * 1024 * 1024), "Kernel capture buffer of a live interface, in bytes"),
            PluginOption("promiscuous", .bool(default: true), "Put a live interface into promiscuous mode"),
            PluginOption("immediate_mode", .bool(default: false), "Deliver live packets as they arrive instead of in kernel-buffered blocks"),
        ]
    )

    private let handle: OpaquePointer
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
    /// Set for pcapng files libpcap refuses; `handle` is then a dead handle for filters.
    private let pcapng: PcapngReader?
    /// The pcapng path's filter, compiled once per link type met (interfaces may differ).
    private var pcapngFilterExpression: String?
    private var pcapngPrograms: [UInt16: bpf_program] = [:]
    /// Set for classic pcap files in regular files; `handle` is then a dead handle for filters.
    private let classic: PcapFileReader?
    @exclusivity(unchecked) private var classicProgram: bpf_program?

    public init(request: OpenRequest) throws(PluginError) {
        path = request.path
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        switch request.mode {
        case .offline where request.path != "-":
            if let reader = try PcapFileReader.open(request.path) {
                guard let dead = pcap_open_dead_with_tstamp_precision(Self.dlt(reader.linkType), Int32(clamping: reader.snaplen),
                                                                       UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
                    throw PluginError("libpcap could not prepare a filter compiler")
                }
                handle = dead
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
            nanosecond = pcap_get_tstamp_precision(opened) == PCAP_TSTAMP_PRECISION_NANO
            info = PluginSourceInfo(linkType: Self.linkType(pcap_datalink(opened)),
                                    snaplen: UInt32(clamping: pcap_snapshot(opened)), isLive: false)
        case .live:
            guard let created = pcap_create(request.path, &errorBuffer) else {
                throw PluginError(Self.text(errorBuffer))
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
        for var program in pcapngPrograms.values { pcap_freecode(&program) }
        if var program = classicProgram { pcap_freecode(&program) }
        pcap_close(handle)
        arena.deallocate()
        streamBuffer?.deallocate()
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Configures and activates a live capture; returns its timestamp precision and info.
    private static func activate(_ p: OpaquePointer, request: OpenRequest) throws(PluginError) -> (Bool, PluginSourceInfo) {
        let snaplen = Int32(clamping: request.count("snaplen") ?? 262_144)
        pcap_set_snaplen(p, snaplen)
        pcap_set_promisc(p, (request.bool("promiscuous") ?? true) ? 1 : 0)
        pcap_set_buffer_size(p, Int32(clamping: request.count("buffer_size") ?? 128 << 20))
        pcap_set_immediate_mode(p, (request.bool("immediate_mode") ?? false) ? 1 : 0)
        // A zero timeout means "never block": poll with a short timeout, then non-blocking.
        pcap_set_timeout(p, Int32(clamping: max(request.timeoutMilliseconds, 1)))
        _ = pcap_set_tstamp_precision(p, Int32(PCAP_TSTAMP_PRECISION_NANO)) // microseconds if unsupported
        let status = pcap_activate(p)
        if status < 0 {
            throw PluginError(liveReason(status, detail: String(cString: pcap_geterr(p))))
        }
        if request.timeoutMilliseconds == 0 {
            var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
            if pcap_setnonblock(p, 1, &errorBuffer) != 0 { throw PluginError(Self.text(errorBuffer)) }
        }
        var network: bpf_u_int32 = 0
        var netmask: bpf_u_int32 = 0
        var errorBuffer = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        if pcap_lookupnet(request.path, &network, &netmask, &errorBuffer) != 0 { netmask = 0 }
        let info = PluginSourceInfo(
            linkType: linkType(pcap_datalink(p)), snaplen: UInt32(clamping: pcap_snapshot(p)),
            netmask: UInt32(bigEndian: netmask), selectableFD: pcap_get_selectable_fd(p), isLive: true
        )
        return (pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO, info)
    }

    /// Opens a trace file with a 1 MiB stdio buffer: libpcap reads each record with two
    /// freads, and the default 4 KiB buffer turns a large trace into a read call per 4 KiB.
    /// "-" is standard input, which libpcap opens itself.
    static func openTrace(_ path: String, errorBuffer: inout [CChar]) throws(PluginError)
        -> (OpaquePointer, UnsafeMutablePointer<CChar>?, PcapngReader?)
    {
        let precision = UInt32(PCAP_TSTAMP_PRECISION_NANO)
        if path == "-" {
            guard let p = pcap_open_offline_with_tstamp_precision(path, precision, &errorBuffer) else {
                throw PluginError(text(errorBuffer))
            }
            return (p, nil, nil)
        }
        guard let file = fopen(path, "rb") else {
            throw PluginError("unable to open \(path): " + String(cString: strerror(errno)))
        }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: streamBufferSize)
        setvbuf(file, buffer, _IOFBF, streamBufferSize) // glibc ignores a size given without a buffer
        // libpcap refuses pcapng files whose interfaces differ in snapshot length (common in
        // multi-interface captures): those are read here, with a dead handle for filters.
        if PcapngReader.interfacesDifferInSnaplen(file) {
            do throws(PluginError) {
                let reader = try PcapngReader(file: file) // owns the FILE from here
                guard let dead = pcap_open_dead_with_tstamp_precision(Int32(reader.linkType), Int32(clamping: reader.snaplen), precision) else {
                    throw PluginError("libpcap could not prepare a filter compiler")
                }
                return (dead, buffer, reader)
            } catch {
                buffer.deallocate()
                throw error
            }
        }
        guard let p = pcap_fopen_offline_with_tstamp_precision(file, precision, &errorBuffer) else {
            fclose(file) // libpcap leaves the FILE to its caller on failure
            buffer.deallocate()
            throw PluginError(text(errorBuffer))
        }
        return (p, buffer, nil) // pcap_close closes the FILE; the buffer is freed after it
    }

    static func liveReason(_ status: Int32, detail: String) -> String {
        switch status {
        case PCAP_ERROR_NO_SUCH_DEVICE:
            return "No such device"
        case PCAP_ERROR_PERM_DENIED:
            return "permission denied: live capture needs CAP_NET_RAW and CAP_NET_ADMIN; run as root or grant them with 'setcap cap_net_raw,cap_net_admin=eip PATH/TO/trawl'"
        case PCAP_ERROR_IFACE_NOT_UP:
            return "interface is down"
        default:
            let kind = String(cString: pcap_statustostr(status))
            return detail.isEmpty ? kind : "\(kind): \(detail)"
        }
    }

    /// pcap_datalink gives DLT_ values; files and the ABI use LINKTYPE_ values, which
    /// differ for a few old types.
    static func linkType(_ dlt: Int32) -> UInt32 {
        switch dlt {
        case 12, 14: return 101 // DLT_RAW -> LINKTYPE_RAW
        case 11: return 100     // DLT_ATM_RFC1483
        default: return UInt32(bitPattern: dlt)
        }
    }

    /// LINKTYPE_ values of files to the DLT_ values libpcap compiles filters for.
    static func dlt(_ linkType: UInt32) -> Int32 {
        switch linkType {
        case 101: return 12 // LINKTYPE_RAW -> DLT_RAW
        case 100: return 11 // LINKTYPE_ATM_RFC1483
        default: return Int32(bitPattern: linkType)
        }
    }

    public func nextBatch(into batch: inout BatchOutput) throws(PluginError) -> Bool {
        if let classic {
            guard classicProgram != nil else { return try classic.next(into: &batch) { _, _, _ in true } }
            return try classic.next(into: &batch) { captured, wire, data in
                var header = pcap_pkthdr()
                header.caplen = captured
                header.len = wire
                return pcap_offline_filter(&classicProgram!, &header, data) != 0
            }
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
            let failure = PluginError(String(cString: pcap_geterr(handle)))
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
            return pcap_dispatch(handle, room, { user, header, data in
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
            pcap_breakloop(handle) // the next packet might not fit
        }
    }

    /// The filter compiled for packets of `linkType`; a link type it cannot be compiled for
    /// gets a program that rejects every packet.
    private func pcapngProgram(for linkType: UInt16) -> bpf_program? {
        if let program = pcapngPrograms[linkType] { return program }
        guard let expression = pcapngFilterExpression,
              let dead = pcap_open_dead(Self.dlt(UInt32(linkType)), 262_144) else { return nil }
        defer { pcap_close(dead) }
        var program = bpf_program()
        if pcap_compile(dead, &program, expression, 1, PCAP_NETMASK_UNKNOWN) != 0 {
            _ = pcap_compile(dead, &program, "less 0", 1, PCAP_NETMASK_UNKNOWN) // matches nothing
        }
        pcapngPrograms[linkType] = program
        return program
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
                if pcapngFilterExpression != nil, var program = pcapngProgram(for: record.linkType) {
                    var header = pcap_pkthdr()
                    header.caplen = UInt32(length)
                    header.len = UInt32(record.wireLength)
                    if pcap_offline_filter(&program, &header, data) == 0 { return false }
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
        var program = bpf_program()
        let netmask = info.netmask == 0 ? PCAP_NETMASK_UNKNOWN : bpf_u_int32(info.netmask).bigEndian
        guard pcap_compile(handle, &program, expression, 1, netmask) == 0 else {
            throw PluginError("invalid filter '\(expression)': " + String(cString: pcap_geterr(handle)))
        }
        if pcapng != nil {
            // Checked now for the message; compiled again per link type as packets need it.
            pcap_freecode(&program)
            for var old in pcapngPrograms.values { pcap_freecode(&old) }
            pcapngPrograms = [:]
            pcapngFilterExpression = expression
            return
        }
        if classic != nil {
            if var old = classicProgram { pcap_freecode(&old) }
            classicProgram = program // applied by nextBatch
            return
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(handle, &program) == 0 else {
            throw PluginError("cannot install filter: " + String(cString: pcap_geterr(handle)))
        }
    }

    public func statistics() throws(PluginError) -> trawl_stats {
        var stats = trawl_stats()
        guard info.isLive else { return stats } // libpcap keeps no counters for files
        var p = pcap_stat()
        guard pcap_stats(handle, &p) == 0 else { throw PluginError(String(cString: pcap_geterr(handle))) }
        stats.valid = UInt64(TRAWL_STAT_RECEIVED | TRAWL_STAT_DROPPED | TRAWL_STAT_IF_DROPPED)
        stats.received = UInt64(p.ps_recv)
        stats.dropped = UInt64(p.ps_drop)
        stats.if_dropped = UInt64(p.ps_ifdrop)
        return stats
    }

    public func interrupt() { pcap_breakloop(handle) }
}

@_cdecl("trawl_plugin_entry")
public func trawlPluginEntry() -> UnsafeRawPointer { exportPlugin(PcapSource.self) }
