#if canImport(Glibc)
import Glibc
#endif

/// What the kernel counts for a network interface, for sources that report the drops the
/// NIC or its driver saw beside their own (`trawl_stats.if_dropped`).
public enum InterfaceCounters {
    /// The interface's receive drop counter (/sys/class/net/IF/statistics/rx_dropped), or nil
    /// when the interface has none (a pipe, a vanished interface).
    public static func receiveDrops(_ interface: String) -> UInt64? {
        let fd = open("/sys/class/net/\(interface)/statistics/rx_dropped", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        return UInt64(String(decoding: buffer[..<n], as: UTF8.self).filter(\.isNumber))
    }
}
