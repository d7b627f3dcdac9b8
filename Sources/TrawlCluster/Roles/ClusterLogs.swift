import TrawlAnalysis

/// The streams the cluster writes besides conn.log, with Zeek's paths, field names and types.
public enum ClusterLogs {
    /// Zeek's base/frameworks/cluster: cluster.log.
    public static let cluster = LogSchema(path: "cluster", fields: [("ts", "time"), ("node", "string"), ("message", "string")])

    /// Zeek's policy/misc/stats: stats.log, one row per node per interval.
    public static let stats = LogSchema(path: "stats", fields: [
        ("ts", "time"), ("peer", "string"), ("mem", "count"), ("pkts_proc", "count"), ("bytes_recv", "count"),
        ("pkts_dropped", "count"), ("pkts_link", "count"), ("pkt_lag", "interval"), ("pkts_filtered", "count"),
        ("events_proc", "count"), ("events_queued", "count"),
        ("active_tcp_conns", "count"), ("active_udp_conns", "count"), ("active_icmp_conns", "count"),
        ("tcp_conns", "count"), ("udp_conns", "count"), ("icmp_conns", "count"),
        ("timers", "count"), ("active_timers", "count"), ("files", "count"), ("active_files", "count"),
        ("dns_requests", "count"), ("active_dns_requests", "count"),
        ("reassem_tcp_size", "count"), ("reassem_file_size", "count"), ("reassem_frag_size", "count"),
        ("reassem_unknown_size", "count"),
    ])

    /// Zeek's policy/misc/capture-loss: capture_loss.log.
    public static let captureLoss = LogSchema(path: "capture_loss", fields: [
        ("ts", "time"), ("ts_delta", "interval"), ("peer", "string"), ("gaps", "count"), ("acks", "count"),
        ("percent_lost", "double"),
    ])

    /// Zeek's base/frameworks/notice: notice.log (defined with weird.log, whose notices go there too).
    public static let notice = LogSchema.notice

    /// Zeek's policy/protocols/conn/known-hosts: known_hosts.log.
    public static let knownHosts = LogSchema(path: "known_hosts", fields: [("ts", "time"), ("host", "addr")])

    /// A notice.log row with only what a notice of the cluster's own has: time, type,
    /// message and the node it is about.
    static func noticeRecord(time: UInt64, note: String, message: String, peer: String) -> [LogValue] {
        LogSchema.noticeRow(time: time, note: note, message: message, peer: peer)
    }
}

/// Where a node's remarks go (its standard error, in `trawl`): any thread may call it.
public typealias Reporter = @Sendable (String) -> Void
