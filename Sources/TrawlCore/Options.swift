import CTrawlABI

/// The type of a plugin option, named as Zeek names script types.
public enum OptionType: UInt32, Sendable, CustomStringConvertible {
    case bool = 1, count = 2, int = 3, double = 4, string = 5, `enum` = 6

    public var description: String {
        switch self {
        case .bool: return "bool"
        case .count: return "count"
        case .int: return "int"
        case .double: return "double"
        case .string: return "string"
        case .enum: return "enum"
        }
    }
}

/// A typed option value.
public enum OptionValue: Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case count(UInt64)
    case int(Int64)
    case double(Double)
    case string(String)
    case `enum`(String)

    /// Parses `text` as a value of `type`; nil when it is not one.
    public static func parse(_ text: String, as type: OptionType, choices: [String] = []) -> OptionValue? {
        switch type {
        case .bool:
            switch text.lowercased() {
            case "t", "true", "1", "yes", "on": return .bool(true)
            case "f", "false", "0", "no", "off": return .bool(false)
            default: return nil
            }
        case .count: return UInt64(text).map(OptionValue.count)
        case .int: return Int64(text).map(OptionValue.int)
        case .double:
            guard let value = Double(text), value.isFinite else { return nil }
            return .double(value)
        case .string: return .string(text)
        case .enum: return choices.contains(text) ? .enum(text) : nil
        }
    }

    public var description: String {
        switch self {
        case let .bool(value): return value ? "T" : "F"
        case let .count(value): return String(value)
        case let .int(value): return String(value)
        case let .double(value): return String(value)
        case let .string(value), let .enum(value): return value
        }
    }
}

/// An option a plugin declares. Its full name is `Namespace::name`.
public struct OptionDeclaration: Sendable, Equatable {
    public let name: String
    public let type: OptionType
    public let defaultValue: OptionValue
    public let documentation: String
    public let choices: [String]

    public init(name: String, type: OptionType, defaultValue: OptionValue, documentation: String, choices: [String] = []) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.documentation = documentation
        self.choices = choices
    }

    /// "count", or "enum: hash, lb, cpu" for enums.
    public var typeDescription: String {
        type == .enum ? "enum: " + choices.joined(separator: ", ") : type.description
    }
}

public struct OptionError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Splits command-line words into Zeek-style option assignments (`AF_Packet::fanout_id=24`)
/// and everything else.
public enum OptionAssignment {
    /// Returns (namespace, name, value) when `word` has the shape `NS::name=value`.
    public static func parse(_ word: String) -> (namespace: String, name: String, value: String)? {
        guard let equals = word.firstIndex(of: "="),
              let separator = word[..<equals].firstRange(of: "::") else { return nil }
        let namespace = String(word[..<separator.lowerBound])
        let name = String(word[separator.upperBound..<equals])
        guard isIdentifier(namespace), isIdentifier(name) else { return nil }
        return (namespace, name, String(word[word.index(after: equals)...]))
    }

    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first == "_" || first.properties.isAlphabetic else { return false }
        return text.unicodeScalars.allSatisfy { $0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }
    }
}
