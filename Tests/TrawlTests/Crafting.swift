import TrawlAnalysis
import TrawlCore

/// Frames built byte by byte for the analyzer tests: IP datagrams with correct checksums,
/// the transports in them, and every link layer and tunnel the analysis decodes around them.
enum Craft {
    static func be16(_ v: UInt16) -> [UInt8] { PacketBuilder.be16(v) }
    static func be32(_ v: UInt32) -> [UInt8] { PacketBuilder.be32(v) }
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { le16(UInt16(v & 0xffff)) + le16(UInt16(v >> 16)) }

    static func address(_ text: String) -> IPAddress { IPAddress(text)! }

    static func bytes(of address: IPAddress) -> [UInt8] {
        address.isV4 ? be32(address.v4Value) : (0..<16).map { i in
            UInt8(truncatingIfNeeded: (i < 8 ? address.high : address.low) >> (56 - 8 * UInt64(i % 8)))
        }
    }

    /// The ones'-complement checksum of `bytes` (with `initial` added), ready to store.
    static func checksum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 { PacketBuilder.sum(bytes, initial: initial) }

    /// Stores the transport checksum of `segment` (pseudo-header of `source`, `destination`).
    static func withChecksum(_ segment: [UInt8], at offset: Int, proto: UInt8, _ source: IPAddress, _ destination: IPAddress) -> [UInt8] {
        var s = segment
        s[offset] = 0
        s[offset + 1] = 0
        let pseudo = bytes(of: source) + bytes(of: destination) + (source.isV4 ? [0, proto] + be16(UInt16(s.count))
            : be32(UInt32(s.count)) + [0, 0, 0, proto])
        let sum = checksum(pseudo + s)
        s[offset] = UInt8(sum >> 8)
        s[offset + 1] = UInt8(sum & 0xff)
        return s
    }

    // MARK: Transports

    static func udp(_ sport: UInt16, _ dport: UInt16, payload: [UInt8], from source: IPAddress, to destination: IPAddress) -> [UInt8] {
        withChecksum(be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload, at: 6, proto: 17,
                     source, destination)
    }

    static func tcp(_ sport: UInt16, _ dport: UInt16, flags: UInt8, seq: UInt32 = 1, ack: UInt32 = 0, payload: [UInt8] = [],
                    from source: IPAddress, to destination: IPAddress) -> [UInt8] {
        withChecksum(be16(sport) + be16(dport) + be32(seq) + be32(ack) + [0x50, flags] + be16(8192) + [0, 0, 0, 0] + payload,
                     at: 16, proto: 6, source, destination)
    }

    static func icmpEcho(request: Bool, payload: Int = 8) -> [UInt8] {
        var message: [UInt8] = [request ? 8 : 0, 0, 0, 0, 0, 1, 0, 1] + [UInt8](repeating: 0x63, count: payload)
        let sum = checksum(message)
        message[2] = UInt8(sum >> 8)
        message[3] = UInt8(sum & 0xff)
        return message
    }

    // MARK: IP

    static func ipv4(_ source: IPAddress, _ destination: IPAddress, proto: UInt8, _ payload: [UInt8], id: UInt16 = 1,
                     fragment: UInt16 = 0x4000, totalLength: Int? = nil) -> [UInt8] {
        var header: [UInt8] = [0x45, 0] + be16(UInt16(totalLength ?? 20 + payload.count)) + be16(id) + be16(fragment)
            + [64, proto, 0, 0] + bytes(of: source) + bytes(of: destination)
        let sum = checksum(header)
        header[10] = UInt8(sum >> 8)
        header[11] = UInt8(sum & 0xff)
        return header + payload
    }

    /// An IPv6 packet; `extensions` are (type, body) pairs in order, each body without its
    /// next-header byte (the length byte is computed; bodies are padded to 8-byte units).
    static func ipv6(_ source: IPAddress, _ destination: IPAddress, next: UInt8, _ payload: [UInt8],
                     extensions: [(UInt8, [UInt8])] = []) -> [UInt8] {
        var chain: [UInt8] = []
        let types = extensions.map(\.0) + [next]
        for (index, (type, body)) in extensions.enumerated() {
            if type == 44 { // fragment header: 8 bytes, its body given whole
                chain += [types[index + 1]] + body
                continue
            }
            var header = [types[index + 1], 0] + body
            while header.count % 8 != 0 { header.append(0) }
            header[1] = UInt8(header.count / 8 - 1)
            chain += header
        }
        return [0x60, 0, 0, 0] + be16(UInt16(chain.count + payload.count)) + [types[0], 64]
            + bytes(of: source) + bytes(of: destination) + chain + payload
    }

    /// UDP in IPv4 or IPv6 (by the addresses), as IP bytes.
    static func udpPacket(_ source: String, _ sport: UInt16, _ destination: String, _ dport: UInt16, payload: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
        let s = address(source), d = address(destination)
        let segment = udp(sport, dport, payload: payload, from: s, to: d)
        return s.isV4 ? ipv4(s, d, proto: 17, segment) : ipv6(s, d, next: 17, segment)
    }

    static func tcpPacket(_ source: String, _ sport: UInt16, _ destination: String, _ dport: UInt16, flags: UInt8,
                          seq: UInt32 = 1, ack: UInt32 = 0) -> [UInt8] {
        let s = address(source), d = address(destination)
        let segment = tcp(sport, dport, flags: flags, seq: seq, ack: ack, from: s, to: d)
        return s.isV4 ? ipv4(s, d, proto: 6, segment) : ipv6(s, d, next: 6, segment)
    }

    // MARK: Link layers

    static let macs: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]

    static func ethernet(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] { macs + be16(type) + payload }

    /// The EtherType for an IP packet.
    static func etherType(_ ip: [UInt8]) -> UInt16 { ip[0] >> 4 == 6 ? 0x86dd : 0x0800 }

    static func vlan(_ type: UInt16, _ payload: [UInt8], id: UInt16 = 42) -> [UInt8] { be16(id) + be16(type) + payload }
    /// An MPLS label stack: label, bottom-of-stack bit on the last, TTL 64.
    static func mpls(_ payload: [UInt8], labels: Int = 2) -> [UInt8] {
        var stack: [UInt8] = []
        for i in 0..<labels {
            let bottom: UInt32 = i == labels - 1 ? 0x100 : 0
            stack += be32(UInt32(100 + i) << 12 | bottom | 64)
        }
        return stack + payload
    }
    static func snap(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] { [0xaa, 0xaa, 0x03, 0, 0, 0] + be16(type) + payload }
    /// An 802.3 frame: the length field instead of a type, then LLC/SNAP.
    static func ieee8023(_ llcPayload: [UInt8]) -> [UInt8] { macs + be16(UInt16(llcPayload.count)) + llcPayload }
    static func pbb(_ customerFrame: [UInt8]) -> [UInt8] { [0, 0, 0, 1] + customerFrame }
    static func vntag(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] { [0x80, 0, 0, 0] + be16(type) + payload }
    static func pppoe(_ ip: [UInt8]) -> [UInt8] {
        [0x11, 0, 0, 1] + be16(UInt16(ip.count + 2)) + be16(ip[0] >> 4 == 6 ? 0x0057 : 0x0021) + ip
    }
    static func fabricPath(_ frame: [UInt8]) -> [UInt8] {
        Array(frame[0..<12]) + [0x89, 0x03] + [UInt8](repeating: 0, count: 2) + frame
    }

    /// An 802.11 data frame (from the DS), its LLC/SNAP, the packet.
    static func ieee80211(_ ip: [UInt8], qos: Bool = false) -> [UInt8] {
        let control: UInt8 = qos ? 0x88 : 0x08
        var header: [UInt8] = [control, 0x02, 0, 0] + [UInt8](repeating: 0x11, count: 18) + [0, 0]
        if qos { header += [0, 0] }
        return header + snap(etherType(ip), ip)
    }

    static func radiotap(_ frame: [UInt8]) -> [UInt8] { [0, 0] + le16(8) + [0, 0, 0, 0] + frame }

    /// Linux NFLOG: family, version 0, resource id, then TLVs: a prefix, then the payload.
    static func nflog(_ ip: [UInt8]) -> [UInt8] {
        let family: UInt8 = ip[0] >> 4 == 6 ? 10 : 2
        let prefix: [UInt8] = Array("trawl\0".utf8)
        let prefixTLV = le16(UInt16(4 + prefix.count)) + le16(10) + prefix + [0, 0] // padded to 4
        return [family, 0, 0, 0] + prefixTLV + le16(UInt16(4 + ip.count)) + le16(9) + ip
    }

    static func null(_ ip: [UInt8]) -> [UInt8] { le32(ip[0] >> 4 == 6 ? 30 : 2) + ip }
    static func loop(_ ip: [UInt8]) -> [UInt8] { be32(ip[0] >> 4 == 6 ? 24 : 2) + ip }
    static func ppp(_ ip: [UInt8], framed: Bool) -> [UInt8] {
        (framed ? [0xff, 0x03] : []) + be16(ip[0] >> 4 == 6 ? 0x0057 : 0x0021) + ip
    }
    static func linuxSLL(_ ip: [UInt8]) -> [UInt8] { [0, 0, 0, 1, 0, 6] + macs[0..<6] + [0, 0] + be16(etherType(ip)) + ip }
    static func linuxSLL2(_ ip: [UInt8]) -> [UInt8] { be16(etherType(ip)) + [0, 0] + be32(2) + [0, 1, 0, 6] + macs[0..<8] + ip }
    static func fddi(_ ip: [UInt8]) -> [UInt8] { [0x50] + [UInt8](repeating: 0x22, count: 12) + snap(etherType(ip), ip) }

    // MARK: Tunnels

    static func gre(_ protocolType: UInt16, _ payload: [UInt8], flags: UInt16 = 0, extra: [UInt8] = []) -> [UInt8] {
        be16(flags) + be16(protocolType) + extra + payload
    }
    static func vxlan(_ frame: [UInt8]) -> [UInt8] { [0x08, 0, 0, 0, 0, 0, 7, 0] + frame }
    static func geneve(_ protocolType: UInt16, _ payload: [UInt8]) -> [UInt8] {
        [0x01, 0] + be16(protocolType) + [0, 0, 7, 0] + [0, 0, 0, 0] + payload // one 4-byte option
    }
    static func gtp(_ ip: [UInt8]) -> [UInt8] { [0x30, 0xff] + be16(UInt16(ip.count)) + be32(0x1234) + ip }
    static func teredo(_ ipv6: [UInt8], origin: Bool = false) -> [UInt8] {
        (origin ? [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : []) + ipv6
    }
    static func ayiya(_ ip: [UInt8]) -> [UInt8] {
        [0x41, 0x52, 0x11, ip[0] >> 4 == 6 ? 41 : 4, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 16 + 20) + ip
    }
}

/// Runs frames of one link type through a tracker: every record, and the tracker.
func analyseFrames(_ frames: [[UInt8]], linkType: UInt32 = 1, spacing: UInt64 = 10_000_000, wireLengths: [Int]? = nil,
                   configure: (inout AnalysisConfiguration) -> Void = { _ in }) -> (records: [ConnectionRecord], tracker: ConnectionTracker) {
    var configuration = AnalysisConfiguration()
    configuration.bareMode = true
    configuration.verifyChecksums = true
    configure(&configuration)
    let sink = CollectingSink()
    let tracker = ConnectionTracker(configuration: configuration, sink: sink, seed: 99)
    for (index, frame) in frames.enumerated() {
        frame.withUnsafeBytes { bytes in
            tracker.process(Packet(timestampNanoseconds: 1_000_000_000_000 + UInt64(index) * spacing,
                                   capturedLength: bytes.count, wireLength: wireLengths?[index] ?? bytes.count, bytes: bytes),
                            linkType: linkType)
        }
    }
    tracker.finish()
    return (sink.records, tracker)
}
