#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// The sequence numbers of one node session's batches that a logger has written: all up to
/// `contiguous`, and the few above it (when some went to another logger).
struct SequenceSet: Equatable {
    var contiguous: UInt64 = 0
    var above: Set<UInt64> = []

    func contains(_ sequence: UInt64) -> Bool { sequence <= contiguous || above.contains(sequence) }

    /// Everything up to `sequence` is written.
    mutating func raise(to sequence: UInt64) {
        guard sequence > contiguous else { return }
        contiguous = sequence
        above = above.filter { $0 > sequence }
        while above.remove(contiguous + 1) != nil { contiguous += 1 }
    }

    /// The most sequence numbers kept above the contiguous ones (a node whose batches go
    /// to several loggers leaves holes here that never fill); past it the lowest hole is
    /// taken as written: a resend of a batch that old would be written a second time.
    static let maximumAbove = 65_536

    mutating func insert(_ sequence: UInt64) {
        guard sequence > contiguous else { return }
        if sequence == contiguous + 1 {
            contiguous = sequence
            while above.remove(contiguous + 1) != nil { contiguous += 1 }
        } else {
            above.insert(sequence)
            if above.count > Self.maximumAbove, let lowest = above.min() { raise(to: lowest) }
        }
    }
}

/// What a logger has written, kept beside its logs (`.trawl-ledger`), so that it writes a
/// batch once even across its own crash: before a batch's rows reach the file, a line says
/// which batch, which file, where in it and how long; after a restart, a line whose bytes
/// are not all in the file means the batch did not make it, and the file is cut back to
/// where the batch began. Lines:
///
///     W <node> <session hex> <sequence> <path> <offset> <length>   a batch written into <path>.log
///     H <node> <session hex> <contiguous> [<sequence> ...]         batches written into earlier files
///
/// Rotation rewrites it as H lines only (every file before it is complete).
final class Ledger {
    struct SessionKey: Hashable {
        var node: String
        var session: UInt64
    }

    let path: String
    private var file: FileDescriptor
    private(set) var written: [SessionKey: SequenceSet] = [:]
    /// When each session last had a batch written (wall ns; a loaded session counts from the
    /// load): rotation forgets sessions idle for `sessionExpiry`, keeping at most
    /// `maximumSessions`, so that years of node restarts do not pile up here.
    private var lastWritten: [SessionKey: UInt64] = [:]
    static let sessionExpiry: UInt64 = 7 * 86_400_000_000_000
    static let maximumSessions = 65_536
    private(set) var sessionsForgotten: UInt64 = 0
    /// Batches whose bytes were missing after a crash: their files were cut back.
    private(set) var recovered: [(path: String, cutTo: UInt64)] = []

    /// Reads the ledger in `directory`, checks it against the files there (`fileSize` gives
    /// a stream's file size, nil when missing), cuts back files that end inside a batch, and
    /// opens it for appending.
    init(directory: String, fileSize: (String) -> UInt64?) throws(Errno) {
        path = directory + "/.trawl-ledger"
        var entries: [(key: SessionKey, sequence: UInt64, stream: String, offset: UInt64, length: UInt64)] = []
        if let text = try? readFile(path) {
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                guard words.count >= 4, let session = UInt64(words[2], radix: 16) else { continue }
                let key = SessionKey(node: words[1], session: session)
                if words[0] == "W", words.count == 7, let sequence = UInt64(words[3]), let offset = UInt64(words[5]), let length = UInt64(words[6]) {
                    entries.append((key, sequence, words[4], offset, length))
                } else if words[0] == "H", let contiguous = UInt64(words[3]) {
                    var set = written[key] ?? SequenceSet()
                    set.raise(to: contiguous)
                    for extra in words.dropFirst(4) { if let sequence = UInt64(extra) { set.insert(sequence) } }
                    written[key] = set
                }
            }
        }
        // A batch counts only if all its bytes are in its file; the first that is not marks
        // where the file must be cut back to (later ones in that file are lost with it).
        var cut: [String: UInt64] = [:]
        for entry in entries {
            let size = fileSize(entry.stream) ?? 0
            if entry.offset + entry.length <= size && entry.offset < (cut[entry.stream] ?? .max) {
                written[entry.key, default: SequenceSet()].insert(entry.sequence)
            } else {
                cut[entry.stream] = min(cut[entry.stream] ?? .max, entry.offset)
            }
        }
        recovered = cut.map { ($0.key, $0.value) }
        let now = Clock.wallNanoseconds()
        for key in written.keys { lastWritten[key] = now }
        file = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_APPEND, permissions: 0o644)
        try rewrite() // the recovered state, compactly: W lines of files cut back must go
    }

    deinit { try? file.close() }

    func contains(node: String, session: UInt64, sequence: UInt64) -> Bool {
        written[SessionKey(node: node, session: session)]?.contains(sequence) ?? false
    }

    /// Notes a batch about to be written: call before its bytes reach the file.
    func record(node: String, session: UInt64, sequence: UInt64, stream: String, offset: UInt64, length: UInt64) throws(Errno) {
        let line = "W \(node) \(String(session, radix: 16)) \(sequence) \(stream) \(offset) \(length)\n"
        try file.writeAll(Array(line.utf8))
        let key = SessionKey(node: node, session: session)
        written[key, default: SequenceSet()].insert(sequence)
        lastWritten[key] = Clock.wallNanoseconds()
    }

    /// Replaces the ledger by H lines: after a rotation, or to drop the W lines of a recovery.
    /// Sessions idle past the expiry (and the oldest beyond the bound) are forgotten here.
    func rewrite() throws(Errno) {
        let now = Clock.wallNanoseconds()
        var idle = lastWritten.filter { now &- $0.value > Self.sessionExpiry }.map(\.key)
        if written.count - idle.count > Self.maximumSessions {
            let keep = Set(lastWritten.sorted { $0.value > $1.value }.prefix(Self.maximumSessions).map(\.key))
            idle = written.keys.filter { !keep.contains($0) }
        }
        for key in idle {
            written.removeValue(forKey: key)
            lastWritten.removeValue(forKey: key)
        }
        sessionsForgotten += UInt64(idle.count)
        var text = ""
        for (key, set) in written.sorted(by: { ($0.key.node, $0.key.session) < ($1.key.node, $1.key.session) }) {
            text += "H \(key.node) \(String(key.session, radix: 16)) \(set.contiguous)"
            for extra in set.above.sorted() { text += " \(extra)" }
            text += "\n"
        }
        let temporary = path + ".new"
        let replacement = try FileDescriptor.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, permissions: 0o644)
        try replacement.writeAll(Array(text.utf8))
        try replacement.close()
        guard rename(temporary, path) == 0 else { throw Errno.current }
        try? file.close()
        file = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_APPEND, permissions: 0o644)
    }
}
