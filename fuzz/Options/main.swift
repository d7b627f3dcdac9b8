// Fuzzes option parsing: lines of `Namespace::name=value` against a plugin that declares an
// option of every type, as `trawl` checks them before loading a source.
#if canImport(Glibc)
import Glibc
#endif
import CFuzzDriver
import TrawlCore

let registry = SourceRegistry()
let declared = Plugin(
    name: "Fuzz::Source", description: "options of every type", version: "1.0", optionNamespace: "Fuzz",
    options: [
        OptionDeclaration(name: "flag", type: .bool, defaultValue: .bool(false), documentation: ""),
        OptionDeclaration(name: "count", type: .count, defaultValue: .count(1), documentation: ""),
        OptionDeclaration(name: "offset", type: .int, defaultValue: .int(0), documentation: ""),
        OptionDeclaration(name: "ratio", type: .double, defaultValue: .double(0.5), documentation: ""),
        OptionDeclaration(name: "name", type: .string, defaultValue: .string(""), documentation: ""),
        OptionDeclaration(name: "mode", type: .enum, defaultValue: .enum("hash"), documentation: "", choices: ["hash", "lb", "cpu"]),
    ],
    components: [], origin: .builtIn)
_ = try? registry.register(declared)

exit(trawl_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv) { data, size in
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    let words = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for word in words {
        if let (namespace, name, value) = OptionAssignment.parse(word) {
            precondition(!namespace.isEmpty && !name.isEmpty && word.hasSuffix(value), "a parse that lost its parts")
        }
        for type in [OptionType.bool, .count, .int, .double, .string, .enum] {
            if let value = OptionValue.parse(word, as: type, choices: ["hash", "lb"]) {
                _ = value.description
            }
        }
    }
    if let settings = try? OptionSettings(assignments: words, registry: registry) {
        precondition(settings.values(for: declared).count == declared.options.count)
    }
    return 0
})
