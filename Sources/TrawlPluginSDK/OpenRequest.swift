/// What the host asks a plugin to open, with the plugin's option values.
public struct OpenRequest {
    public enum Mode: Sendable { case live, offline }

    /// The interface or file name, without the plugin's prefix.
    public let path: String
    public let mode: Mode
    /// How long a live `nextBatch` may wait for packets; 0 means it must not block.
    public let timeoutMilliseconds: UInt32
    private let values: [String: trawl_option_value]

    init(_ request: trawl_open_request, declared: [PluginOption]) {
        path = String(cString: request.path)
        mode = request.mode == TRAWL_MODE_LIVE.rawValue ? .live : .offline
        timeoutMilliseconds = request.timeout_ms
        var values: [String: trawl_option_value] = [:]
        for (index, option) in declared.enumerated() where index < Int(request.option_count) {
            values[option.name] = request.options[index]
        }
        self.values = values
    }

    public init(path: String, mode: Mode, timeoutMilliseconds: UInt32 = 100) {
        self.path = path
        self.mode = mode
        self.timeoutMilliseconds = timeoutMilliseconds
        values = [:]
    }

    private func value(_ name: String, _ type: trawl_option_type) -> trawl_option_value? {
        guard let value = values[name], value.type == type.rawValue else { return nil }
        return value
    }

    public func bool(_ name: String) -> Bool? { value(name, TRAWL_OPTION_BOOL).map { $0.value.boolean != 0 } }
    public func count(_ name: String) -> UInt64? { value(name, TRAWL_OPTION_COUNT).map { $0.value.count } }
    public func int(_ name: String) -> Int64? { value(name, TRAWL_OPTION_INT).map { $0.value.integer } }
    public func double(_ name: String) -> Double? { value(name, TRAWL_OPTION_DOUBLE).map { $0.value.real } }
    public func string(_ name: String) -> String? {
        (value(name, TRAWL_OPTION_STRING) ?? value(name, TRAWL_OPTION_ENUM)).flatMap { $0.value.string.map { String(cString: $0) } }
    }
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
