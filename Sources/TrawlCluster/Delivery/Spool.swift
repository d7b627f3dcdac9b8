#if canImport(Glibc)
import Glibc
#endif
import TrawlCore

/// Log batches kept on disk: the ones that do not fit in a node's memory bound while the
/// loggers cannot take them, and every unacknowledged one when the node stops. A batch is
/// one file, written under a temporary name and renamed, so a file that is there is whole.
/// Names sort in the order the batches were made, across restarts of the node.
final class Spool {
    let directory: String
    private(set) var bytes = 0
    private(set) var files = 0

    init(directory: String) throws(Errno) {
        self.directory = directory
        try makeDirectories(directory)
        for name in Self.names(in: directory) {
            var status = stat()
            if stat(directory + "/" + name, &status) == 0 {
                bytes += Int(status.st_size)
                files += 1
            }
        }
    }

    /// The spooled batches left from earlier runs, oldest first.
    func existing() -> [String] { Self.names(in: directory).map { directory + "/" + $0 } }

    /// Stores a batch; returns its file's path.
    func store(_ batch: [UInt8], order: (start: UInt64, sequence: UInt64)) throws(Errno) -> String {
        let name = Self.pad(order.start) + "-" + Self.pad(order.sequence) + ".batch"
        let path = directory + "/" + name
        // Written as a hidden name first, so that a batch cut short is never read as one.
        try writeFileAtomically(path, batch, permissions: 0o600, temporary: directory + "/.incoming-" + name)
        bytes += batch.count
        files += 1
        return path
    }

    func load(_ path: String) throws(Errno) -> [UInt8] { try readWholeFile(path) }

    func remove(_ path: String, size: Int) {
        guard unlink(path) == 0 else { return }
        bytes -= size
        files -= 1
    }

    private static func pad(_ value: UInt64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    private static func names(in directory: String) -> [String] {
        directoryEntries(directory).filter { $0.hasSuffix(".batch") && !$0.hasPrefix(".") }
    }
}
