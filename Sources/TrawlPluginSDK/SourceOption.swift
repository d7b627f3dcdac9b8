/// A value an option can have: the Swift type a plugin reads, and how the ABI declares it.
public protocol SourceOptionValue: Sendable {
    /// The declaration of an option of this type whose default is `value`.
    static func kind(default value: Self) -> PluginOption.Kind
    /// The value the host sent, when it is of this type.
    init?(_ value: OpenRequest.Value)
}

extension Bool: SourceOptionValue {
    public static func kind(default value: Bool) -> PluginOption.Kind { .bool(default: value) }
    public init?(_ value: OpenRequest.Value) {
        guard case let .bool(b) = value else { return nil }
        self = b
    }
}

extension UInt64: SourceOptionValue {
    public static func kind(default value: UInt64) -> PluginOption.Kind { .count(default: value) }
    public init?(_ value: OpenRequest.Value) {
        guard case let .count(n) = value else { return nil }
        self = n
    }
}

extension Int64: SourceOptionValue {
    public static func kind(default value: Int64) -> PluginOption.Kind { .int(default: value) }
    public init?(_ value: OpenRequest.Value) {
        guard case let .int(n) = value else { return nil }
        self = n
    }
}

extension Double: SourceOptionValue {
    public static func kind(default value: Double) -> PluginOption.Kind { .double(default: value) }
    public init?(_ value: OpenRequest.Value) {
        guard case let .double(d) = value else { return nil }
        self = d
    }
}

extension String: SourceOptionValue {
    public static func kind(default value: String) -> PluginOption.Kind { .string(default: value) }
    public init?(_ value: OpenRequest.Value) {
        guard case let .string(s) = value else { return nil }
        self = s
    }
}

/// A Swift enum of strings is an ENUM option: its cases are the choices.
public protocol SourceOptionChoice: SourceOptionValue, RawRepresentable, CaseIterable where RawValue == String {}

extension SourceOptionChoice {
    public static func kind(default value: Self) -> PluginOption.Kind {
        .enum(default: value.rawValue, choices: allCases.map(\.rawValue))
    }
    public init?(_ value: OpenRequest.Value) {
        guard case let .string(s) = value else { return nil }
        self.init(rawValue: s)
    }
}

/// An option declared once, with its default, and read with that type:
///
///     static let ringSize = SourceOption("ring_size", default: UInt64(4096), "Slots in the ring")
///     ... options: [ringSize.declaration] ...
///     let slots = request[Self.ringSize]   // a UInt64: the user's value or the default
public struct SourceOption<Value: SourceOptionValue>: Sendable {
    public let name: String
    public let defaultValue: Value
    public let declaration: PluginOption

    public init(_ name: String, default value: Value, _ documentation: String) {
        self.name = name
        defaultValue = value
        declaration = PluginOption(name, Value.kind(default: value), documentation)
    }
}
