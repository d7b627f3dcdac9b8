import CNetmap
import Foundation
import NetmapInterface
import Testing

@Suite struct NetmapPortNameTests {
    @Test func everyFormNetmapSpells() throws {
        #expect(try NetmapPort(parsing: "em0").rings == .allHardware)
        #expect(try NetmapPort(parsing: "em0").mode == (1, 0))
        let one = try NetmapPort(parsing: "em0-1")
        #expect(one.rings == .one(1) && one.mode == (4, 1) && one.kernelName == "em0")
        #expect(try NetmapPort(parsing: "eth0^").rings == .host)
        #expect(try NetmapPort(parsing: "eth0^").mode.mode == 2)
        #expect(try NetmapPort(parsing: "eth0*").rings == .hardwareAndHost)
        #expect(try NetmapPort(parsing: "eth0+").mode.mode == 3)
        let slave = try NetmapPort(parsing: "trawl}0/x")
        #expect(slave.rings == .pipeSlave("0") && slave.interface == "trawl" && slave.kernelName == "trawl}0")
        #expect(slave.exclusive && slave.flags == 0x800)
        let master = try NetmapPort(parsing: "lb{3")
        #expect(master.rings == .pipeMaster("3") && master.kernelName == "lb{3" && master.mode == (1, 0))
        let monitor = try NetmapPort(parsing: "em1-2/rz")
        #expect(monitor.monitorReceive && monitor.zeroCopyMonitor && !monitor.exclusive)
        #expect(monitor.flags == 0x200 | 0x400)
        #expect(try NetmapPort(parsing: "em0/t").flags == 0x100)
        #expect(try NetmapPort(parsing: "vale0:1").interface == "vale0:1")
        #expect(try NetmapPort(parsing: "em0-4095").rings == .one(4095))
        let nic = try NetmapPort(parsing: "em0"), pipe = try NetmapPort(parsing: "a}b")
        #expect(!nic.isPipe && pipe.isPipe)
    }

    @Test func badNamesAreExplained() {
        let cases: [(String, String)] = [
            ("", "no interface name"),
            ("-1", "no interface name"),
            ("em0-", "a ring is a number"),
            ("em0-x", "a ring is a number"),
            ("em0-4096", "from 0 to 4095"),
            ("em0-1-2", "a ring is a number"),
            ("em0^1", "nothing may follow '^'"),
            ("lb{", "a pipe needs an identifier"),
            ("lb}a-b", "a pipe needs an identifier"),
            ("em0/", "nothing after '/'"),
            ("em0/q", "unknown flag 'q'"),
            ("e m0", "is not an interface name"),
            ("em0/x/r", "unknown flag '/'"),
        ]
        for (name, problem) in cases {
            do {
                _ = try NetmapPort(parsing: name)
                Issue.record("'\(name)' was accepted")
            } catch {
                #expect(error.description.contains("bad netmap port '\(name)'"), "\(error)")
                #expect(error.description.contains(problem), "\(name): \(error)")
            }
        }
    }
}

/// A netmap port's shared memory laid out as the kernel lays it out: the interface
/// descriptor with its ring offset table, 256-byte ring headers followed by their slots,
/// and the buffers, all found from each other by offsets.
final class FakeNetmapRegion {
    let memory: UnsafeMutableRawPointer
    let size: Int
    let interfaceOffset = 4096
    let bufferSize = 2048
    let slotsPerRing: Int
    private(set) var rings: [UnsafeMutableRawPointer] = [] // in ring offset table order
    private let buffers: UnsafeMutableRawPointer
    private var nextBuffer: UInt32 = 0

    /// `tx` and `rx` NIC rings, `hostTx`/`hostRx` host rings; with `apiVersion` below 14 the
    /// host ring counts are left 0 in the descriptor, as older kernels leave them.
    init(tx: Int, rx: Int, hostTx: Int = 1, hostRx: Int = 1, slots: Int = 8, apiVersion: Int = 14) {
        slotsPerRing = slots
        let ringCount = tx + hostTx + rx + hostRx
        let ringBytes = 256 + 16 * slots
        let ringsStart = 8192
        let buffersStart = ringsStart + ringCount * ringBytes
        size = buffersStart + ringCount * slots * bufferSize
        memory = .allocate(byteCount: size, alignment: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        buffers = memory + buffersStart
        let descriptor = memory + interfaceOffset
        descriptor.storeBytes(of: UInt32(tx), toByteOffset: 24, as: UInt32.self)
        descriptor.storeBytes(of: UInt32(rx), toByteOffset: 28, as: UInt32.self)
        if apiVersion >= 14 {
            descriptor.storeBytes(of: UInt32(hostTx), toByteOffset: 36, as: UInt32.self)
            descriptor.storeBytes(of: UInt32(hostRx), toByteOffset: 40, as: UInt32.self)
        }
        for index in 0..<ringCount {
            let ring = memory + ringsStart + index * ringBytes
            descriptor.storeBytes(of: Int64(ring - descriptor), toByteOffset: 56 + 8 * index, as: Int64.self)
            ring.storeBytes(of: Int64(buffers - ring), toByteOffset: 0, as: Int64.self)
            ring.storeBytes(of: UInt32(slots), toByteOffset: 8, as: UInt32.self)
            ring.storeBytes(of: UInt32(bufferSize), toByteOffset: 12, as: UInt32.self)
            ring.storeBytes(of: UInt16(index < tx + hostTx ? 0 : 1), toByteOffset: 18, as: UInt16.self)
            rings.append(ring)
        }
    }

    deinit { memory.deallocate() }

    var interface: UnsafeMutableRawPointer { memory + interfaceOffset }

    func head(_ ring: Int) -> UInt32 { rings[ring].load(fromByteOffset: 20, as: UInt32.self) }
    func cur(_ ring: Int) -> UInt32 { rings[ring].load(fromByteOffset: 24, as: UInt32.self) }
    func tail(_ ring: Int) -> UInt32 { rings[ring].load(fromByteOffset: 28, as: UInt32.self) }

    /// Puts `payload` in the ring's slot at its tail and moves the tail on, as the kernel
    /// does on a receive; `moreFragments` marks a slot that is not a packet's last.
    func receive(_ payload: [UInt8], ring: Int, moreFragments: Bool = false) {
        let r = rings[ring]
        let tail = self.tail(ring)
        let buffer = nextBuffer
        nextBuffer += 1
        (buffers + Int(buffer) * bufferSize).copyMemory(from: payload, byteCount: payload.count)
        let slot = r + 256 + 16 * Int(tail)
        slot.storeBytes(of: buffer, toByteOffset: 0, as: UInt32.self)
        slot.storeBytes(of: UInt16(payload.count), toByteOffset: 4, as: UInt16.self)
        slot.storeBytes(of: UInt16(moreFragments ? TRAWL_NS_MOREFRAG : 0), toByteOffset: 6, as: UInt16.self)
        r.storeBytes(of: tail + 1 == UInt32(slotsPerRing) ? 0 : tail + 1, toByteOffset: 28, as: UInt32.self)
    }

    /// Starts a ring at `position` (head, cur and tail), to exercise wrap-around.
    func start(_ ring: Int, at position: UInt32) {
        for offset in [20, 24, 28] { rings[ring].storeBytes(of: position, toByteOffset: offset, as: UInt32.self) }
    }
}

@Suite struct NetmapRingTests {
    /// Reads everything the rings hold, as the plugin does, into (ring-independent) payloads.
    static func drain(_ rings: inout ReceiveRings, limit: Int = .max, scratch: Int = 1 << 16) -> [[UInt8]] {
        let arena = UnsafeMutablePointer<UInt8>.allocate(capacity: scratch)
        defer { arena.deallocate() }
        var used = 0
        var packets: [[UInt8]] = []
        rings.read(scratch: { size in
            guard used + size <= scratch else { return nil }
            defer { used += size }
            return arena + used
        }, deliver: { data, length in
            guard packets.count < limit else { return false }
            packets.append(Array(UnsafeBufferPointer(start: data, count: length)))
            return true
        })
        return packets
    }

    static func packet(_ n: Int, length: Int = 60) -> [UInt8] { (0..<length).map { UInt8(truncatingIfNeeded: n &* 31 &+ $0) } }

    @Test func hardwareRingsAreReadInPlaceAndReleasedLater() {
        let region = FakeNetmapRegion(tx: 2, rx: 2)
        // Ring offset table: tx0 tx1 hosttx | rx0 rx1 hostrx
        region.receive(Self.packet(1), ring: 3)
        region.receive(Self.packet(2), ring: 3)
        region.receive(Self.packet(3), ring: 4)
        region.receive(Self.packet(9), ring: 5) // host ring: not part of a hardware registration
        var rings = ReceiveRings(interface: region.interface, mode: 1, ring: 0, apiVersion: 14)
        #expect(rings.ringIndexes == [3, 4])
        #expect(rings.hasPackets)
        let packets = Self.drain(&rings)
        #expect(Set(packets) == Set([Self.packet(1), Self.packet(2), Self.packet(3)]))
        // Handed out, not given back: the kernel's head has not moved until release().
        #expect(region.head(3) == 0 && !rings.hasPackets)
        rings.release()
        #expect(region.head(3) == 2 && region.cur(3) == 2 && region.head(4) == 1 && region.head(5) == 0)
    }

    @Test func oneRingTheHostRingsOrBoth() {
        for api in [13, 14] {
            let region = FakeNetmapRegion(tx: 3, rx: 3, apiVersion: api)
            // tx0 tx1 tx2 hosttx | rx0 rx1 rx2 hostrx
            #expect(ReceiveRings(interface: region.interface, mode: 4, ring: 1, apiVersion: UInt16(api)).ringIndexes == [5])
            #expect(ReceiveRings(interface: region.interface, mode: 2, ring: 0, apiVersion: UInt16(api)).ringIndexes == [7])
            #expect(ReceiveRings(interface: region.interface, mode: 3, ring: 0, apiVersion: UInt16(api)).ringIndexes == [4, 5, 6, 7])
            #expect(ReceiveRings(interface: region.interface, mode: 4, ring: 3, apiVersion: UInt16(api)).ringIndexes.isEmpty)
        }
        // Two host ring pairs, which only API 14 can describe.
        let region = FakeNetmapRegion(tx: 1, rx: 1, hostTx: 2, hostRx: 2)
        #expect(ReceiveRings(interface: region.interface, mode: 2, ring: 0, apiVersion: 14).ringIndexes == [4, 5])
    }

    @Test func slotsWrapAroundTheRingEnd() {
        let region = FakeNetmapRegion(tx: 1, rx: 1, slots: 8)
        region.start(2, at: 6)
        for n in 0..<5 { region.receive(Self.packet(n, length: 64 + n), ring: 2) } // slots 6 7 0 1 2
        var rings = ReceiveRings(interface: region.interface, mode: 1, ring: 0, apiVersion: 14)
        let packets = Self.drain(&rings)
        #expect(packets == (0..<5).map { Self.packet($0, length: 64 + $0) })
        rings.release()
        #expect(region.head(2) == 3)
    }

    @Test func aFullBatchStopsAndTheRestComesNextTime() {
        let region = FakeNetmapRegion(tx: 1, rx: 1)
        for n in 0..<6 { region.receive(Self.packet(n), ring: 2) }
        var rings = ReceiveRings(interface: region.interface, mode: 1, ring: 0, apiVersion: 14)
        #expect(Self.drain(&rings, limit: 4) == (0..<4).map { Self.packet($0) })
        rings.release()
        #expect(region.head(2) == 4)
        #expect(Self.drain(&rings) == (4..<6).map { Self.packet($0) })
    }

    /// A packet over several slots comes out whole; one whose last slot has not arrived
    /// stays in the ring until it has.
    @Test func multiSlotPacketsAreJoined() {
        let region = FakeNetmapRegion(tx: 1, rx: 1)
        let big = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        region.receive(Array(big[0..<2048]), ring: 2, moreFragments: true)
        region.receive(Array(big[2048...]), ring: 2)
        region.receive(Self.packet(1), ring: 2, moreFragments: true) // its end is not there yet
        var rings = ReceiveRings(interface: region.interface, mode: 1, ring: 0, apiVersion: 14)
        #expect(Self.drain(&rings) == [big])
        rings.release()
        #expect(region.head(2) == 2)
        region.receive(Self.packet(2), ring: 2)
        #expect(Self.drain(&rings) == [Self.packet(1) + Self.packet(2)])
        // No room to join it: nothing is handed out, nothing consumed.
        region.receive(Array(big[0..<2048]), ring: 2, moreFragments: true)
        region.receive(Array(big[2048...]), ring: 2)
        rings.release()
        #expect(Self.drain(&rings, scratch: 1000).isEmpty)
        #expect(Self.drain(&rings) == [big])
    }

    /// Two busy rings and small batches: each read starts one ring further on.
    @Test func ringsTakeTurns() {
        let region = FakeNetmapRegion(tx: 2, rx: 2, slots: 16)
        for n in 0..<10 {
            region.receive(Self.packet(n), ring: 3)
            region.receive(Self.packet(100 + n), ring: 4)
        }
        var rings = ReceiveRings(interface: region.interface, mode: 1, ring: 0, apiVersion: 14)
        let first = Self.drain(&rings, limit: 3)
        rings.release()
        let second = Self.drain(&rings, limit: 3)
        #expect(first == (0..<3).map { Self.packet($0) })
        #expect(second == (0..<3).map { Self.packet(100 + $0) })
    }
}

@Suite struct NetmapPluginTests {
    @Test func withoutTheModuleTheErrorSaysWhatToLoad() throws {
        let result = try runProcess(Paths.trawl, ["-i", "netmap::em0"], environment: ["TRAWL_NETMAP_DEVICE": "/nonexistent/netmap"])
        #expect(result.status == 69 && result.stdout.isEmpty) // unavailable: something the capture needs is missing
        #expect(result.stderr.contains("fatal error: problem with interface netmap::em0 (netmap is not available: /nonexistent/netmap not found; load the netmap kernel module)"))
        // Without the override the real device is looked for; this machine has no module.
        if !FileManager.default.fileExists(atPath: "/dev/netmap") {
            let real = try runProcess(Paths.trawl, ["-i", "netmap::em0"])
            #expect(real.stderr.contains("(netmap is not available: /dev/netmap not found; load the netmap kernel module)"))
        }
    }

    @Test func badPortNamesFailBeforeTheDeviceIsOpened() throws {
        let result = try runProcess(Paths.trawl, ["-i", "netmap::em0-x"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("problem with interface netmap::em0-x (bad netmap port 'em0-x': a ring is a number"))
    }

    /// A device that is not netmap's refuses both registration requests; the error names
    /// the port and the reason, and nothing is left open.
    @Test func aDeviceThatIsNotNetmapIsRefused() throws {
        let result = try runProcess(Paths.trawl, ["-i", "netmap::lb}0/x"], environment: ["TRAWL_NETMAP_DEVICE": "/dev/null"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("problem with interface netmap::lb}0/x (cannot register lb}0 with netmap: "))
    }

    @Test func listedWithItsComponent() throws {
        let listing = try runProcess(Paths.trawl, ["-NN"])
        #expect(listing.stdout.contains("Trawl::Netmap - Packet acquisition via netmap (dynamic, version 1.0.0)"))
        #expect(listing.stdout.contains("[Packet Source] NetmapReader (interface prefix \"netmap\"; supports live input)"))
        // The single-colon form stays libpcap's: it goes to Trawl::Pcap, which does not know it.
        let pcap = try runProcess(Paths.trawl, ["-i", "netmap:em0"])
        #expect(pcap.status == 66 && !pcap.stderr.contains("netmap is not available")) // no such device
    }
}

/// The plugin's read cycle over kernel-shaped rings: what a batch hands out stays the
/// process's until the next read, an empty port is waited on, and a wait that brings
/// nothing (a timeout, an interrupt) gives an empty batch.
@Suite struct NetmapReaderTests {
    struct Stop: Error {}

    @Test func slotsGoBackOnlyWithTheNextReadAndEmptyRingsAreWaitedOn() throws {
        let region = FakeNetmapRegion(tx: 1, rx: 1)
        let reader = NetmapReader(rings: ReceiveRings(interface: region.interface, mode: 1, ring: 0, apiVersion: 14))
        var waits = 0
        var got: [([UInt8], UInt64)] = []
        func read(limit: Int = .max, arriving: [[UInt8]] = []) throws(Stop) -> Int {
            try reader.next(wait: { () throws(Stop) -> Bool in
                waits += 1
                for packet in arriving { region.receive(packet, ring: 2) } // the kernel, during the poll
                return !arriving.isEmpty
            }, now: { 1_000 * UInt64(waits) }, deliver: { data, length, stamp in
                guard got.count < limit else { return false }
                got.append((Array(UnsafeBufferPointer(start: data, count: length)), stamp))
                return true
            })
        }
        // Empty: the reader waits, the packets come, they are handed out with the sync's time.
        #expect(try read(arriving: [NetmapRingTests.packet(1), NetmapRingTests.packet(2)]) == 2)
        #expect(waits == 1 && got.map(\.0) == [NetmapRingTests.packet(1), NetmapRingTests.packet(2)])
        #expect(got.allSatisfy { $0.1 == 1_000 })
        #expect(region.head(2) == 0) // still the process's: the batch may be in use
        // The next read gives them back, finds nothing, waits, and nothing comes.
        #expect(try read() == 0)
        #expect(region.head(2) == 2 && waits == 2)
        // Packets already there are read without waiting; a full batch leaves the rest.
        for n in 3..<6 { region.receive(NetmapRingTests.packet(n), ring: 2) }
        got = []
        #expect(try read(limit: 2) == 2 && waits == 2)
        #expect(try read() == 1 && got.map(\.0).last == NetmapRingTests.packet(5))
        #expect(region.head(2) == 4)
        // A failing wait (a poll error) is the caller's error.
        _ = try read()
        #expect(throws: Stop.self) {
            try reader.next(wait: { () throws(Stop) -> Bool in throw Stop() }, now: { 0 }, deliver: { _, _, _ in true })
        }
    }
}
