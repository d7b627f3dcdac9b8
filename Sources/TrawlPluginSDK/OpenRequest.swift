/// What the host asks a plugin to open, with the plugin's option values. Everything is
/// copied out of the C request, so a plugin may keep it (and read it) after `init`.
public struct OpenRequest: Sendable {
    public enum Mode: Sendable { case live, offline }

    /// An option value as the host sent it (ENUM values are strings).
    public enum Value: Sendable, Equatable {
        case bool(Bool), count(UInt64), int(Int64), double(Double), string(String)
    }

    /// The interface or file name, without the plugin's prefix.
    public let path: String
    public let mode: Mode
    /// How long a live `nextBatch` may wait for packets; 0 means it must not block.
    public let timeoutMilliseconds: UInt32
    /// The host's services for this source: warnings, weirds, failures.
    public let host: SourceHost
    private let values: [String: Value]

    init(_ request: trawl_open_request, declared: [PluginOption]) {
        path = String(cString: request.path)
        mode = request.mode == TRAWL_MODE_LIVE.rawValue ? .live : .offline
        timeoutMilliseconds = request.timeout_ms
        host = SourceHost(request.host)
        var values: [String: Value] = [:]
        for (index, option) in declared.enumerated() where index < Int(request.option_count) {
            values[option.name] = Self.value(request.options[index])
        }
        self.values = values
    }

    /// A request made in Swift (tests, fuzzers): options as given, the rest at their defaults.
    public init(path: String, mode: Mode, timeoutMilliseconds: UInt32 = 100, options: [String: Value] = [:],
                host: SourceHost = SourceHost(nil)) {
        self.path = path
        self.mode = mode
        self.timeoutMilliseconds = timeoutMilliseconds
        self.host = host
        values = options
    }

    static func value(_ c: trawl_option_value) -> Value? {
        switch c.type {
        case TRAWL_OPTION_BOOL.rawValue: return .bool(c.value.boolean != 0)
        case TRAWL_OPTION_COUNT.rawValue: return .count(c.value.count)
        case TRAWL_OPTION_INT.rawValue: return .int(c.value.integer)
        case TRAWL_OPTION_DOUBLE.rawValue: return .double(c.value.real)
        case TRAWL_OPTION_STRING.rawValue, TRAWL_OPTION_ENUM.rawValue: return c.value.string.map { .string(String(cString: $0)) }
        default: return nil
        }
    }

    /// The option's value: what the user set, else the default it was declared with.
    public subscript<V>(option: SourceOption<V>) -> V {
        values[option.name].flatMap(V.init) ?? option.defaultValue
    }

    public func bool(_ name: String) -> Bool? { values[name].flatMap(Bool.init) }
    public func count(_ name: String) -> UInt64? { values[name].flatMap(UInt64.init) }
    public func int(_ name: String) -> Int64? { values[name].flatMap(Int64.init) }
    public func double(_ name: String) -> Double? { values[name].flatMap(Double.init) }
    public func string(_ name: String) -> String? { values[name].flatMap(String.init) }
}

/// The slots of one batch, filled by a plugin's `nextBatch`.
public struct BatchOutput {
    @usableFromInline let slots: UnsafeMutablePointer<trawl_packet>
    public let capacity: Int
    @usableFromInline var _count: Int = 0
    public var count: Int { _count }

    @inlinable public var isFull: Bool { _count >= capacity }

    /// Slots for `capacity` packets (the host passes its batch; tests and fuzzers their own).
    public init(slots: UnsafeMutablePointer<trawl_packet>, capacity: Int) {
        self.slots = slots
        self.capacity = capacity
    }

    /// Adds one packet; `data` must stay valid until the next read. `flags` are TRAWL_PACKET_*
    /// bits; `linkType` is set only when it differs from the source's. Returns false when full.
    @inlinable @discardableResult
    public mutating func append(timestampNanoseconds: UInt64, capturedLength: UInt32, wireLength: UInt32,
                                data: UnsafePointer<UInt8>?, flags: UInt32 = 0, linkType: UInt32 = 0) -> Bool {
        guard _count < capacity else { return false }
        slots[_count] = trawl_packet(timestamp_ns: timestampNanoseconds, captured_length: capturedLength,
                                    wire_length: wireLength, data: data, flags: flags, link_type: linkType)
        _count += 1
        return true
    }
}
