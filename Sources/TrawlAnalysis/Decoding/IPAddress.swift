/// An IPv4 or IPv6 address held inline (no allocation), IPv4 as ::ffff:a.b.c.d as Zeek does.
@frozen
public struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    @inlinable public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From four bytes in network order.
    @inlinable public init(v4 bytes: UnsafeRawBufferPointer, at offset: Int) {
        let value = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        high = 0
        low = 0x0000_ffff_0000_0000 | UInt64(value)
    }

    /// From sixteen bytes in network order.
    @inlinable public init(v6 bytes: UnsafeRawBufferPointer, at offset: Int) {
        high = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
    }

    public init?(_ text: String) {
        if text.contains(":") {
            guard let parsed = Self.parseV6(text) else { return nil }
            self = parsed
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard let byte = UInt8(part) else { return nil }
                value = value << 8 | UInt32(byte)
            }
            high = 0
            low = 0x0000_ffff_0000_0000 | UInt64(value)
        }
    }

    @inlinable public var isV4: Bool { high == 0 && low >> 32 == 0x0000_ffff }
    public var v4Value: UInt32 { UInt32(truncatingIfNeeded: low) }
    /// 224.0.0.0/4 or ff00::/8.
    public var isMulticast: Bool { isV4 ? v4Value >> 28 == 0xe : high >> 56 == 0xff }
    /// 255.255.255.255 (Zeek never makes it a connection's responder by flipping).
    public var isBroadcast: Bool { isV4 && v4Value == 0xffff_ffff }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }

    /// Dotted quad, or RFC 5952 text for IPv6 (the longest run of zero groups as "::").
    public var description: String {
        if isV4 {
            let v = v4Value
            return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
        }
        let groups = (0..<8).map { i -> UInt16 in
            let word = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(i % 4)))
        }
        var bestStart = -1, bestLength = 0, start = -1
        for i in 0...8 {
            if i < 8 && groups[i] == 0 {
                if start < 0 { start = i }
            } else if start >= 0 {
                if i - start > bestLength && i - start > 1 { bestStart = start; bestLength = i - start }
                start = -1
            }
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    static func parseV6(_ text: String) -> IPAddress? {
        var halves: [String] = [text]
        if let gap = text.firstRange(of: "::") {
            halves = [String(text[..<gap.lowerBound]), String(text[gap.upperBound...])]
            if halves[1].contains("::") { return nil }
        }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for piece in part.split(separator: ":", omittingEmptySubsequences: false) {
                if piece.contains("."), let v4 = IPAddress(String(piece)), v4.isV4 {
                    result.append(UInt16(v4.v4Value >> 16))
                    result.append(UInt16(v4.v4Value & 0xffff))
                } else {
                    guard piece.count <= 4, let value = UInt16(piece, radix: 16) else { return nil }
                    result.append(value)
                }
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(all[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(all[i]) }
        return IPAddress(high: h, low: l)
    }
}

/// An address prefix, for local networks.
public struct Subnet: Sendable, Hashable, CustomStringConvertible {
    public let network: IPAddress
    /// In the 128-bit space (an IPv4 /8 is /104).
    public let length: Int

    /// The masks of the prefix, kept so that `contains` is two ANDs and a compare.
    private let highMask: UInt64, lowMask: UInt64

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let bits = Int(parts[1]) else { return nil }
        let length = address.isV4 ? bits + 96 : bits
        guard (address.isV4 ? 0...32 : 0...128).contains(bits) else { return nil }
        self.length = length
        highMask = length >= 64 ? .max : (length == 0 ? 0 : ~UInt64(0) << (64 - UInt64(length)))
        lowMask = length <= 64 ? 0 : (length >= 128 ? .max : ~UInt64(0) << (128 - UInt64(length)))
        network = IPAddress(high: address.high & highMask, low: address.low & lowMask)
    }

    public func contains(_ address: IPAddress) -> Bool {
        address.high & highMask == network.high && address.low & lowMask == network.low
    }

    public var description: String {
        network.isV4 ? "\(network)/\(length - 96)" : "\(network)/\(length)"
    }
}

/// A set of subnets asked about every address of every logged connection (local_orig,
/// local_resp): IPv4 prefixes behind a bitmap of the first octets they cover, so that most
/// addresses are answered by one bit; IPv4 and IPv6 prefixes each scanned only for their kind.
public struct SubnetSet: Sendable {
    private var v4: [(network: UInt32, mask: UInt32)] = []
    private var v6: [Subnet] = []
    /// Bit n set: some IPv4 prefix covers first octet n.
    private var firstOctets: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init(_ subnets: [Subnet]) {
        for subnet in subnets {
            guard subnet.network.isV4 else {
                v6.append(subnet)
                continue
            }
            let bits = subnet.length - 96
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << UInt32(32 - bits)
            let network = UInt32(truncatingIfNeeded: subnet.network.low) & mask
            v4.append((network, mask))
            let first = Int(network >> 24), covered = bits >= 8 ? 1 : 1 << (8 - bits)
            for octet in first..<min(256, first + covered) { setOctet(octet) }
        }
    }

    private mutating func setOctet(_ octet: Int) {
        let bit = UInt64(1) << UInt64(octet & 63)
        switch octet >> 6 {
        case 0: firstOctets.0 |= bit
        case 1: firstOctets.1 |= bit
        case 2: firstOctets.2 |= bit
        default: firstOctets.3 |= bit
        }
    }

    public func contains(_ address: IPAddress) -> Bool {
        if address.isV4 {
            let value = UInt32(truncatingIfNeeded: address.low)
            let octet = Int(value >> 24)
            let word: UInt64
            switch octet >> 6 {
            case 0: word = firstOctets.0
            case 1: word = firstOctets.1
            case 2: word = firstOctets.2
            default: word = firstOctets.3
            }
            guard word & (UInt64(1) << UInt64(octet & 63)) != 0 else { return false }
            return v4.contains { value & $0.mask == $0.network }
        }
        return v6.contains { $0.contains(address) }
    }
}
