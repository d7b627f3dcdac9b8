/// Option values set on the command line, checked against what the plugins declare.
public struct OptionSettings: Sendable {
    /// Values by plugin name, then option name.
    private var values: [String: [String: OptionValue]] = [:]

    public init() {}

    /// Parses `Namespace::name=value` assignments. An unknown name or a value of the wrong
    /// type is an error whose text lists the valid options.
    public init(assignments: [String], registry: SourceRegistry) throws(OptionError) {
        for word in assignments {
            guard let (namespace, name, text) = OptionAssignment.parse(word) else {
                throw OptionError("'\(word)' is not an option assignment of the form Namespace::name=value")
            }
            guard let plugin = registry.plugins.first(where: { $0.optionNamespace == namespace }),
                  let declaration = plugin.options.first(where: { $0.name == name }) else {
                throw OptionError("unknown option \(namespace)::\(name)\n" + Self.listing(registry))
            }
            guard let value = OptionValue.parse(text, as: declaration.type, choices: declaration.choices) else {
                throw OptionError("invalid value '\(text)' for \(namespace)::\(name): expected \(declaration.typeDescription)\n"
                    + Self.listing(registry))
            }
            values[plugin.name, default: [:]][name] = value
        }
    }

    /// The plugin's option values in declaration order, defaults for those not set.
    public func values(for plugin: Plugin) -> [OptionValue] {
        let set = values[plugin.name] ?? [:]
        return plugin.options.map { set[$0.name] ?? $0.defaultValue }
    }

    /// "valid options are:" followed by one line per option of every plugin.
    static func listing(_ registry: SourceRegistry) -> String {
        var lines: [String] = []
        for plugin in registry.plugins {
            for option in plugin.options {
                lines.append("    \(plugin.optionNamespace)::\(option.name) (\(option.typeDescription), default \(option.defaultValue))")
            }
        }
        return lines.isEmpty ? "no plugin declares any option" : "valid options are:\n" + lines.joined(separator: "\n")
    }
}
