/// What the analyzers extracted from one packet: the IP layer and the transport header.
/// A plain value filled in place, so decoding allocates nothing. Offsets count from the
/// start of the bytes analysed (a tunnel's inner packet has bytes of its own).
public struct DecodedPacket {
    public var source = IPAddress(high: 0, low: 0)
    public var destination = IPAddress(high: 0, low: 0)
    /// The transport's IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    public var proto: UInt8 = 0
    public var isIPv6 = false
    /// Where the IP header starts, and its length (IPv6: with the extension headers).
    public var ipStart = 0
    public var headerLength = 0
    /// The datagram's length as its header states it, even 0: what Zeek adds up as ip_bytes.
    public var statedIPLength = 0
    /// Where the transport header starts; the bytes of it captured (no more than the IP
    /// header states: Zeek's "remaining"), and the length the IP header states (0 when an
    /// IPv4 length was 0: Zeek's PayloadLen()).
    public var transportStart = 0
    public var transportCaptured = 0
    public var transportStated = 0

    /// Transport ports; for ICMP, the type and the counterpart type or code.
    public var sourcePort: UInt16 = 0
    public var destinationPort: UInt16 = 0
    public var tcpFlags: UInt8 = 0
    public var sequence: UInt32 = 0
    public var acknowledgment: UInt32 = 0
    public var window: UInt16 = 0
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0
    /// Bytes of transport payload as the headers state them (TCP segment data, UDP data,
    /// ICMP body after 8 bytes).
    public var payloadLength = 0
    /// Where the payload starts and where its captured part ends.
    public var payloadStart = 0
    public var payloadEnd = 0
    /// The bytes `payloadStart` and `payloadEnd` count in (the packet's, or a reassembled
    /// datagram's), for the application analyzers that look at a UDP payload; valid while
    /// the packet is analysed.
    public var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    /// False when a checksum that could be checked was wrong.
    public var checksumValid = true
    /// The connection exists, but this packet cannot be analysed (a TCP header cut short).
    public var unusable = false
    /// The TCP header's data offset is below 5 words.
    public var badTCPOffset = false
    /// The packet counts in the connection's packets and IP bytes (Zeek does not count an
    /// ICMP message whose body was not all captured).
    public var counted = true
    /// UDP: the length the UDP header states, and the datagram's length by the IP header
    /// (Zeek's UDP_datagram_length_mismatch when they differ).
    public var udpStatedLength = 0
    public var udpLength = 0

    public init() {}
}

public enum TCPFlag {
    public static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08, ack: UInt8 = 0x10, urg: UInt8 = 0x20
}
