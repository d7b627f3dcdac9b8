#if canImport(Glibc)
import Glibc
#endif
import TrawlPluginSDK

/// Reads classic pcap files (either byte order, micro- or nanosecond timestamps) with large
/// reads into one buffer, and hands out packets where they lie in it: no per-packet copy,
/// where libpcap's reader copies each record out of stdio and Trawl::Pcap copied it again
/// into a batch arena. Used for regular files; pipes and other formats go to libpcap.
public final class PcapFileReader {
    public let linkType: UInt32
    public let snaplen: UInt32
    public let nanosecond: Bool
    private let file: Int32
    @usableFromInline let swapped: Bool
    private let path: String
    /// Records longer than this are refused, as libpcap refuses them (its MAXIMUM_SNAPLEN,
    /// whatever the file's header claims: a header must not make the reader allocate more).
    public static let maximumCaptured = 262_144
    @usableFromInline var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// The bytes read and not handed out yet are buffer[start..<end].
    @usableFromInline var start = 0, end = 0
    @usableFromInline var atEnd = false

    static let initialCapacity = 1 << 18

    /// Opens `path` if it is a regular file in the classic pcap format; nil when it is not
    /// (libpcap then reads it, or says what is wrong with it).
    public static func open(_ path: String) throws(PluginError) -> PcapFileReader? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PluginError("unable to open \(path): " + String(cString: strerror(errno)), code: PluginErrorCode(errno: errno), errno: errno) }
        var status = stat()
        var header = [UInt8](repeating: 0, count: 24)
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
              pread(fd, &header, 24, 0) == 24 else {
            Glibc.close(fd)
            return nil
        }
        let magic = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
        let swapped: Bool, nanosecond: Bool
        switch magic {
        case 0xa1b2_c3d4: (swapped, nanosecond) = (false, false)
        case 0xa1b2_3c4d: (swapped, nanosecond) = (false, true)
        case 0xd4c3_b2a1: (swapped, nanosecond) = (true, false)
        case 0x4d3c_b2a1: (swapped, nanosecond) = (true, true)
        default:
            Glibc.close(fd)
            return nil
        }
        func word(_ at: Int) -> UInt32 {
            let v = UInt32(header[at]) | UInt32(header[at + 1]) << 8 | UInt32(header[at + 2]) << 16 | UInt32(header[at + 3]) << 24
            return swapped ? v.byteSwapped : v
        }
        let major = swapped ? (UInt16(header[4]) << 8 | UInt16(header[5])) : (UInt16(header[5]) << 8 | UInt16(header[4]))
        guard major == 2 else {
            Glibc.close(fd)
            return nil // libpcap explains unsupported versions
        }
        let snap = word(16)
        // The link type field's upper bits carry FCS information, not the type.
        return PcapFileReader(file: fd, path: path, swapped: swapped, nanosecond: nanosecond, linkType: word(20) & 0x03ff_ffff,
                              snaplen: snap == 0 || snap > UInt32(maximumCaptured) ? UInt32(maximumCaptured) : snap)
    }

    private init(file: Int32, path: String, swapped: Bool, nanosecond: Bool, linkType: UInt32, snaplen: UInt32) {
        self.file = file
        self.path = path
        self.swapped = swapped
        self.nanosecond = nanosecond
        self.linkType = linkType
        self.snaplen = snaplen
        capacity = max(Self.initialCapacity, 2 * (16 + Self.maximumCaptured))
        buffer = .allocate(byteCount: capacity, alignment: 16)
        lseek(file, 24, SEEK_SET) // records start after the file header
    }

    deinit {
        Glibc.close(file)
        buffer.deallocate()
    }

    /// Moves what is left to the front of the buffer and reads until it is full or the file ends.
    @usableFromInline func refill() throws(PluginError) {
        if start > 0 {
            if end > start { buffer.copyMemory(from: buffer + start, byteCount: end - start) }
            end -= start
            start = 0
        }
        while end < capacity && !atEnd {
            let got = read(file, buffer + end, capacity - end)
            if got < 0 {
                if errno == EINTR { continue }
                throw PluginError("error reading dump file \(path): " + String(cString: strerror(errno)), code: .io, errno: errno)
            }
            if got == 0 { atEnd = true }
            end += got
        }
    }

    @usableFromInline var nextRecordIsWhole: Bool {
        end - start >= 16 && end - start >= 16 + Int(word(start + 8))
    }

    @inlinable @inline(__always) func word(_ at: Int) -> UInt32 {
        let v = buffer.loadUnaligned(fromByteOffset: at, as: UInt32.self)
        return swapped ? v.byteSwapped : v
    }

    /// Adds the packets that `keep` accepts to `batch`, up to its capacity. Their bytes stay
    /// valid until the next call. Returns false at the end of the file. A damaged record
    /// ends the file with an error, after the packets before it have been handed out.
    /// Inlinable, so that the plugin's `keep` is inlined into the loop over the records.
    @inlinable
    public func next(into batch: inout BatchOutput, keep: (_ captured: UInt32, _ wire: UInt32, _ data: UnsafePointer<UInt8>) -> Bool) throws(PluginError) -> Bool {
        if let failure = pendingFailure { throw failure }
        // Refilled only when the next record is not whole in the buffer: what is left is
        // then less than one record, cheap to move to the front.
        if !nextRecordIsWhole { try refill() }
        if start == end && atEnd { return false }
        while !batch.isFull {
            let available = end - start
            let captured = available >= 16 ? Int(word(start + 8)) : 0
            if available < 16 || captured > Self.maximumCaptured || available < 16 + captured {
                guard let problem = damage(available: available, captured: captured) else { break } // more to read
                guard batch.count == 0 else { pendingFailure = problem; return true }
                throw problem
            }
            let seconds = UInt64(word(start)), fraction = UInt64(word(start + 4))
            let wire = word(start + 12)
            let data = UnsafePointer((buffer + start + 16).assumingMemoryBound(to: UInt8.self))
            start += 16 + captured
            guard keep(UInt32(captured), wire, data) else { continue }
            batch.append(timestampNanoseconds: seconds &* 1_000_000_000 &+ (nanosecond ? fraction : fraction &* 1000),
                         capturedLength: UInt32(captured), wireLength: wire, data: data)
        }
        return batch.count > 0 || !(start == end && atEnd)
    }

    @usableFromInline var pendingFailure: PluginError?

    /// What is wrong with a record that is not whole in the buffer, in libpcap's words; nil
    /// when the rest of it is still to be read.
    @usableFromInline func damage(available: Int, captured: Int) -> PluginError? {
        if captured > Self.maximumCaptured {
            return PluginError("invalid packet capture length \(captured), bigger than maximum of \(Self.maximumCaptured) in \(path)", code: .format)
        }
        guard atEnd, available > 0 else { return nil }
        if available < 16 {
            return PluginError("truncated dump file \(path); tried to read 16 header bytes, only got \(available)", code: .format)
        }
        return PluginError("truncated dump file \(path); tried to read \(captured) captured bytes, only got \(available - 16)", code: .format)
    }
}
