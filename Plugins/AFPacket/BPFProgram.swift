import CLibpcap
import CLinuxPacket
import TrawlPluginSDK

/// A classic BPF program for SO_ATTACH_FILTER, compiled by libpcap from tcpdump syntax.
struct BPFProgram {
    private let instructions: [sock_filter]

    /// Accepts every packet whole.
    static let acceptAll = BPFProgram(instructions: [sock_filter(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: 0x0004_0000)])
    /// Accepts nothing: installed until the capture really starts.
    static let dropAll = BPFProgram(instructions: [sock_filter(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: 0)])

    private init(instructions: [sock_filter]) { self.instructions = instructions }

    init(compiling expression: String, linkType: UInt32, netmask: UInt32) throws(PluginError) {
        guard let dead = pcap_open_dead(Int32(bitPattern: linkType == 101 ? 12 : linkType), 262_144) else {
            throw PluginError("libpcap could not prepare a filter compiler")
        }
        defer { pcap_close(dead) }
        var program = bpf_program()
        let mask = netmask == 0 ? PCAP_NETMASK_UNKNOWN : bpf_u_int32(netmask).bigEndian
        guard pcap_compile(dead, &program, expression, 1, mask) == 0 else {
            throw PluginError("invalid filter '\(expression)': " + String(cString: pcap_geterr(dead)))
        }
        defer { pcap_freecode(&program) }
        // libpcap's bpf_insn and the kernel's sock_filter have the same layout.
        instructions = (0..<Int(program.bf_len)).map { i in
            let insn = program.bf_insns[i]
            return sock_filter(code: insn.code, jt: insn.jt, jf: insn.jf, k: insn.k)
        }
    }

    func withSocketProgram<T>(_ body: (inout sock_fprog) -> T) -> T {
        var copy = instructions
        return copy.withUnsafeMutableBufferPointer { buffer in
            var program = sock_fprog(len: UInt16(buffer.count), filter: buffer.baseAddress)
            return body(&program)
        }
    }
}
