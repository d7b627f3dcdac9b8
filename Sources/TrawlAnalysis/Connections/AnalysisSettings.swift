/// The analysis settings an operator gives as Zeek spells them, on the command line or in a
/// cluster layout's `options`:
///
///     Site::local_nets=10.0.0.0/8,192.168.0.0/16        (or {10.0.0.0/8, 192.168.0.0/16})
///     Site::private_address_space_is_local=F
///     tcp_inactivity_timeout=10min   udp_inactivity_timeout=30sec   icmp_inactivity_timeout=1min
///     Weird::sampling_threshold=1000   Weird::sampling_rate=1000   Weird::sampling_duration=10min
///
/// As in Zeek, the local networks given are added to the private address space unless
/// `Site::private_address_space_is_local=F`.
public struct AnalysisSettings: Equatable, Sendable {
    public var localNetworks: [Subnet]?
    public var privateAddressSpaceIsLocal = true
    public var tcpInactivityTimeout: UInt64?
    public var udpInactivityTimeout: UInt64?
    public var icmpInactivityTimeout: UInt64?
    public var weirdSamplingThreshold: UInt64?
    public var weirdSamplingRate: UInt64?
    public var weirdSamplingDuration: UInt64?

    public init() {}

    /// The names this type takes.
    public static let names = ["Site::local_nets", "Site::private_address_space_is_local", "tcp_inactivity_timeout",
                               "udp_inactivity_timeout", "icmp_inactivity_timeout", "Weird::sampling_threshold",
                               "Weird::sampling_rate", "Weird::sampling_duration"]

    /// Takes `word` when it is one of these settings: true when taken, false when the word
    /// is something else, an error (naming the setting) when it is one with a bad value.
    public mutating func take(_ word: String) throws(AnalysisSettingError) -> Bool {
        guard let equals = word.firstIndex(of: "=") else { return false }
        let name = String(word[..<equals]), value = String(word[word.index(after: equals)...])
        switch name {
        case "Site::local_nets":
            var text = Substring(value)
            if text.hasPrefix("{") && text.hasSuffix("}") { text = text.dropFirst().dropLast() }
            var subnets: [Subnet] = []
            for part in text.split(separator: ",") {
                let cidr = part.filter { $0 != " " }
                guard let subnet = Subnet(String(cidr)) else {
                    throw AnalysisSettingError(name: name, message: "'\(cidr)' is not a subnet (CIDR such as 10.0.0.0/8 or 2001:db8::/32)")
                }
                subnets.append(subnet)
            }
            localNetworks = (localNetworks ?? []) + subnets
        case "Site::private_address_space_is_local":
            switch value.lowercased() {
            case "t", "true": privateAddressSpaceIsLocal = true
            case "f", "false": privateAddressSpaceIsLocal = false
            default: throw AnalysisSettingError(name: name, message: "expected T or F, not '\(value)'")
            }
        case "tcp_inactivity_timeout", "udp_inactivity_timeout", "icmp_inactivity_timeout":
            guard let interval = Self.interval(value), interval > 0 else {
                throw AnalysisSettingError(name: name, message: "'\(value)' is not an interval above 0 (300, 300sec, 5min, 1hr, 2days)")
            }
            switch name {
            case "tcp_inactivity_timeout": tcpInactivityTimeout = interval
            case "udp_inactivity_timeout": udpInactivityTimeout = interval
            default: icmpInactivityTimeout = interval
            }
        case "Weird::sampling_threshold", "Weird::sampling_rate":
            guard let count = UInt64(value) else {
                throw AnalysisSettingError(name: name, message: "'\(value)' is not a count (0 or more)")
            }
            if name.hasSuffix("threshold") { weirdSamplingThreshold = count } else { weirdSamplingRate = count }
        case "Weird::sampling_duration":
            guard let interval = Self.interval(value), interval > 0 else {
                throw AnalysisSettingError(name: name, message: "'\(value)' is not an interval above 0 (600, 10min, 1hr)")
            }
            weirdSamplingDuration = interval
        default:
            return false
        }
        return true
    }

    /// A Zeek interval: a number and a unit (usec, msec, sec, min, hr, day, plural or not,
    /// spaced or not); a bare number is seconds.
    public static func interval(_ text: String) -> UInt64? {
        let trimmed = text.filter { $0 != " " }
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        var unit = String(trimmed.dropFirst(number.count))
        if unit.hasSuffix("s") && unit.count > 1 && unit != "s" { unit.removeLast() }
        let scale: Double
        switch unit {
        case "", "sec", "s": scale = 1e9
        case "usec": scale = 1e3
        case "msec": scale = 1e6
        case "min": scale = 60e9
        case "hr": scale = 3600e9
        case "day": scale = 86_400e9
        default: return nil
        }
        let nanoseconds = value * scale
        guard nanoseconds < 1e18 else { return nil }
        return UInt64(nanoseconds)
    }

    /// These settings with `other`'s on top (the command line's over a layout's).
    public func merged(with other: AnalysisSettings) -> AnalysisSettings {
        var merged = self
        if let nets = other.localNetworks { merged.localNetworks = nets }
        if !other.privateAddressSpaceIsLocal { merged.privateAddressSpaceIsLocal = false }
        merged.tcpInactivityTimeout = other.tcpInactivityTimeout ?? tcpInactivityTimeout
        merged.udpInactivityTimeout = other.udpInactivityTimeout ?? udpInactivityTimeout
        merged.icmpInactivityTimeout = other.icmpInactivityTimeout ?? icmpInactivityTimeout
        merged.weirdSamplingThreshold = other.weirdSamplingThreshold ?? weirdSamplingThreshold
        merged.weirdSamplingRate = other.weirdSamplingRate ?? weirdSamplingRate
        merged.weirdSamplingDuration = other.weirdSamplingDuration ?? weirdSamplingDuration
        return merged
    }

    /// Applies the settings given to `configuration`.
    public func apply(to configuration: inout AnalysisConfiguration) {
        if localNetworks != nil || !privateAddressSpaceIsLocal {
            configuration.localNetworks = (localNetworks ?? []) + (privateAddressSpaceIsLocal ? AnalysisConfiguration.privateAddressSpace : [])
        }
        if let tcpInactivityTimeout { configuration.tcpInactivityTimeout = tcpInactivityTimeout }
        if let udpInactivityTimeout { configuration.udpInactivityTimeout = udpInactivityTimeout }
        if let icmpInactivityTimeout { configuration.icmpInactivityTimeout = icmpInactivityTimeout }
        if let weirdSamplingThreshold { configuration.weirds.sampling.threshold = weirdSamplingThreshold }
        if let weirdSamplingRate { configuration.weirds.sampling.rate = weirdSamplingRate }
        if let weirdSamplingDuration { configuration.weirds.sampling.duration = weirdSamplingDuration }
    }
}

public struct AnalysisSettingError: Error, Equatable, CustomStringConvertible {
    public let name: String
    public let message: String
    public var description: String { "\(name): \(message)" }
}
