#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

// The few file operations the cluster needs beyond TrawlCore's FileDescriptor: whole small
// files (layouts, keys, ledgers, spooled batches) and directories made as needed.

/// The whole of a file, read in chunks (so that /proc files, whose size says 0, work too).
public func readWholeFile(_ path: String) throws(Errno) -> [UInt8] {
    let file = try FileDescriptor.open(path, O_RDONLY)
    defer { try? file.close() }
    var bytes: [UInt8] = []
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 1)
    defer { chunk.deallocate() }
    while true {
        let count = try file.read(into: chunk)
        bytes += chunk[0..<count]
        if count < chunk.count { return bytes }
    }
}

/// The whole of a small file, as text.
public func readFile(_ path: String) throws(Errno) -> String {
    String(decoding: try readWholeFile(path), as: UTF8.self)
}

/// `mkdir -p`.
public func makeDirectories(_ path: String) throws(Errno) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part + "/"
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw Errno.current }
    }
}

/// Writes `bytes` to `path` through a temporary file beside it (`temporary`, or PATH.tmp)
/// and a rename: a reader sees the old file or the whole new one, never half of it; nothing
/// is left behind on failure.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], permissions: mode_t = 0o644,
                                temporary: String? = nil) throws(Errno) {
    let temporary = temporary ?? path + ".tmp"
    let file = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, permissions: permissions)
    do {
        try file.writeAll(bytes)
        try file.close()
    } catch {
        try? file.close()
        unlink(temporary)
        throw error
    }
    guard rename(temporary, path) == 0 else {
        let error = Errno.current
        unlink(temporary)
        throw error
    }
}

public func writeFileAtomically(_ path: String, _ text: String, permissions: mode_t = 0o644) throws(Errno) {
    try writeFileAtomically(path, Array(text.utf8), permissions: permissions)
}

extension FileDescriptor {
    public func writeAll(_ bytes: [UInt8]) throws(Errno) {
        var failure: Errno?
        bytes.withUnsafeBytes { raw in
            do throws(Errno) { try writeAll(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
