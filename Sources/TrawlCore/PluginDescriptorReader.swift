import CTrawlABI
#if canImport(Glibc)
import Glibc
#endif

/// Turns a plugin's C descriptor into a `Plugin`, checking every field the core relies on,
/// and reading only the fields the plugin's ABI minor has (the growth rule of
/// docs/plugin-abi.md): a descriptor of 1.0 is 64 bytes, and what 1.1 appended is not there.
enum PluginDescriptorReader {
    static func read(_ descriptor: UnsafePointer<trawl_plugin>, origin: PluginOrigin) -> Result<Plugin, PluginLoadError> {
        // Only the first two fields are known to exist before the version is checked.
        let head = UnsafeRawPointer(descriptor)
        let version = PluginABIVersion(encoded: head.loadUnaligned(as: UInt32.self))
        guard PluginABIVersion.host.loads(version) else { return .failure(.abiVersion(found: version)) }
        let structSize = head.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        guard structSize >= version.descriptorSize else {
            return .failure(.invalidDescriptor("struct_size \(structSize) is smaller than \(version.descriptorSize), the size of ABI \(version)"))
        }
        // Copy what the plugin's minor has; the rest stays zero.
        var d = trawl_plugin()
        withUnsafeMutableBytes(of: &d) { $0.copyMemory(from: UnsafeRawBufferPointer(start: head, count: Int(version.descriptorSize))) }
        return read(d, version: version, origin: origin)
    }

    static func read(_ d: trawl_plugin, version: PluginABIVersion, origin: PluginOrigin) -> Result<Plugin, PluginLoadError> {
        func fail(_ reason: String) -> Result<Plugin, PluginLoadError> { .failure(.invalidDescriptor(reason)) }
        guard let name = string(d.name), !name.isEmpty else { return fail("no plugin name") }
        if version.has(minor: 1) {
            if let runtime = string(d.runtime), runtime != TRAWL_RUNTIME_C {
                guard runtime.hasPrefix(TRAWL_RUNTIME_SWIFT_PREFIX) else { return .failure(.unknownRuntime(runtime)) }
                guard runtime == SwiftToolchain.runtime else { return .failure(.swiftToolchain(plugin: runtime)) }
            }
            guard d.reserved == 0 else { return fail("\(name): reserved is \(d.reserved), must be 0") }
        }
        guard let namespace = string(d.option_namespace), OptionAssignment.isIdentifier(namespace) else {
            return fail("\(name): option_namespace must be an identifier")
        }
        let options: [OptionDeclaration]
        switch readOptions(d, plugin: name) {
        case let .success(list): options = list
        case let .failure(error): return .failure(error)
        }
        var magics: [Int: [[UInt8]]] = [:]
        if version.has(minor: 1) && d.file_magic_count > 0 {
            guard let list = d.file_magics else { return fail("\(name): file_magic_count is \(d.file_magic_count) but file_magics is NULL") }
            for i in 0..<Int(d.file_magic_count) {
                let m = list[i]
                guard m.component < d.component_count else {
                    return fail("\(name): file magic \(i) names component \(m.component) of \(d.component_count)")
                }
                guard (1...UInt32(TRAWL_MAGIC_SIZE)).contains(m.length) else {
                    return fail("\(name): file magic \(i) is \(m.length) bytes, not 1...\(TRAWL_MAGIC_SIZE)")
                }
                let bytes = withUnsafeBytes(of: m.bytes) { Array($0.prefix(Int(m.length))) }
                magics[Int(m.component), default: []].append(bytes)
            }
        }
        var components: [SourceComponent] = []
        if d.component_count > 0 {
            guard let list = d.components else { return fail("\(name): component_count is \(d.component_count) but components is NULL") }
            for i in 0..<Int(d.component_count) {
                let c = list[i]
                guard let componentName = string(c.name), !componentName.isEmpty,
                      let prefix = string(c.prefix), !prefix.isEmpty, !prefix.contains("::") else {
                    return fail("\(name): component \(i) needs a name and a prefix without '::'")
                }
                guard c.reserved == 0 else { return fail("\(name): component \(componentName): reserved is \(c.reserved), must be 0") }
                guard let ops = c.ops else { return fail("\(name): component \(componentName) has no ops table") }
                // Imported C function pointers are optional; every one but interrupt is required.
                let o = ops.pointee
                guard o.open != nil, o.info != nil, o.set_filter != nil, o.next_batch != nil,
                      o.stats != nil, o.close != nil else {
                    return fail("\(name): component \(componentName) leaves a required function NULL")
                }
                let modes = SourceModes(rawValue: c.modes).intersection([.live, .offline])
                guard !modes.isEmpty else { return fail("\(name): component \(componentName) supports no mode") }
                let opener = CComponentOpener(ops: ops, context: c.context)
                components.append(SourceComponent(name: componentName, prefix: prefix, modes: modes, opener: opener,
                                                  fileMagics: magics[i] ?? []))
            }
        }
        var plugin = Plugin(
            name: name, description: string(d.description) ?? "", version: string(d.version) ?? "",
            optionNamespace: namespace, options: options, components: components, origin: origin
        )
        plugin.abiVersion = version
        plugin.runtime = version.has(minor: 1) ? string(d.runtime) ?? TRAWL_RUNTIME_C : nil
        return .success(plugin)
    }

    static func readOptions(_ d: trawl_plugin, plugin name: String) -> Result<[OptionDeclaration], PluginLoadError> {
        func fail(_ reason: String) -> Result<[OptionDeclaration], PluginLoadError> { .failure(.invalidDescriptor(reason)) }
        var options: [OptionDeclaration] = []
        guard d.option_count > 0 else { return .success([]) }
        guard let list = d.options else { return fail("\(name): option_count is \(d.option_count) but options is NULL") }
        for i in 0..<Int(d.option_count) {
            let o = list[i]
            guard let optionName = string(o.name), OptionAssignment.isIdentifier(optionName) else {
                return fail("\(name): option \(i) has no valid name")
            }
            guard let type = OptionType(rawValue: o.type) else {
                return fail("\(name): option \(optionName) has unknown type \(o.type)")
            }
            let choices = (string(o.choices) ?? "").split(separator: ",").map { $0.trimmingSpaces() }
            if type == .enum && choices.isEmpty { return fail("\(name): enum option \(optionName) lists no choices") }
            guard let defaultValue = OptionValue.parse(string(o.default_value) ?? "", as: type, choices: choices) else {
                return fail("\(name): option \(optionName) default is not a valid \(type)")
            }
            options.append(OptionDeclaration(name: optionName, type: type, defaultValue: defaultValue,
                                             documentation: string(o.doc) ?? "", choices: choices))
        }
        return .success(options)
    }

    static func string(_ pointer: UnsafePointer<CChar>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
