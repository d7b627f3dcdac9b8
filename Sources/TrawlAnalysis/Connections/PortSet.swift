/// A set of ports as a 65 536-bit map (8 KiB): membership is one load and a mask, with no
/// hashing, for the questions asked of every new connection (likely server ports).
struct PortSet {
    private var words = [UInt64](repeating: 0, count: 1024)

    init<S: Sequence>(_ ports: S) where S.Element == UInt16 {
        for port in ports { words[Int(port >> 6)] |= 1 << UInt64(port & 63) }
    }

    @inline(__always) func contains(_ port: UInt16) -> Bool {
        words.withUnsafeBufferPointer { $0[Int(port >> 6)] & (1 << UInt64(port & 63)) != 0 }
    }
}
