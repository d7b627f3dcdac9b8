import CLibpcap
import TrawlPluginSDK

/// A tcpdump-syntax filter compiled by libpcap into classic BPF, for sources that filter in
/// user space (trace readers, netmap) or hand the program to the kernel (AF_PACKET's
/// SO_ATTACH_FILTER). The program lives in memory of its own, freed with the filter.
public final class PacketFilter {
    public let expression: String
    private let program: UnsafeMutablePointer<bpf_program>

    /// Compiles `expression` for packets of `linkType` (a LINKTYPE_ value). `netmask` is the
    /// interface's IPv4 netmask in host order, 0 if unknown (for `ip broadcast`).
    public init(compiling expression: String, linkType: UInt32, snaplen: UInt32 = 262_144, netmask: UInt32 = 0) throws(PluginError) {
        guard let dead = pcap_open_dead(Self.dlt(linkType), Int32(clamping: max(snaplen, 1))) else {
            throw PluginError("libpcap could not prepare a filter compiler", code: .noMemory)
        }
        defer { pcap_close(dead) }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        let mask = netmask == 0 ? PCAP_NETMASK_UNKNOWN : bpf_u_int32(netmask).bigEndian
        guard pcap_compile(dead, program, expression, 1, mask) == 0 else {
            program.deallocate()
            throw PluginError("invalid filter '\(expression)': " + String(cString: pcap_geterr(dead)), code: .invalid)
        }
        self.expression = expression
        self.program = program
    }

    deinit {
        pcap_freecode(program)
        program.deallocate()
    }

    /// Whether the filter accepts a packet of `captured` bytes at `data` (`wire` long).
    @inline(__always)
    public func matches(_ data: UnsafePointer<UInt8>, captured: UInt32, wire: UInt32) -> Bool {
        var header = pcap_pkthdr()
        header.caplen = captured
        header.len = wire
        return pcap_offline_filter(program, &header, data) != 0
    }

    /// The compiled instructions (libpcap's bpf_insn has the kernel's sock_filter layout).
    public var instructions: UnsafeBufferPointer<bpf_insn> {
        UnsafeBufferPointer(start: program.pointee.bf_insns, count: Int(program.pointee.bf_len))
    }

    /// A LINKTYPE_ value (files, the ABI) as the DLT_ value libpcap compiles for; they
    /// differ for a few old types.
    public static func dlt(_ linkType: UInt32) -> Int32 {
        switch linkType {
        case 101: return 12 // LINKTYPE_RAW -> DLT_RAW
        case 100: return 11 // LINKTYPE_ATM_RFC1483
        default: return Int32(bitPattern: linkType)
        }
    }

    /// A DLT_ value (pcap_datalink) as the LINKTYPE_ value files and the ABI use.
    public static func linkType(_ dlt: Int32) -> UInt32 {
        switch dlt {
        case 12, 14: return 101 // DLT_RAW -> LINKTYPE_RAW
        case 11: return 100     // DLT_ATM_RFC1483
        default: return UInt32(bitPattern: dlt)
        }
    }
}
