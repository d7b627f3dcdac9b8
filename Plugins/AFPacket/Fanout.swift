import CLinuxPacket
import TrawlPluginSDK
#if canImport(Glibc)
import Glibc
#endif

/// How the kernel spreads a fanout group's packets over its members.
enum FanoutMode: String, SourceOptionChoice {
    case hash      // by a symmetric flow hash: both directions of a flow go to one member
    case lb        // round robin
    case cpu       // by the CPU that received the packet
    case rollover  // fill one member, then the next
    case random
    case qm        // by the NIC's receive queue

    var kernelValue: Int32 {
        switch self {
        case .hash: return PACKET_FANOUT_HASH
        case .lb: return PACKET_FANOUT_LB
        case .cpu: return PACKET_FANOUT_CPU
        case .rollover: return PACKET_FANOUT_ROLLOVER
        case .random: return PACKET_FANOUT_RND
        case .qm: return PACKET_FANOUT_QM
        }
    }
}

enum Fanout {
    /// The PACKET_FANOUT argument: group id in the low 16 bits, mode and flags above.
    static func argument(id: UInt64, mode: FanoutMode, defragment: Bool) -> UInt32 {
        let flags = defragment ? UInt32(PACKET_FANOUT_FLAG_DEFRAG) : 0
        return UInt32(id & 0xffff) | (UInt32(mode.kernelValue) | flags) << 16
    }

    static func join(_ fd: Int32, id: UInt64, mode: FanoutMode, defragment: Bool, interface: String) throws(PluginError) {
        guard id <= 0xffff else { throw PluginError("AF_Packet::fanout_id must be 0..65535, not \(id)", code: .invalid) }
        var value = argument(id: id, mode: mode, defragment: defragment)
        guard setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &value, socklen_t(MemoryLayout<UInt32>.size)) != 0 else { return }
        let code = errno
        switch code {
        case EINVAL, EEXIST:
            // The kernel refuses to join a group that exists on another interface, or with
            // another mode or flags, in this network namespace.
            throw PluginError("cannot join fanout group \(id) on \(interface) (\(String(cString: strerror(code)))): the group already exists in this network namespace on another interface or with another mode; each interface needs its own AF_Packet::fanout_id, e.g. AF_Packet::fanout_id=\(id == 0xffff ? id - 1 : id + 1)", code: .busy, errno: code)
        case ENOMEM, ENOSPC:
            throw PluginError("cannot join fanout group \(id): the group is full (\(String(cString: strerror(code))))", code: .busy, errno: code)
        default:
            throw PluginError("cannot join fanout group \(id): \(String(cString: strerror(code)))", code: PluginErrorCode(errno: code), errno: code)
        }
    }
}

/// What the analysis is told about checksums, from the kernel's packet status.
enum ChecksumMode: String, SourceOptionChoice {
    case on, off, kernel

    @inline(__always)
    func flags(status: UInt32) -> UInt32 {
        switch self {
        case .on: return 0
        case .off: return TRAWL_PACKET_CHECKSUM_VERIFIED
        case .kernel:
            if status & UInt32(TP_STATUS_CSUM_VALID) != 0 { return TRAWL_PACKET_CHECKSUM_VERIFIED }
            if status & UInt32(TP_STATUS_CSUMNOTREADY) != 0 { return TRAWL_PACKET_CHECKSUM_PARTIAL }
            return 0
        }
    }
}
