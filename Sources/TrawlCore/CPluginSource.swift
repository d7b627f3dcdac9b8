import CTrawlABI
#if canImport(Glibc)
import Glibc
#endif

/// A component's C function table and context, as a plugin's descriptor gave them.
struct CComponentOpener: SourceOpener, @unchecked Sendable {
    // The pointers refer to a loaded library's static data, which is never unloaded.
    let ops: UnsafePointer<trawl_source_ops>
    let context: UnsafeMutableRawPointer?

    func open(_ request: SourceOpenRequest) throws(PacketSourceError) -> any PacketSource {
        var error = trawl_error()
        // The host's services for this source, from open until close (1.1).
        let host = PluginHostTable(reports: SourceReports(sourceName: request.name))
        var handle: UnsafeMutableRawPointer?
        // Strings handed to the plugin live until open returns.
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer { strings.forEach { free($0) } }
        var values = request.options.map { value -> trawl_option_value in
            var c = trawl_option_value()
            switch value {
            case let .bool(b): c.type = UInt32(TRAWL_OPTION_BOOL.rawValue); c.value.boolean = b ? 1 : 0
            case let .count(n): c.type = UInt32(TRAWL_OPTION_COUNT.rawValue); c.value.count = n
            case let .int(n): c.type = UInt32(TRAWL_OPTION_INT.rawValue); c.value.integer = n
            case let .double(d): c.type = UInt32(TRAWL_OPTION_DOUBLE.rawValue); c.value.real = d
            case let .string(s), let .enum(s):
                c.type = UInt32(value == .string(s) ? TRAWL_OPTION_STRING.rawValue : TRAWL_OPTION_ENUM.rawValue)
                let copy = strdup(s)!
                strings.append(copy)
                c.value.string = UnsafePointer(copy)
            }
            return c
        }
        let status = request.path.withCString { path in
            values.withUnsafeMutableBufferPointer { options in
                var cRequest = trawl_open_request(
                    path: path,
                    mode: request.mode == .live ? TRAWL_MODE_LIVE.rawValue : TRAWL_MODE_OFFLINE.rawValue,
                    timeout_ms: request.timeoutMilliseconds,
                    options: UnsafePointer(options.baseAddress),
                    option_count: UInt32(options.count),
                    reserved: 0,
                    host: UnsafePointer(host.table)
                )
                return ops.pointee.open(context, &cRequest, &handle, &error)
            }
        }
        guard status == TRAWL_OK.rawValue, let handle else {
            if let failure = host.reports.failure {
                throw .problem(request.name, mode: request.mode, reason: failure.message, code: failure.code)
            }
            throw .problem(request.name, mode: request.mode, reason: error.text(or: "the plugin could not open it"),
                           code: SourceErrorCode(code: error.code))
        }
        let source = CPluginSource(name: request.name, ops: ops, handle: handle, host: host)
        guard source.infoReserved == 0 else {
            source.close()
            throw .problem(request.name, mode: request.mode,
                           reason: "the plugin's trawl_source_info.reserved is \(source.infoReserved); it must be 0")
        }
        return source
    }
}

/// A packet source implemented by a plugin behind the C ABI.
final class CPluginSource: PacketSource {
    let name: String
    let info: SourceInfo
    private let ops: UnsafePointer<trawl_source_ops>
    // Touched on every read: kept free of dynamic exclusivity checks.
    @exclusivity(unchecked) private var handle: UnsafeMutableRawPointer?
    private let error = UnsafeMutablePointer<trawl_error>.allocate(capacity: 1)
    private let host: PluginHostTable
    var reports: SourceReports? { host.reports }
    /// What the plugin left in trawl_source_info.reserved, which must be 0.
    let infoReserved: UInt32

    init(name: String, ops: UnsafePointer<trawl_source_ops>, handle: UnsafeMutableRawPointer, host: PluginHostTable) {
        self.name = name
        self.ops = ops
        self.handle = handle
        self.host = host
        error.initialize(to: trawl_error())
        var c = trawl_source_info()
        ops.pointee.info(handle, &c)
        info = SourceInfo(
            linkType: c.link_type, snaplen: c.snaplen, netmask: c.netmask,
            selectableFD: c.selectable_fd >= 0 ? c.selectable_fd : nil, isLive: c.is_live != 0
        )
        infoReserved = c.reserved
    }

    deinit {
        close()
        error.deallocate()
    }

    func nextBatch(_ batch: PacketBatch) throws(PacketSourceError) -> Bool {
        guard let handle else { throw .read(name, reason: "source is closed") }
        if failureDeferred, let failure = host.reports.failure {
            batch.count = 0
            throw .problem(name, mode: mode, reason: failure.message, code: failure.code)
        }
        var count: UInt32 = 0
        let status = ops.pointee.next_batch(handle, batch.slots, UInt32(batch.capacity), &count, error)
        batch.count = Int(min(count, UInt32(batch.capacity)))
        if host.reports.hasPending, let failure = host.reports.failure {
            // The plugin said the source failed (Zeek's PktSrc::Error): what it delivered
            // with this call still goes out, then nothing more is read.
            failureDeferred = true
            if status == TRAWL_OK.rawValue && batch.count > 0 { return true }
            batch.count = 0
            throw .problem(name, mode: mode, reason: failure.message, code: failure.code)
        }
        switch status {
        case TRAWL_OK.rawValue: return true
        case TRAWL_END.rawValue:
            batch.count = 0
            return false
        default:
            batch.count = 0
            throw failed(or: "read failed")
        }
    }

    /// A failure reported with packets still in the batch: they go out first.
    private var failureDeferred = false
    private var mode: SourceMode { info.isLive ? .live : .offline }

    /// The plugin's error as a PacketSourceError (`read` for a failure of an open source that
    /// is not about its input); clears the buffer for the next call.
    private func failed(or fallback: String, read: Bool = false) -> PacketSourceError {
        defer { error.pointee = trawl_error() }
        let reason = error.pointee.text(or: fallback), code = SourceErrorCode(code: error.pointee.code)
        return read ? .read(name, reason: reason, code: code) : .problem(name, mode: mode, reason: reason, code: code)
    }

    func setFilter(_ expression: String) throws(PacketSourceError) {
        guard let handle else { throw .read(name, reason: "source is closed") }
        let status = ops.pointee.set_filter(handle, expression, error)
        guard status == TRAWL_OK.rawValue else { throw failed(or: "the filter was refused") }
    }

    func statistics() throws(PacketSourceError) -> CaptureStatistics {
        guard let handle else { throw .read(name, reason: "source is closed") }
        var c = trawl_stats()
        guard ops.pointee.stats(handle, &c, error) == TRAWL_OK.rawValue else { throw failed(or: "statistics unavailable", read: true) }
        func field<Bit: BinaryInteger>(_ bit: Bit, _ value: UInt64) -> UInt64? { c.valid & UInt64(bit) != 0 ? value : nil }
        return CaptureStatistics(
            received: field(TRAWL_STAT_RECEIVED, c.received),
            dropped: field(TRAWL_STAT_DROPPED, c.dropped),
            interfaceDropped: field(TRAWL_STAT_IF_DROPPED, c.if_dropped),
            filtered: field(TRAWL_STAT_FILTERED, c.filtered),
            bytes: field(TRAWL_STAT_BYTES, c.bytes)
        )
    }

    func interrupt() {
        if let handle, let interrupt = ops.pointee.interrupt { interrupt(handle) }
    }

    func close() {
        if let handle { ops.pointee.close(handle) }
        handle = nil
    }
}

/// The trawl_host table handed to a plugin at open: its functions take the source's
/// reports as context. Allocated, so that its address stays put from open until close.
final class PluginHostTable: @unchecked Sendable {
    let reports: SourceReports
    let table: UnsafeMutablePointer<trawl_host>

    init(reports: SourceReports) {
        self.reports = reports
        table = .allocate(capacity: 1)
        table.initialize(to: trawl_host(
            abi_version: TRAWL_ABI_VERSION, reserved: 0,
            context: Unmanaged.passUnretained(reports).toOpaque(),
            warning: { context, message in
                guard let context, let message else { return }
                Unmanaged<SourceReports>.fromOpaque(context).takeUnretainedValue().warning(String(cString: message))
            },
            weird: { context, name, addl in
                guard let context, let name else { return }
                let reports = Unmanaged<SourceReports>.fromOpaque(context).takeUnretainedValue()
                let text = String(cString: name)
                guard OptionAssignment.isIdentifier(text), text.utf8.count <= 64 else {
                    return reports.warning("a weird named '\(text.prefix(80))' was reported; a weird's name is an identifier of up to 64 characters")
                }
                reports.weird(text, addl: addl.map { String(cString: $0) })
            },
            error: { context, code, message in
                guard let context else { return }
                Unmanaged<SourceReports>.fromOpaque(context).takeUnretainedValue()
                    .fail(message.map { String(cString: $0) } ?? "the source failed", code: SourceErrorCode(code: code))
            }
        ))
    }

    deinit { table.deallocate() }
}

extension trawl_error {
    /// The plugin's message, or `fallback` when it left the buffer empty.
    func text(or fallback: String) -> String {
        var copy = message
        let text = withUnsafeBytes(of: &copy) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return text.isEmpty ? fallback : text
    }
}
