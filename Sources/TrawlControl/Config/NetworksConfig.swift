/// networks.cfg: one CIDR per line with an optional tag after it, `#` comments: the local
/// networks of every node (conn.log's local_orig/local_resp, known_hosts).
public struct NetworksConfig: Sendable, Equatable {
    public struct Network: Sendable, Equatable {
        public let cidr: String
        public let tag: String?
        public let line: Int
    }
    public private(set) var networks: [Network] = []

    public init(parsing text: String, file: String) throws(ConfigProblems) {
        var problems: [ConfigProblem] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let first = words.first else { continue }
            let cidr = String(first)
            guard Self.isCIDR(cidr) else {
                problems.append(ConfigProblem(file, index + 1, "'\(cidr)' is not a network (CIDR such as 10.0.0.0/8 or 2001:db8::/32)"))
                continue
            }
            let tag = words.count > 1 ? words.dropFirst().joined(separator: " ") : nil
            networks.append(Network(cidr: cidr, tag: tag, line: index + 1))
        }
        if !problems.isEmpty { throw ConfigProblems(problems) }
    }

    /// An address (v4 dotted or v6 with colons) and a prefix length within its size.
    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), length >= 0 else { return false }
        let address = parts[0]
        if address.contains(":") {
            guard length <= 128 else { return false }
            return address.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && address.filter({ $0 == ":" }).count >= 2
        }
        let octets = address.split(separator: ".", omittingEmptySubsequences: false)
        return length <= 32 && octets.count == 4 && octets.allSatisfy { Int($0).map { (0...255).contains($0) } ?? false }
    }
}
