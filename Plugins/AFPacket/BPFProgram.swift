import CLinuxPacket
import TrawlPluginSupport

/// A classic BPF program for SO_ATTACH_FILTER: one libpcap compiled, or a fixed one.
struct BPFProgram {
    private let instructions: [sock_filter]

    /// Accepts every packet whole.
    static let acceptAll = BPFProgram(instructions: [sock_filter(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: 0x0004_0000)])
    /// Accepts nothing: installed until the capture really starts.
    static let dropAll = BPFProgram(instructions: [sock_filter(code: UInt16(BPF_RET | BPF_K), jt: 0, jf: 0, k: 0)])

    private init(instructions: [sock_filter]) { self.instructions = instructions }

    /// The kernel's copy of a compiled filter (libpcap's bpf_insn has sock_filter's layout).
    init(_ filter: PacketFilter) {
        instructions = filter.instructions.map { sock_filter(code: $0.code, jt: $0.jt, jf: $0.jf, k: $0.k) }
    }

    func withSocketProgram<T>(_ body: (inout sock_fprog) -> T) -> T {
        var copy = instructions
        return copy.withUnsafeMutableBufferPointer { buffer in
            var program = sock_fprog(len: UInt16(buffer.count), filter: buffer.baseAddress)
            return body(&program)
        }
    }
}
