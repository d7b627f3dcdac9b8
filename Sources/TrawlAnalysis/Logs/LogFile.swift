#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// A buffered file that appears under its name only when complete. Writers reserve room
/// for a row and format into it through a `ByteCursor`: plain stores, no per-byte checks.
final class LogFile {
    let path: String
    /// Where the bytes go until the file is complete: `path` itself when appending.
    private let temporary: String
    private let file: FileDescriptor
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity = 1 << 17
    private var used = 0
    private var closed = false
    /// Bytes in the file before this writer, and handed to the kernel since.
    let initialSize: UInt64
    private(set) var flushedBytes: UInt64 = 0
    /// Written out once this much is buffered.
    private static let flushAt = 1 << 16
    /// While set, nothing is written before `flush`: the buffer grows instead. A logger
    /// formats a whole batch, notes its size in its ledger, and only then writes it.
    var holdsWrites = false

    init(path: String) throws(Errno) {
        self.path = path
        temporary = path + ".partial-\(getpid())"
        file = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        buffer = .allocate(capacity: capacity)
        initialSize = 0
    }

    /// Writes at the end of `path` (made if missing) from the start: for a logger, whose
    /// files must be whole at every acknowledged batch, not only at the end.
    init(appendingTo path: String) throws(Errno) {
        self.path = path
        temporary = path
        file = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_APPEND)
        let end = lseek(file.rawValue, 0, SEEK_END)
        guard end >= 0 else { throw Errno.current }
        initialSize = UInt64(end)
        buffer = .allocate(capacity: capacity)
    }

    /// The file's size once everything buffered is written.
    var size: UInt64 { initialSize + flushedBytes + UInt64(used) }

    deinit {
        buffer.deallocate()
        guard !closed else { return }
        try? file.close()
        if temporary != path { unlink(temporary) }
    }

    /// A cursor with room for at least `count` bytes; hand it back with `commit`.
    func reserve(_ count: Int) throws(Errno) -> ByteCursor {
        if used + count > capacity {
            if holdsWrites {
                let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: max(capacity * 2, used + count))
                larger.update(from: buffer, count: used)
                buffer.deallocate()
                buffer = larger
                capacity = max(capacity * 2, used + count)
                return ByteCursor(at: buffer + used)
            }
            try flush()
            if count > capacity { // a row larger than the buffer
                buffer.deallocate()
                capacity = count
                buffer = .allocate(capacity: capacity)
            }
        }
        return ByteCursor(at: buffer + used)
    }

    /// Takes the bytes written through `cursor`; writes the buffer out when it is full.
    func commit(_ cursor: ByteCursor) throws(Errno) {
        used = cursor.at - buffer
        if used >= Self.flushAt && !holdsWrites { try flush() }
    }

    func append(_ text: String) throws(Errno) {
        var cursor = try reserve(text.utf8.count)
        cursor.put(text)
        try commit(cursor)
    }

    func flush() throws(Errno) {
        let pending = used
        used = 0
        try file.writeAll(UnsafeRawBufferPointer(start: buffer, count: pending))
        flushedBytes += UInt64(pending)
    }

    func finish() throws(Errno) {
        try flush()
        closed = true
        try file.close()
        guard temporary != path else { return }
        guard rename(temporary, path) == 0 else { throw Errno.current }
    }
}

/// Writes bytes into memory reserved beforehand (see `LogFile.reserve`).
struct ByteCursor {
    var at: UnsafeMutablePointer<UInt8>

    /// A string of at most `capacity` bytes, written through a cursor.
    static func string(capacity: Int, _ write: (inout ByteCursor) -> Void) -> String {
        String(unsafeUninitializedCapacity: max(capacity, 1)) { buffer in
            var cursor = ByteCursor(at: buffer.baseAddress!)
            write(&cursor)
            return cursor.at - buffer.baseAddress!
        }
    }

    @inline(__always) mutating func put(_ byte: UInt8) {
        at.pointee = byte
        at += 1
    }

    mutating func put(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { return }
        UnsafeMutableRawPointer(at).copyMemory(from: base, byteCount: bytes.count)
        at += bytes.count
    }

    mutating func put(_ text: String) {
        var text = text
        text.withUTF8 { put(UnsafeRawBufferPointer($0)) }
    }

    @inline(__always) mutating func putHexDigit(_ value: UInt8) {
        put(value < 10 ? 0x30 + value : 0x57 + value) // "0"..."9", "a"..."f"
    }

    /// At most 20 digits.
    mutating func putDecimal(_ value: UInt64) {
        var digits = 1
        var limit: UInt64 = 10
        while digits < 20 && value >= limit {
            digits += 1
            limit &*= 10
        }
        var rest = value
        var position = at + digits
        repeat {
            position -= 1
            position.pointee = 0x30 + UInt8(rest % 10)
            rest /= 10
        } while position > at
        at += digits
    }

    mutating func putSigned(_ value: Int64) {
        if value < 0 { put(UInt8(ascii: "-")) }
        putDecimal(value.magnitude)
    }

    /// A double as Zeek's ODesc writes one: at most six decimals without trailing zeros,
    /// and ".0" after a whole number so that it reads as a double. At most 40 bytes.
    mutating func putDouble(_ value: Double) {
        guard value.isFinite else { put(value.isNaN ? "nan" : value < 0 ? "-inf" : "inf"); return }
        guard abs(value) < 1e18 else { put(String(value)); return }
        if value < 0 { put(UInt8(ascii: "-")) }
        let scaled = (abs(value) * 1_000_000).rounded()
        let whole = UInt64(scaled) / 1_000_000
        var fraction = UInt64(scaled) % 1_000_000
        putDecimal(whole)
        put(UInt8(ascii: "."))
        guard fraction != 0 else { put(UInt8(ascii: "0")); return }
        var digits = 6
        while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
        var position = at + digits
        while position > at {
            position -= 1
            position.pointee = 0x30 + UInt8(fraction % 10)
            fraction /= 10
        }
        at += digits
    }

    /// Seconds with six decimals, rounded, as "%.6f" prints them: at most 27 bytes.
    mutating func putSeconds(_ nanoseconds: UInt64) {
        let micro = (nanoseconds + 500) / 1000
        putDecimal(micro / 1_000_000)
        put(UInt8(ascii: "."))
        var fraction = micro % 1_000_000
        var position = at + 6
        while position > at {
            position -= 1
            position.pointee = 0x30 + UInt8(fraction % 10)
            fraction /= 10
        }
        at += 6
    }

    /// An address as Zeek writes it: at most 45 bytes.
    mutating func putAddress(_ address: IPAddress) {
        guard address.isV4 else { put(address.description); return }
        let v = address.v4Value
        putDecimal(UInt64(v >> 24))
        put(UInt8(ascii: "."))
        putDecimal(UInt64(v >> 16 & 0xff))
        put(UInt8(ascii: "."))
        putDecimal(UInt64(v >> 8 & 0xff))
        put(UInt8(ascii: "."))
        putDecimal(UInt64(v & 0xff))
    }
}
