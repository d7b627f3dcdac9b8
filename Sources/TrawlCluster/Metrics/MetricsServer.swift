#if canImport(Glibc)
import Glibc
#endif
import Prometheus
import TrawlCore

/// A node's Prometheus metrics on its own port (trawlctl's MetricsPort + its place): the
/// node's counters (`NodeStatistics.Name`, as `trawl_NAME_total`, present values as gauges),
/// sampled when scraped, in the text format made by swift-prometheus. Served from the
/// node's run loop: an HTTP request is read and answered at once, and a client that sends
/// nothing within a moment is closed, so a scraper can never hold the loop.
public final class MetricsServer: IOSource {
    private let listener: Int32
    private let registry = PrometheusCollectorRegistry()
    private let labels: [(String, String)]
    private let sample: () -> [(String, UInt64)]
    private var counters: [String: (counter: Counter, last: UInt64)] = [:]
    private var gauges: [String: Gauge] = [:]
    private let up: Gauge
    public private(set) var scrapes: UInt64 = 0

    /// Names whose values are what there is now rather than totals.
    static let present: Set<String> = [NodeStatistics.Name.memory, NodeStatistics.Name.activeTCP, NodeStatistics.Name.activeUDP,
                                       NodeStatistics.Name.activeICMP, NodeStatistics.Name.fragmentBytes, "lag_ns",
                                       "outbox_batches"]

    public init(address: String, port: UInt16, node: String, role: NodeRole,
                sample: @escaping () -> [(String, UInt64)]) throws(Errno) {
        labels = [("node", node), ("role", role.rawValue)]
        self.sample = sample
        up = registry.makeGauge(descriptor: Self.descriptor("up", help: "1 while the node runs"), labels: labels)
        up.set(Double(1))
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw Errno.current }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var sockaddress = sockaddr_in()
        sockaddress.sin_family = sa_family_t(AF_INET)
        sockaddress.sin_port = in_port_t(port.bigEndian)
        guard inet_pton(AF_INET, address, &sockaddress.sin_addr) == 1 else {
            close(listener)
            throw Errno(rawValue: EINVAL)
        }
        let bound = withUnsafePointer(to: &sockaddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            let error = Errno.current
            close(listener)
            throw error
        }
    }

    deinit { close(listener) }

    public var descriptor: Int32? { listener }
    public var isExhausted: Bool { false }

    /// Answers the scrapers waiting to be accepted.
    public func process() throws -> Bool {
        var served = false
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return served }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            // Accepted sockets inherit no O_NONBLOCK here; the timeouts below bound each one.
            served = true
            answer(client)
            close(client)
        }
    }

    private func answer(_ client: Int32) {
        // The request: a line or so; waited for at most 200 ms.
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8](repeating: 0, count: 4096)
        let count = read(client, &request, request.count)
        guard count > 0 else { return }
        let line = String(decoding: request[0..<count].prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let response: [UInt8]
        if line.hasPrefix("GET /metrics") || line.hasPrefix("GET / ") {
            scrapes += 1
            let body = exposition()
            response = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
        } else {
            let body = Array("Trawl's metrics are at /metrics\n".utf8)
            response = Array("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
        }
        // A client too slow to take it within the send timeout is given up.
        try? FileDescriptor(rawValue: client).writeAll(response)
    }

    /// `trawl_NAME`, with its help line.
    static func descriptor(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "trawl", metricName: name, unitName: "", helpText: help)
    }

    /// The node's counters now, in Prometheus's text format.
    func exposition() -> [UInt8] {
        for (name, value) in sample() {
            let metric = name.map { $0.isLetter || $0.isNumber ? $0 : "_" }.reduce(into: "") { $0.append($1) }
            if Self.present.contains(name) {
                let gauge = gauges[name] ?? registry.makeGauge(descriptor: Self.descriptor(metric, help: "the node's \(name) now"), labels: labels)
                gauges[name] = gauge
                gauge.set(Double(value))
            } else {
                var entry = counters[name] ?? (registry.makeCounter(descriptor: Self.descriptor(metric + "_total", help: "the node's \(name) since it started"), labels: labels), 0)
                // A total that went back (a restarted source): counted on from there.
                entry.counter.increment(by: Int64(clamping: value >= entry.last ? value - entry.last : value))
                entry.last = value
                counters[name] = entry
            }
        }
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
