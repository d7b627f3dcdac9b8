import TrawlCore

/// Synthesizes Ethernet/IPv4 traffic made of whole conversations: TCP connections with a
/// handshake, data both ways and a FIN close, and UDP request/response exchanges. Checksums
/// are correct, so analysis that verifies them accepts every packet.
///
/// Deterministic for a seed. Writes each frame into a caller's buffer: no allocation per packet.
public struct TrafficSynthesizer {
    public struct Configuration: Sendable {
        /// Conversations to generate in all.
        public var flows: Int
        /// Conversations in progress at once; their packets interleave.
        public var concurrency: Int
        /// Share of conversations that are UDP, 0...1.
        public var udpShare: Double
        /// Largest payload of a data packet; sizes vary from 1 up to this.
        public var maxPayload: Int
        public var seed: UInt64
        /// Timestamp of the first packet, nanoseconds since the epoch.
        public var startNanoseconds: UInt64
        /// Time between consecutive packets.
        public var gapNanoseconds: UInt64

        public init(flows: Int = 1000, concurrency: Int = 64, udpShare: Double = 0.25, maxPayload: Int = 512,
                    seed: UInt64 = 1, startNanoseconds: UInt64 = 1_700_000_000_000_000_000, gapNanoseconds: UInt64 = 10_000) {
            self.flows = flows
            self.concurrency = concurrency
            self.udpShare = udpShare
            self.maxPayload = maxPayload
            self.seed = seed
            self.startNanoseconds = startNanoseconds
            self.gapNanoseconds = gapNanoseconds
        }
    }

    /// The largest frame `next(into:)` writes.
    public static let maximumFrameLength = 14 + 20 + 20 + 1460

    public let configuration: Configuration
    public private(set) var flowsStarted = 0
    public private(set) var packetsGenerated: UInt64 = 0
    private var random: SplitMix64
    private var active: [Flow] = []
    private var cursor = 0
    private var payloadByte: UInt8 = 0

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        random = SplitMix64(seed: configuration.seed)
        active.reserveCapacity(max(configuration.concurrency, 1))
        while active.count < max(configuration.concurrency, 1), let flow = startFlow() { active.append(flow) }
    }

    /// Writes the next frame into `buffer` (at least `maximumFrameLength` bytes) and returns
    /// its length and timestamp, or nil when every conversation has ended.
    public mutating func next(into buffer: UnsafeMutableRawBufferPointer) -> (length: Int, timestampNanoseconds: UInt64)? {
        precondition(buffer.count >= Self.maximumFrameLength, "buffer too small for a frame")
        guard !active.isEmpty else { return nil }
        if cursor >= active.count { cursor = 0 }
        let length = active[cursor].emit(into: buffer, random: &random, maxPayload: configuration.maxPayload)
        if active[cursor].finished {
            if let flow = startFlow() { active[cursor] = flow } else { active.remove(at: cursor) }
        } else {
            cursor += 1
        }
        let timestamp = configuration.startNanoseconds &+ packetsGenerated &* configuration.gapNanoseconds
        packetsGenerated += 1
        return (length, timestamp)
    }

    private mutating func startFlow() -> Flow? {
        guard flowsStarted < configuration.flows else { return nil }
        let index = UInt32(flowsStarted)
        flowsStarted += 1
        let isUDP = Double(random.next() % 10_000) < configuration.udpShare * 10_000
        return Flow(index: index, isUDP: isUDP, rounds: 1 + Int(random.next() % 8),
                    clientPort: UInt16(1024 + random.next() % 60_000),
                    serverPort: isUDP ? 53 : [80, 443, 22, 8080][Int(random.next() % 4)],
                    clientSequence: UInt32(truncatingIfNeeded: random.next()),
                    serverSequence: UInt32(truncatingIfNeeded: random.next()))
    }
}

/// One conversation and how far it has got.
struct Flow {
    let index: UInt32
    let isUDP: Bool
    let rounds: Int
    let clientPort: UInt16
    let serverPort: UInt16
    var clientSequence: UInt32
    var serverSequence: UInt32
    var step = 0

    init(index: UInt32, isUDP: Bool, rounds: Int, clientPort: UInt16, serverPort: UInt16,
         clientSequence: UInt32, serverSequence: UInt32) {
        self.index = index
        self.isUDP = isUDP
        self.rounds = rounds
        self.clientPort = clientPort
        self.serverPort = serverPort
        self.clientSequence = clientSequence
        self.serverSequence = serverSequence
    }

    /// Client 10.x.y.z from the flow index; server 172.16.x.y spread by a hash of it.
    var clientAddress: UInt32 { 0x0a00_0001 &+ index % 0x00ff_fffe }
    var serverAddress: UInt32 { 0xac10_0000 | ((index &* 2_654_435_761) >> 16 & 0xffff) }

    /// UDP: `rounds` request/response pairs. TCP: SYN, SYN-ACK, ACK, `rounds` data pairs, FIN, FIN-ACK, ACK.
    var totalSteps: Int { isUDP ? 2 * rounds : 6 + 2 * rounds }
    var finished: Bool { step >= totalSteps }

    mutating func emit(into buffer: UnsafeMutableRawBufferPointer, random: inout SplitMix64, maxPayload: Int) -> Int {
        defer { step += 1 }
        let payload = 1 + Int(random.next() % UInt64(max(maxPayload, 1)))
        if isUDP {
            let fromClient = step % 2 == 0
            return Frame.write(into: buffer, fromClient: fromClient, flow: self, protocol: .udp, payload: payload)
        }
        let dataSteps = 3..<(3 + 2 * rounds)
        let fromClient: Bool
        let flags: UInt8
        var length = 0
        switch step {
        case 0: fromClient = true; flags = TCPFlags.syn
        case 1: fromClient = false; flags = TCPFlags.syn | TCPFlags.ack
        case 2: fromClient = true; flags = TCPFlags.ack
        case dataSteps:
            fromClient = (step - 3) % 2 == 0
            flags = TCPFlags.ack | TCPFlags.psh
            length = payload
        case totalSteps - 3: fromClient = true; flags = TCPFlags.fin | TCPFlags.ack
        case totalSteps - 2: fromClient = false; flags = TCPFlags.fin | TCPFlags.ack
        default: fromClient = true; flags = TCPFlags.ack
        }
        let size = Frame.write(into: buffer, fromClient: fromClient, flow: self, protocol: .tcp(flags: flags), payload: length)
        // SYN and FIN take one sequence number each; data takes its length.
        let consumed = UInt32(length) &+ (flags & (TCPFlags.syn | TCPFlags.fin) != 0 ? 1 : 0)
        if fromClient { clientSequence &+= consumed } else { serverSequence &+= consumed }
        return size
    }
}

enum TCPFlags {
    static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, rst: UInt8 = 0x04, psh: UInt8 = 0x08, ack: UInt8 = 0x10
}
