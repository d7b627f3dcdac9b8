import TrawlAnalysis
import TrawlCore

/// `trawl -N` and `-NN`, in the layout `zeek -N` uses.
enum PluginListing {
    static func text(_ plugins: [Plugin], verbose: Bool) -> String {
        var lines: [String] = []
        for plugin in plugins.sorted(by: { $0.name < $1.name }) {
            let kind = plugin.origin.path == nil ? "built-in" : "dynamic"
            lines.append("\(plugin.name) - \(plugin.description) (\(kind), version \(plugin.version))")
            guard verbose else { continue }
            for component in plugin.components {
                lines.append("    [Packet Source] \(component.name) (interface prefix \"\(component.prefix)\"; supports \(component.modes.summary))")
            }
            for option in plugin.options {
                lines.append("    [Constant] \(plugin.optionNamespace)::\(option.name) (\(option.typeDescription), default \(option.defaultValue)) - \(option.documentation)")
            }
            if let path = plugin.origin.path {
                let abi = plugin.abiVersion.map { " (plugin ABI \($0)" + (plugin.runtime.map { ", \($0)" } ?? "") + ")" } ?? ""
                lines.append("    [Library] \(path)\(abi)")
            }
            lines.append("")
        }
        return lines.joined(separator: "\n") + (verbose ? "" : "\n")
    }

    static func json(_ plugins: [Plugin]) -> String {
        let items = plugins.sorted(by: { $0.name < $1.name }).map { plugin -> JSON in
            .object([
                ("name", .string(plugin.name)),
                ("description", .string(plugin.description)),
                ("version", .string(plugin.version)),
                ("dynamic", .bool(plugin.origin.path != nil)),
                ("library", plugin.origin.path.map(JSON.string) ?? .null),
                ("abi", plugin.abiVersion.map { JSON.string($0.description) } ?? .null),
                ("runtime", plugin.runtime.map(JSON.string) ?? .null),
                ("option_namespace", .string(plugin.optionNamespace)),
                ("components", .array(plugin.components.map { component in
                    .object([
                        ("name", .string(component.name)),
                        ("prefix", .string(component.prefix)),
                        ("live", .bool(component.modes.contains(.live))),
                        ("trace", .bool(component.modes.contains(.offline))),
                        ("file_magics", .array(component.fileMagics.map { JSON.string(hex($0)) })),
                    ])
                })),
                ("options", .array(plugin.options.map { option in
                    .object([
                        ("name", .string("\(plugin.optionNamespace)::\(option.name)")),
                        ("type", .string(option.type.description)),
                        ("default", .string(option.defaultValue.description)),
                        ("doc", .string(option.documentation)),
                        ("choices", .array(option.choices.map(JSON.string))),
                    ])
                })),
            ])
        }
        return JSON.array(items).rendered + "\n"
    }

    /// "0a0d0d0a": bytes as lower-case hex, two digits each.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}

/// Just enough JSON to print listings without Foundation.
indirect enum JSON {
    case string(String), bool(Bool), null
    case array([JSON])
    case object([(String, JSON)])

    var rendered: String {
        switch self {
        case let .string(text): return Self.quote(text)
        case let .bool(value): return value ? "true" : "false"
        case .null: return "null"
        case let .array(items): return "[" + items.map(\.rendered).joined(separator: ",") + "]"
        case let .object(fields): return "{" + fields.map { Self.quote($0.0) + ":" + $0.1.rendered }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ text: String) -> String { JSONLinesWriter.quote(text) }
}
