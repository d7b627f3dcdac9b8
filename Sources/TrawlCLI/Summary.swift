#if canImport(Glibc)
import Glibc
#endif
import TrawlCore
import TrawlAnalysis
import TrawlCluster

/// What a run prints when it ends: one `key: value` line each, easy to read and to grep.
struct Summary {
    let sources: [String]
    let tally: CaptureTally
    let statistics: [CaptureStatistics]
    let live: Bool
    let written: (path: String, packets: UInt64, leftOut: UInt64)?
    let connections: (logged: UInt64, path: String, weirds: [String: UInt64])?
    /// The analysis's bounded tables: how full they got, and what their bounds and expiry took.
    var tables: [TableStatistics] = []
    /// Cluster::shard: this part, and the IP packets left to the others.
    var shard: (Shard, UInt64)?
    /// Times the packet thread waited for the log thread (a writer that cannot keep up).
    var logWaits: UInt64 = 0
    /// A cluster worker's log batches: what became of them.
    var delivery: DeliveryCounters?
    /// weird.log: rows, weirds held back (repeats, sampling, actions), and weirds not logged
    /// for want of room in the bounded tables that decide.
    var weirdLog: (rows: UInt64, heldBack: UInt64, noRoom: UInt64)?
    /// What sources said beside their packets (the plugin's host table), for those that did.
    var sourceReports: [(source: String, warnings: UInt64, weirds: UInt64, notKept: UInt64)] = []

    var text: String {
        var lines = ["sources: " + sources.joined(separator: ", ")]
        lines.append("packets: \(tally.packets)")
        lines.append("bytes: \(tally.bytes)")
        if tally.capturedBytes != tally.bytes { lines.append("captured bytes: \(tally.capturedBytes)") }
        if tally.packets > 0 {
            lines.append("first packet: " + formatTimestamp(tally.firstTimestamp))
            lines.append("last packet: " + formatTimestamp(tally.lastTimestamp))
            lines.append("time span: " + formatDuration(tally.lastTimestamp - tally.firstTimestamp))
        }
        if live {
            func total(_ field: KeyPath<CaptureStatistics, UInt64?>) -> String {
                let values = statistics.compactMap { $0[keyPath: field] }
                return values.count == statistics.count ? String(values.reduce(0, +)) : "n/a"
            }
            lines.append("received by capture: \(total(\.received))")
            let drops = [(total(\.dropped), "by kernel"), (total(\.interfaceDropped), "by interface")]
                .filter { $0.0 != "n/a" }.map { "\($0.0) \($0.1)" }
            lines.append("dropped: " + (drops.isEmpty ? "n/a (the source does not count drops)" : drops.joined(separator: ", ")))
        } else {
            lines.append("dropped: n/a (trace input)")
        }
        if let written {
            lines.append("written: \(written.packets) packets to \(written.path)"
                + (written.leftOut > 0 ? " (\(written.leftOut) of other link types left out)" : ""))
        }
        if let connections {
            lines.append("connections: \(connections.logged) logged to \(connections.path)")
            if !connections.weirds.isEmpty {
                lines.append("weird: " + connections.weirds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            if let weirdLog, weirdLog.rows + weirdLog.heldBack > 0 {
                lines.append("weird.log: \(weirdLog.rows) rows, \(weirdLog.heldBack) held back (repeats, sampling, Zeek's actions)"
                    + (weirdLog.noRoom > 0 ? ", \(weirdLog.noRoom) of them for want of room" : ""))
            }
            if !tables.isEmpty {
                // "connections 12/2000000 peak 40, 0 evicted; fragments 0/65536 peak 3, 0 evicted, 2 expired; ..."
                lines.append("tables: " + tables.map { table in
                    "\(table.name) \(table.entries)/\(table.bound) peak \(table.peak), \(table.evicted) evicted"
                        + (table.expired.map { ", \($0) expired" } ?? "")
                }.joined(separator: "; "))
            }
        }
        if logWaits > 0 {
            lines.append("log writer: behind \(logWaits) times; the packet thread waited for it (no record lost)")
        }
        if !sourceReports.isEmpty {
            lines.append("reported by sources: " + sourceReports.map { report in
                var parts = ["\(report.warnings) warnings", "\(report.weirds) weirds"]
                if report.warnings > UInt64(SourceReports.warningsShown) {
                    parts[0] += " (\(report.warnings - UInt64(SourceReports.warningsShown)) not shown)"
                }
                if report.notKept > 0 { parts[1] += " (\(report.notKept) not kept for the analysis)" }
                return report.source + " " + parts.joined(separator: ", ")
            }.joined(separator: "; "))
        }
        if let (shard, others) = shard {
            lines.append("shard: \(shard.index)/\(shard.count), \(others) IP packets left to the other parts")
        }
        if let d = delivery {
            lines.append("delivery: \(d.records) records in \(d.made) batches; \(d.acknowledged) batches acknowledged "
                + "(\(d.duplicates) as already written), \(d.resent) resent, \(d.spooled) spooled, \(d.dropped) dropped"
                + (d.droppedRecords > 0 ? " (\(d.droppedRecords) records lost)" : ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// "2023-11-14T22:13:20.000010000Z"
func formatTimestamp(_ nanoseconds: UInt64) -> String {
    var seconds = time_t(nanoseconds / 1_000_000_000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    let fraction = String(nanoseconds % 1_000_000_000)
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
        + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
        + String(repeating: "0", count: 9 - fraction.count) + fraction + "Z"
}

/// "12.000670000 s"
func formatDuration(_ nanoseconds: UInt64) -> String {
    let fraction = String(nanoseconds % 1_000_000_000)
    return "\(nanoseconds / 1_000_000_000)." + String(repeating: "0", count: 9 - fraction.count) + fraction + " s"
}

