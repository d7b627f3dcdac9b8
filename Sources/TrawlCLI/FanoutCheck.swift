#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// `trawl --check-fanout af_packet::IFACE`: opens several members of one fanout group on
/// the interface, watches its traffic, and reports whether both directions of every flow
/// reached the same member. On kernels whose fanout hash is not symmetric, flow-based load
/// balancing breaks every connection in two; this shows it before a deployment relies on it.
enum FanoutCheck {
    struct Report {
        var packetsPerMember: [UInt64]
        var flows = 0
        var bidirectional = 0
        var split: [String] = []
    }

    static func run(_ options: FanoutCheckOptions, registry: SourceRegistry) throws -> Int32 {
        guard SourceSpec(options.interface).prefix == "af_packet" else {
            throw Trawl.FatalError("--check-fanout needs an af_packet:: interface, not \(options.interface)")
        }
        let settings: OptionSettings
        do { settings = try OptionSettings(assignments: options.optionAssignments + ["AF_Packet::enable_fanout=T"], registry: registry) }
        catch { throw Trawl.FatalError(error) }
        var members: [any PacketSource] = []
        defer { members.forEach { $0.close() } }
        for _ in 0..<options.members {
            do { members.append(try registry.open(options.interface, mode: .live, settings: settings, timeoutMilliseconds: 0)) }
            catch { throw Trawl.FatalError(error) }
        }
        let stopper = StopSignals(interrupting: members, stop: processStop)
        defer { stopper.disarm() }

        let traffic = options.generate ? LoopbackTraffic.start(seconds: options.seconds) : nil
        writeStandardError("watching \(options.interface) with \(options.members) fanout members for \(options.seconds) s"
            + (traffic != nil ? ", making TCP conversations on it" : "") + "\n")
        let report = watch(members, linkType: members[0].info.linkType, seconds: options.seconds)
        traffic?.finish()

        print("fanout check on \(options.interface): \(options.members) members, \(options.seconds) s")
        print("packets per member: " + report.packetsPerMember.map(String.init).joined(separator: ", "))
        print("flows seen: \(report.flows), in both directions: \(report.bidirectional)")
        print("flows split across members: \(report.split.count)")
        for flow in report.split.prefix(5) { print("    split: \(flow)") }
        if !report.split.isEmpty {
            print("result: NOT symmetric: both directions of some flows reached different members; flow-based load balancing would split them (check AF_Packet::fanout_mode, and the kernel)")
            return 1
        }
        if report.bidirectional == 0 {
            print("result: inconclusive: no flow was seen in both directions; run it while \(options.interface) carries two-way traffic")
            return 2
        }
        print("result: symmetric: both directions of every flow reached the same member")
        return 0
    }

    /// Reads every member until the time is up, noting which member saw which direction.
    static func watch(_ members: [any PacketSource], linkType: UInt32, seconds: Double) -> Report {
        var report = Report(packetsPerMember: Array(repeating: 0, count: members.count))
        // Per flow: the members that saw each direction, as bit masks.
        var seen: [FlowKey: (forward: UInt64, backward: UInt64)] = [:]
        let batch = PacketBatch(capacity: 256)
        let deadline = Progress.now() + UInt64(seconds * 1e9)
        var descriptors = members.compactMap(\.info.selectableFD).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        while Progress.now() < deadline && !processStop.isStopped {
            var idle = true
            for (index, member) in members.enumerated() {
                guard (try? member.nextBatch(batch)) != nil else { continue }
                for i in 0..<batch.count {
                    idle = false
                    report.packetsPerMember[index] += 1
                    guard let (key, forward) = FlowKey.parse(batch[i].bytes, linkType: linkType) else { continue }
                    var entry = seen[key] ?? (0, 0)
                    if forward { entry.forward |= 1 << index } else { entry.backward |= 1 << index }
                    seen[key] = entry
                }
            }
            if idle { _ = poll(&descriptors, nfds_t(descriptors.count), 50) }
        }
        report.flows = seen.count
        for (key, masks) in seen {
            if masks.forward != 0 && masks.backward != 0 { report.bidirectional += 1 }
            if (masks.forward | masks.backward).nonzeroBitCount > 1 { report.split.append(key.description) }
        }
        return report
    }
}

/// A TCP or UDP flow with its two ends in a fixed order, so both directions share a key.
struct FlowKey: Hashable, CustomStringConvertible {
    let proto: UInt8
    let low: [UInt8]   // address bytes followed by the port
    let high: [UInt8]

    /// The flow of an Ethernet (with 802.1Q tags) or raw-IP packet, and whether it goes
    /// from `low` to `high`. Nil for anything but TCP and UDP over IPv4 or IPv6.
    static func parse(_ bytes: UnsafeRawBufferPointer, linkType: UInt32) -> (FlowKey, Bool)? {
        var offset = 0
        var etherType: UInt16
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        switch linkType {
        case 1:
            guard bytes.count >= 14 else { return nil }
            etherType = u16(12)
            offset = 14
            while etherType == 0x8100 || etherType == 0x88a8, bytes.count >= offset + 4 {
                etherType = u16(offset + 2)
                offset += 4
            }
        case 101:
            guard let first = bytes.first else { return nil }
            etherType = first >> 4 == 6 ? 0x86dd : 0x0800
        default:
            return nil
        }
        let proto: UInt8, addressLength: Int, sourceAt: Int, transport: Int
        switch etherType {
        case 0x0800:
            guard bytes.count >= offset + 20 else { return nil }
            proto = bytes[offset + 9]
            addressLength = 4
            sourceAt = offset + 12
            transport = offset + Int(bytes[offset] & 0x0f) * 4
        case 0x86dd:
            guard bytes.count >= offset + 40 else { return nil }
            proto = bytes[offset + 6] // extension headers are not followed: a diagnostic, not a decoder
            addressLength = 16
            sourceAt = offset + 8
            transport = offset + 40
        default:
            return nil
        }
        guard proto == 6 || proto == 17, bytes.count >= transport + 4 else { return nil }
        let source = Array(bytes[sourceAt..<(sourceAt + addressLength)]) + Array(bytes[transport..<(transport + 2)])
        let destination = Array(bytes[(sourceAt + addressLength)..<(sourceAt + 2 * addressLength)])
            + Array(bytes[(transport + 2)..<(transport + 4)])
        let forward = source.lexicographicallyPrecedes(destination)
        return (FlowKey(proto: proto, low: forward ? source : destination, high: forward ? destination : source), forward)
    }

    var description: String {
        func end(_ bytes: [UInt8]) -> String {
            let address = bytes.dropLast(2)
            let port = Int(bytes[bytes.count - 2]) << 8 | Int(bytes[bytes.count - 1])
            let text = address.count == 4 ? address.map(String.init).joined(separator: ".")
                : stride(from: address.startIndex, to: address.endIndex, by: 2).map {
                    String(Int(address[$0]) << 8 | Int(address[$0 + 1]), radix: 16)
                }.joined(separator: ":")
            return address.count == 4 ? "\(text):\(port)" : "[\(text)]:\(port)"
        }
        return "\(proto == 6 ? "tcp" : "udp") \(end(low)) <-> \(end(high))"
    }
}

/// Short TCP conversations on 127.0.0.1 from a thread of their own: connect, a request one
/// way, the answer back, close. Each uses a new source port, so each is a new flow.
final class LoopbackTraffic: @unchecked Sendable {
    private let deadline: UInt64
    private var thread = pthread_t()

    private init(seconds: Double) { deadline = Progress.now() + UInt64(seconds * 1e9) }

    static func start(seconds: Double) -> LoopbackTraffic {
        let traffic = LoopbackTraffic(seconds: seconds)
        traffic.thread = startThread { traffic.run() }
        return traffic
    }

    func finish() { pthread_join(thread, nil) }

    private func run() {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { return }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(listener, pointer, length) == 0 && listen(listener, 64) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else { return }
        var message = [UInt8](repeating: 0x61, count: 64)
        while Progress.now() < deadline && !processStop.isStopped {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
            }
            let server = connected ? accept(listener, nil, nil) : -1
            if server >= 0 {
                _ = send(client, &message, message.count, 0)
                _ = recv(server, &message, message.count, 0)
                _ = send(server, &message, message.count, 0)
                _ = recv(client, &message, message.count, 0)
                close(server)
            }
            close(client)
            usleep(2000)
        }
    }
}
