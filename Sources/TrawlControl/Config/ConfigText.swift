/// A problem in one of the configuration files, with where it is: `node.cfg:12: ...`.
public struct ConfigProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public let file: String
    /// 0 when the problem is about the file as a whole.
    public let line: Int
    public let message: String

    public init(_ file: String, _ line: Int, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// One `key = value` of a configuration file, with the line it came from.
public struct ConfigEntry: Equatable, Sendable {
    /// Lowercased, as zeekctl reads keys (and with `.` as `_` in node.cfg).
    public let key: String
    public let value: String
    public let line: Int
}

/// node.cfg's format, as Python's configparser reads it for zeekctl: `[section]` headers,
/// `key = value` (or `key: value`) with keys in any case, whole-line comments starting with
/// `#` or `;`, indented lines continuing the value above, and a `[DEFAULT]` section whose
/// keys every section has unless it sets them itself.
public struct INIFile: Sendable {
    public struct Section: Sendable {
        public let name: String
        public let line: Int
        public private(set) var entries: [ConfigEntry]

        init(name: String, line: Int, entries: [ConfigEntry] = []) {
            self.name = name
            self.line = line
            self.entries = entries
        }

        public subscript(key: String) -> ConfigEntry? { entries.last { $0.key == key } }

        mutating func add(_ entry: ConfigEntry) { entries.append(entry) }
        mutating func continueLast(with text: String) {
            guard let last = entries.popLast() else { return }
            entries.append(ConfigEntry(key: last.key, value: last.value + "\n" + text, line: last.line))
        }
    }

    public let file: String
    public private(set) var sections: [Section] = []

    /// Reads `text`, the contents of `file` (named in problems).
    public init(parsing text: String, file: String, dotsAsUnderscores: Bool = true) throws(ConfigProblem) {
        self.file = file
        var defaults = Section(name: "DEFAULT", line: 0)
        var current: Int? // index in sections, or nil for DEFAULT / before any section
        var inDefault = false
        var seenKeys: Set<String> = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let trimmed = line.trimmingWhitespace
            if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }
            if line.first == " " || line.first == "\t" {
                // A continuation of the value above.
                guard current != nil || inDefault, !seenKeys.isEmpty else {
                    throw ConfigProblem(file, number, "an indented line continues no value")
                }
                if inDefault { defaults.continueLast(with: String(trimmed)) } else { sections[current!].continueLast(with: String(trimmed)) }
                continue
            }
            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]"), trimmed.count > 2 else {
                    throw ConfigProblem(file, number, "a section header is [NAME], not '\(trimmed)'")
                }
                let name = String(trimmed.dropFirst().dropLast()).trimmingWhitespace
                guard !name.isEmpty else { throw ConfigProblem(file, number, "a section needs a name") }
                seenKeys = []
                if name == "DEFAULT" {
                    inDefault = true
                    current = nil
                    continue
                }
                if let other = sections.first(where: { $0.name == name }) {
                    throw ConfigProblem(file, number, "section [\(name)] again (first at line \(other.line))")
                }
                inDefault = false
                sections.append(Section(name: String(name), line: number))
                current = sections.count - 1
                continue
            }
            guard let separator = trimmed.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw ConfigProblem(file, number, "expected 'key = value' or a [section], not '\(trimmed)'")
            }
            var key = trimmed[..<separator].trimmingWhitespace.lowercased()
            if dotsAsUnderscores { key = key.replacingAll(".", with: "_") }
            let value = String(trimmed[trimmed.index(after: separator)...].trimmingWhitespace)
            guard !key.isEmpty else { throw ConfigProblem(file, number, "a value without a key") }
            guard current != nil || inDefault else {
                throw ConfigProblem(file, number, "'\(key)' comes before any [section]")
            }
            guard seenKeys.insert(key).inserted else {
                throw ConfigProblem(file, number, "'\(key)' is set twice in this section")
            }
            let entry = ConfigEntry(key: key, value: value, line: number)
            if inDefault { defaults.add(entry) } else { sections[current!].add(entry) }
        }
        // [DEFAULT]'s keys, where a section does not set them.
        for index in sections.indices {
            for entry in defaults.entries where sections[index][entry.key] == nil { sections[index].add(entry) }
        }
    }
}

/// zeekctl.cfg's format (and networks.cfg's lines): `key = value` lines and `#` comments.
public struct KeyValueFile: Sendable {
    public let file: String
    public private(set) var entries: [ConfigEntry] = []

    public init(parsing text: String, file: String) throws(ConfigProblem) {
        self.file = file
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = raw.trimmingWhitespace
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ConfigProblem(file, index + 1, "expected 'Key = value', not '\(trimmed)'")
            }
            let key = trimmed[..<equals].trimmingWhitespace.lowercased()
            guard !key.isEmpty else { throw ConfigProblem(file, index + 1, "a value without a key") }
            entries.append(ConfigEntry(key: key, value: String(trimmed[trimmed.index(after: equals)...].trimmingWhitespace),
                                       line: index + 1))
        }
    }

    /// The last value given for `key` (later lines win, as in zeekctl).
    public subscript(key: String) -> ConfigEntry? { entries.last { $0.key == key.lowercased() } }
}

extension StringProtocol {
    var trimmingWhitespace: Substring {
        let s = Substring(self)
        guard let first = s.firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = s.lastIndex(where: { !$0.isWhitespace })!
        return s[first...last]
    }

    func replacingAll(_ old: Character, with new: Character) -> String { String(map { $0 == old ? new : $0 }) }
}
