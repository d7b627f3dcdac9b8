#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TrawlABI

/// Builds the C descriptor for `Source` once and returns it, for the plugin's
/// `trawl_plugin_entry` function. The descriptor lives as long as the library.
public func exportPlugin<Source: SourcePlugin>(_ source: Source.Type) -> UnsafeRawPointer {
    let address = exportedDescriptors.withLock { descriptors in
        let key = ObjectIdentifier(source)
        if let existing = descriptors[key] { return existing }
        let descriptor = UInt(bitPattern: makeDescriptor(Source.self))
        descriptors[key] = descriptor
        return descriptor
    }
    return UnsafeRawPointer(bitPattern: address)!
}

/// The descriptors built so far, by source type (their addresses). A Mutex keeps its own
/// stable storage, which a pthread_mutex_t stored property passed as `&` does not have.
private let exportedDescriptors = Mutex<[ObjectIdentifier: UInt]>([:])


/// Opens instances of one source type; the component's context points at it.
final class SourceFactory {
    let declared: [PluginOption]
    let make: (OpenRequest) throws(PluginError) -> any SourcePlugin
    init(declared: [PluginOption], make: @escaping (OpenRequest) throws(PluginError) -> any SourcePlugin) {
        self.declared = declared
        self.make = make
    }
}

/// An open source behind a C handle.
final class SourceHandle {
    let source: any SourcePlugin
    /// The source said its input ended while delivering packets: those went out with
    /// TRAWL_OK, and the next call says TRAWL_END.
    var ended = false
    init(_ source: any SourcePlugin) { self.source = source }
}

private func permanent(_ text: String) -> UnsafePointer<CChar> { UnsafePointer(strdup(text)!) }

private func describe(_ kind: PluginOption.Kind) -> (trawl_option_type, String, String?) {
    switch kind {
    case let .bool(value): return (TRAWL_OPTION_BOOL, value ? "T" : "F", nil)
    case let .count(value): return (TRAWL_OPTION_COUNT, String(value), nil)
    case let .int(value): return (TRAWL_OPTION_INT, String(value), nil)
    case let .double(value): return (TRAWL_OPTION_DOUBLE, String(value), nil)
    case let .string(value): return (TRAWL_OPTION_STRING, value, nil)
    case let .enum(value, choices): return (TRAWL_OPTION_ENUM, value, choices.joined(separator: ","))
    }
}

private func makeDescriptor<Source: SourcePlugin>(_: Source.Type) -> UnsafePointer<trawl_plugin> {
    let metadata = Source.metadata
    let options = UnsafeMutablePointer<trawl_option>.allocate(capacity: max(metadata.options.count, 1))
    for (index, option) in metadata.options.enumerated() {
        let (type, defaultValue, choices) = describe(option.kind)
        options[index] = trawl_option(
            name: permanent(option.name), type: type.rawValue, default_value: permanent(defaultValue),
            doc: permanent(option.documentation), choices: choices.map(permanent)
        )
    }
    let factory = SourceFactory(declared: metadata.options) { (request) throws(PluginError) in try Source(request: request) }
    let component = UnsafeMutablePointer<trawl_component>.allocate(capacity: 1)
    component.initialize(to: trawl_component(
        name: permanent(metadata.componentName), prefix: permanent(metadata.prefix),
        modes: metadata.modes.rawValue, reserved: 0, ops: sourceOps,
        context: Unmanaged.passRetained(factory).toOpaque()
    ))
    let magics = UnsafeMutablePointer<trawl_file_magic>.allocate(capacity: max(metadata.fileMagics.count, 1))
    for (index, bytes) in metadata.fileMagics.enumerated() {
        var magic = trawl_file_magic()
        magic.component = 0
        magic.length = UInt32(min(bytes.count, Int(TRAWL_MAGIC_SIZE)))
        withUnsafeMutableBytes(of: &magic.bytes) { $0.copyBytes(from: bytes.prefix(Int(TRAWL_MAGIC_SIZE))) }
        magics[index] = magic
    }
    let plugin = UnsafeMutablePointer<trawl_plugin>.allocate(capacity: 1)
    plugin.initialize(to: trawl_plugin(
        abi_version: TRAWL_ABI_VERSION, struct_size: UInt32(MemoryLayout<trawl_plugin>.size),
        name: permanent(metadata.name), description: permanent(metadata.description),
        version: permanent(metadata.version), option_namespace: permanent(metadata.optionNamespace),
        components: UnsafePointer(component), component_count: 1,
        option_count: UInt32(metadata.options.count), options: UnsafePointer(options),
        runtime: permanent(swiftRuntimeName), // the toolchain that built this plugin
        file_magics: UnsafePointer(magics), file_magic_count: UInt32(metadata.fileMagics.count), reserved: 0
    ))
    return UnsafePointer(plugin)
}

/// Copies the failure into the ABI's error buffer: its code, and its message cut at a
/// character boundary.
func report(_ failure: PluginError, into error: UnsafeMutablePointer<trawl_error>?) {
    guard let error else { return }
    error.pointee.code = failure.code.rawValue
    error.pointee.system_errno = failure.systemErrno
    report(failure.description, into: error)
}

func report(_ message: String, into error: UnsafeMutablePointer<trawl_error>?) {
    guard let error else { return }
    withUnsafeMutableBytes(of: &error.pointee.message) { raw in
        var utf8 = Array(message.utf8.prefix(raw.count - 1))
        if utf8.count < message.utf8.count {
            // Drop continuation bytes, then the lead byte of the cut character.
            while let last = utf8.last, last & 0xC0 == 0x80 { utf8.removeLast() }
            if let last = utf8.last, last & 0x80 != 0 { utf8.removeLast() }
        }
        raw.copyBytes(from: utf8)
        raw[utf8.count] = 0
    }
}

private func source(_ handle: UnsafeMutableRawPointer?) -> any SourcePlugin {
    Unmanaged<SourceHandle>.fromOpaque(handle!).takeUnretainedValue().source
}

/// One function table serves every Swift plugin: the generic part lives in the factory.
nonisolated(unsafe) private let sourceOps: UnsafePointer<trawl_source_ops> = {
    let ops = UnsafeMutablePointer<trawl_source_ops>.allocate(capacity: 1)
    ops.initialize(to: trawl_source_ops(
        open: { context, request, handle, error in
            let factory = Unmanaged<SourceFactory>.fromOpaque(context!).takeUnretainedValue()
            do throws(PluginError) {
                let opened = try factory.make(OpenRequest(request!.pointee, declared: factory.declared))
                handle!.pointee = Unmanaged.passRetained(SourceHandle(opened)).toOpaque()
                return TRAWL_OK.rawValue
            } catch let failure {
                report(failure, into: error)
                return TRAWL_ERROR.rawValue
            }
        },
        info: { handle, info in
            let i = source(handle).info
            info!.pointee = trawl_source_info(link_type: i.linkType, snaplen: i.snaplen, netmask: i.netmask,
                                              selectable_fd: i.selectableFD, is_live: i.isLive ? 1 : 0, reserved: 0)
        },
        set_filter: { handle, expression, error in
            do throws(PluginError) {
                try source(handle).setFilter(String(cString: expression!))
                return TRAWL_OK.rawValue
            } catch let failure {
                report(failure, into: error)
                return TRAWL_ERROR.rawValue
            }
        },
        next_batch: { handle, packets, capacity, count, error in
            var batch = BatchOutput(slots: packets!, capacity: Int(capacity))
            do throws(PluginError) {
                // The host holds the handle open for the call: no retain needed.
                let status = try Unmanaged<SourceHandle>.fromOpaque(handle!)._withUnsafeGuaranteedRef { box in
                    if box.ended { return Result<Int32, PluginError>.success(TRAWL_END.rawValue) }
                    do throws(PluginError) {
                        let more = try box.source.nextBatch(into: &batch)
                        // The ABI ignores packets sent with TRAWL_END: the last ones go out
                        // with TRAWL_OK, and the next call says the end.
                        if !more && batch.count > 0 { box.ended = true }
                        return .success(more || batch.count > 0 ? TRAWL_OK.rawValue : TRAWL_END.rawValue)
                    } catch { return .failure(error) }
                }.get()
                count!.pointee = UInt32(batch.count)
                return status
            } catch let failure {
                count!.pointee = 0
                report(failure, into: error)
                return TRAWL_ERROR.rawValue
            }
        },
        stats: { handle, stats, error in
            do throws(PluginError) {
                stats!.pointee = try source(handle).statistics()
                return TRAWL_OK.rawValue
            } catch let failure {
                report(failure, into: error)
                return TRAWL_ERROR.rawValue
            }
        },
        interrupt: { handle in source(handle).interrupt() },
        close: { handle in
            Unmanaged<SourceHandle>.fromOpaque(handle!).release()
        }
    ))
    return UnsafePointer(ops)
}()
