#if canImport(Glibc)
import Glibc
#endif

/// The trace file formats recognised by their first four bytes.
public enum TraceFormat: Sendable, Equatable {
    /// Classic pcap; `nanosecond` for the 0xa1b23c4d magic, `swapped` when the file's byte
    /// order differs from this machine's.
    case pcap(nanosecond: Bool, swapped: Bool)
    case pcapng
    case unknown

    public static func identify(magic: UInt32) -> TraceFormat {
        switch magic {
        case 0xa1b2_c3d4: return .pcap(nanosecond: false, swapped: false)
        case 0xd4c3_b2a1: return .pcap(nanosecond: false, swapped: true)
        case 0xa1b2_3c4d: return .pcap(nanosecond: true, swapped: false)
        case 0x4d3c_b2a1: return .pcap(nanosecond: true, swapped: true)
        case 0x0a0d_0d0a: return .pcapng // the section header block type is a palindrome
        default: return .unknown
        }
    }

    /// Reads the first four bytes of `path` in host byte order and names the format.
    /// A file shorter than four bytes is `.unknown`.
    public static func sniff(path: String) -> Result<TraceFormat, Errno> {
        let file: FileDescriptor
        do { file = try FileDescriptor.open(path, O_RDONLY) } catch { return .failure(error) }
        defer { try? file.close() }
        var magic: UInt32 = 0
        do {
            let n = try withUnsafeMutableBytes(of: &magic) { buffer throws(Errno) in try file.read(into: buffer) }
            return .success(n == 4 ? identify(magic: magic) : .unknown)
        } catch {
            // A directory opens but cannot be read.
            return .failure(error)
        }
    }
}
