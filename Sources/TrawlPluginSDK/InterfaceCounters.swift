#if canImport(Glibc)
import Glibc
#endif

/// A NIC's own receive drops (the driver's, which a capture ring does not see), counted from
/// when a source opened the interface, for `trawl_stats.if_dropped`.
public struct InterfaceDrops {
    public let interface: String
    /// The counter when the source opened; nil when the interface has none (a pipe, a
    /// vanished interface).
    private let atOpen: UInt64?

    public init(interface: String) {
        self.interface = interface
        atOpen = Self.receiveDrops(interface)
    }

    /// Puts the drops since the open into `stats`, when the interface counts them.
    public func add(to stats: inout trawl_stats) {
        guard let start = atOpen, let now = Self.receiveDrops(interface) else { return }
        stats.if_dropped = now &- start
        stats.valid |= UInt64(TRAWL_STAT_IF_DROPPED)
    }

    /// /sys/class/net/IF/statistics/rx_dropped.
    static func receiveDrops(_ interface: String) -> UInt64? {
        let fd = open("/sys/class/net/\(interface)/statistics/rx_dropped", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        return UInt64(String(decoding: buffer[..<n], as: UTF8.self).filter(\.isNumber))
    }
}
