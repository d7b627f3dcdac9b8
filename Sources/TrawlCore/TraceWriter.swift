#if canImport(Glibc)
import Glibc
#endif

/// The on-disk layout a `TraceWriter` produces.
public enum TraceFileFormat: Sendable {
    /// Classic pcap with nanosecond timestamps (magic 0xa1b23c4d), in host byte order.
    case pcapNanosecond
    /// Classic pcap with microsecond timestamps (magic 0xa1b2c3d4), read by every tool.
    case pcapMicrosecond
    /// pcapng: one section, one interface (nanosecond resolution), enhanced packet blocks.
    case pcapng
}

/// Writes packets to a trace file through a buffer. Output goes to a temporary name next
/// to the target and is renamed into place by `finish()`, so a failed run leaves no
/// half-written file behind; `abandon()` removes it.
public final class TraceWriter {
    public let path: String
    public let format: TraceFileFormat
    /// The LINKTYPE_ of every packet in the file.
    public let linkType: UInt32
    private let file: FileDescriptor
    private let temporaryPath: String?
    private var buffer: [UInt8] = []
    private let flushThreshold = 1 << 20
    public private(set) var packetsWritten: UInt64 = 0

    /// `path` "-" writes to standard output.
    public init(path: String, format: TraceFileFormat = .pcapNanosecond, linkType: UInt32, snaplen: UInt32 = 262_144) throws(Errno) {
        self.path = path
        self.format = format
        self.linkType = linkType
        if path == "-" {
            file = FileDescriptor(rawValue: STDOUT_FILENO)
            temporaryPath = nil
        } else {
            let temporary = path + ".partial-\(getpid())"
            file = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
            temporaryPath = temporary
        }
        buffer.reserveCapacity(flushThreshold + 65_536)
        writeFileHeader(linkType: linkType, snaplen: snaplen)
    }

    deinit { abandon() }

    private func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { buffer.append(contentsOf: $0) }
    }

    private func writeFileHeader(linkType: UInt32, snaplen: UInt32) {
        switch format {
        case .pcapNanosecond, .pcapMicrosecond:
            append(format == .pcapNanosecond ? UInt32(0xa1b2_3c4d) : UInt32(0xa1b2_c3d4))
            append(UInt16(2)); append(UInt16(4)) // version 2.4
            append(Int32(0)); append(UInt32(0))   // thiszone, sigfigs
            append(snaplen); append(linkType)
        case .pcapng:
            // Section header block, no options.
            append(UInt32(0x0a0d_0d0a)); append(UInt32(28)); append(UInt32(0x1a2b_3c4d))
            append(UInt16(1)); append(UInt16(0)); append(Int64(-1)); append(UInt32(28))
            // Interface description block with if_tsresol = 9 (nanoseconds).
            append(UInt32(1)); append(UInt32(32))
            append(UInt16(linkType)); append(UInt16(0)); append(snaplen)
            append(UInt16(9)); append(UInt16(1)); append(UInt8(9)); append(UInt8(0)); append(UInt16(0))
            append(UInt32(0)) // opt_endofopt
            append(UInt32(32))
        }
    }

    /// Appends one packet. `bytes` are the captured bytes; `wireLength` the original length.
    public func write(timestampNanoseconds: UInt64, wireLength: Int, bytes: UnsafeRawBufferPointer) throws(Errno) {
        switch format {
        case .pcapNanosecond, .pcapMicrosecond:
            let seconds = timestampNanoseconds / 1_000_000_000
            let fraction = timestampNanoseconds % 1_000_000_000
            append(UInt32(truncatingIfNeeded: seconds))
            append(UInt32(format == .pcapNanosecond ? fraction : fraction / 1000))
            append(UInt32(bytes.count)); append(UInt32(wireLength))
            buffer.append(contentsOf: bytes)
        case .pcapng:
            let padded = (bytes.count + 3) & ~3
            let total = UInt32(32 + padded)
            append(UInt32(6)); append(total); append(UInt32(0))
            append(UInt32(truncatingIfNeeded: timestampNanoseconds >> 32))
            append(UInt32(truncatingIfNeeded: timestampNanoseconds))
            append(UInt32(bytes.count)); append(UInt32(wireLength))
            buffer.append(contentsOf: bytes)
            buffer.append(contentsOf: repeatElement(0, count: padded - bytes.count))
            append(total)
        }
        packetsWritten += 1
        if buffer.count >= flushThreshold { try flush() }
    }

    public func write(_ packet: Packet) throws(Errno) {
        try write(timestampNanoseconds: packet.timestampNanoseconds, wireLength: packet.wireLength, bytes: packet.bytes)
    }

    public func flush() throws(Errno) {
        let failure = buffer.withUnsafeBytes { raw -> Errno? in
            do throws(Errno) { try file.writeAll(raw); return nil } catch { return error }
        }
        buffer.removeAll(keepingCapacity: true)
        if let failure { throw failure }
    }

    /// Flushes, closes and moves the file into place.
    public func finish() throws(Errno) {
        try flush()
        guard let temporaryPath else { return }
        try file.close()
        self.temporaryPathDone = true
        guard rename(temporaryPath, path) == 0 else {
            let error = Errno.current
            unlink(temporaryPath)
            throw error
        }
    }

    private var temporaryPathDone = false

    /// Closes and deletes the unfinished file.
    public func abandon() {
        guard let temporaryPath, !temporaryPathDone else { return }
        temporaryPathDone = true
        try? file.close()
        unlink(temporaryPath)
    }
}
