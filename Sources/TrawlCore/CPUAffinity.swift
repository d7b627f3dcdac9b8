import CTrawlSystem
#if canImport(Glibc)
import Glibc
#endif

/// Pins the calling process to a set of CPUs with sched_setaffinity, so that a capture
/// worker stays on the core its share of the traffic is steered to.
public enum CPUAffinity {
    /// The highest CPU number a list may name, plus one.
    public static let limit = 1024

    /// Parses "3", "0,2" or "0-3,6" into CPU numbers.
    public static func parse(_ list: String) -> [Int]? {
        var cpus: [Int] = []
        for part in list.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), low >= 0,
                  let high = bounds.count == 2 ? Int(bounds[1]) : low, high >= low, high < limit else { return nil }
            cpus.append(contentsOf: low...high)
        }
        return cpus.isEmpty ? nil : cpus
    }

    /// Restricts this process to `cpus`. EINVAL when none of them exists here.
    public static func pin(to cpus: [Int]) throws(Errno) {
        var mask = [UInt8](repeating: 0, count: limit / 8)
        for cpu in cpus where cpu < limit { mask[cpu / 8] |= UInt8(1 << (cpu % 8)) }
        guard trawl_set_cpu_affinity(mask, mask.count) == 0 else { throw Errno.current }
    }

    /// The CPUs this process may run on.
    public static func current() -> [Int] {
        var mask = [UInt8](repeating: 0, count: limit / 8)
        guard trawl_get_cpu_affinity(&mask, mask.count) == 0 else { return [] }
        return (0..<limit).filter { mask[$0 / 8] & UInt8(1 << ($0 % 8)) != 0 }
    }
}
