/// A netmap port name as netmap spells it, and the registration it asks for:
///
///     em0          every hardware ring of em0
///     em0-1        hardware ring 1 only
///     em0^         the host rings (what the host stack sends)
///     em0* em0+    hardware and host rings
///     lb{0         master end of pipe 0 of `lb`     lb}0   its slave end
///     .../x        exclusive: nobody else may bind these rings
///     .../r .../t  monitor what is received / transmitted (.../z: zero-copy monitor)
///
/// `netmap::em0` reaches this plugin; the single-colon `netmap:em0` stays libpcap's.
public struct NetmapPort: Equatable, Sendable {
    public enum Rings: Equatable, Sendable {
        case allHardware
        case one(UInt16)
        case host
        case hardwareAndHost
        case pipeMaster(String)
        case pipeSlave(String)
    }

    public var interface: String
    public var rings: Rings
    public var exclusive = false
    public var monitorReceive = false
    public var monitorTransmit = false
    public var zeroCopyMonitor = false

    /// Ring numbers netmap accepts in a name.
    public static let maximumRing = 4095

    public init(parsing text: String) throws(NetmapPortError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        if parts.count == 2 {
            if parts[1].isEmpty { throw NetmapPortError(text, "nothing after '/'") }
            for flag in parts[1] {
                switch flag {
                case "x": exclusive = true
                case "r": monitorReceive = true
                case "t": monitorTransmit = true
                case "z": zeroCopyMonitor = true
                default:
                    throw NetmapPortError(text, "unknown flag '\(flag)' (x exclusive, r monitor receive, t monitor transmit, z zero-copy monitor)")
                }
            }
        }
        let separators: Set<Character> = ["-", "^", "*", "+", "{", "}"]
        let cut = name.firstIndex(where: separators.contains) ?? name.endIndex
        interface = String(name[..<cut])
        guard !interface.isEmpty else { throw NetmapPortError(text, "no interface name") }
        guard interface.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.:".contains($0)) }) else {
            throw NetmapPortError(text, "'\(interface)' is not an interface name")
        }
        let rest = name[cut...]
        guard let kind = rest.first else {
            rings = .allHardware
            return
        }
        let argument = String(rest.dropFirst())
        switch kind {
        case "-":
            guard !argument.isEmpty, argument.allSatisfy(\.isASCII), argument.allSatisfy(\.isNumber),
                  let ring = Int(argument), ring <= Self.maximumRing else {
                throw NetmapPortError(text, "a ring is a number from 0 to \(Self.maximumRing) after '-'")
            }
            rings = .one(UInt16(ring))
        case "^", "*", "+":
            guard argument.isEmpty else { throw NetmapPortError(text, "nothing may follow '\(kind)'") }
            rings = kind == "^" ? .host : .hardwareAndHost
        default: // a pipe
            guard !argument.isEmpty, argument.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw NetmapPortError(text, "a pipe needs an identifier after '\(kind)' (letters, digits, _)")
            }
            rings = kind == "{" ? .pipeMaster(argument) : .pipeSlave(argument)
        }
    }

    /// The name given to the kernel: the interface, or for a pipe the whole "x{y".
    public var kernelName: String {
        switch rings {
        case let .pipeMaster(id): return interface + "{" + id
        case let .pipeSlave(id): return interface + "}" + id
        default: return interface
        }
    }

    /// Registration mode (TRAWL_NR_REG_*) and ring for the request.
    public var mode: (mode: UInt32, ring: UInt16) {
        switch rings {
        case .allHardware, .pipeMaster, .pipeSlave: return (1, 0)
        case let .one(ring): return (4, ring)
        case .host: return (2, 0)
        case .hardwareAndHost: return (3, 0)
        }
    }

    /// Registration flags (TRAWL_NR_*).
    public var flags: UInt64 {
        (monitorTransmit ? 0x100 : 0) | (monitorReceive ? 0x200 : 0) | (zeroCopyMonitor ? 0x400 : 0) | (exclusive ? 0x800 : 0)
    }

    /// Whether the port is a NIC (it has interface counters), not a pipe.
    public var isPipe: Bool {
        switch rings {
        case .pipeMaster, .pipeSlave: return true
        default: return false
        }
    }
}

public struct NetmapPortError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ port: String, _ problem: String) { description = "bad netmap port '\(port)': \(problem)" }
}
