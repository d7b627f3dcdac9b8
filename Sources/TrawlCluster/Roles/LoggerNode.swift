#if canImport(Glibc)
import Glibc
#endif
import CZeroMQ
import TrawlAnalysis
import TrawlCore

/// A node that writes the cluster's logs: a logger, or the manager when the layout has no
/// logger. It takes batches on its port and writes one file per stream in its log directory.
public final class LoggerNode {
    public let node: ClusterNode
    let context: ZMQContext
    public let intake: LogIntake
    let logs: LogDirectory
    private let socket: ZMQSocket
    private let security: ClusterSecurity
    private let report: Reporter
    private let monitor: HandshakeMonitor
    /// A logger's heartbeats (the manager, when it writes the logs, has its own).
    private var membership: Membership?
    let layout: ClusterLayout
    public let archiver: Archiver
    private var nextRotation: UInt64 = 0

    public init(node: ClusterNode, layout: ClusterLayout, logDirectory: String, json: Bool, security: ClusterSecurity,
                context: ZMQContext = ZMQContext(), report: @escaping Reporter) throws {
        self.node = node
        self.context = context
        self.security = security
        self.report = report
        self.layout = layout
        archiver = Archiver(directory: node.archiveDirectory ?? logDirectory,
                            action: layout.postProcessor.map { .command($0) }
                                ?? .archive(suffix: layout.logWriters.count > 1 ? node.name : nil,
                                            compressor: layout.compressor, extension: layout.compressExtension),
                            report: report)
        logs = try LogDirectory(directory: logDirectory, json: json)
        for (stream, size) in logs.ledger.recovered {
            report("\(logDirectory)/\(stream).log ended inside a batch (the last run stopped while writing it): cut back to \(size) bytes; its node sends it again")
        }
        try security.startAuthentication(context)
        socket = try ZMQSocket(context, .router)
        try socket.set(ZMQ_MAXMSGSIZE, Int64(LogBatchLimits.maximumBytes + 4096))
        try socket.set(ZMQ_RCVHWM, Int32(10_000))
        try security.configureServer(socket)
        let endpoint = "tcp://" + (node.host.contains(":") ? "[\(node.host)]" : node.host) + ":\(node.port!)"
        try socket.bind(endpoint)
        intake = LogIntake(socket: socket, logs: logs, report: report)
        monitor = try HandshakeMonitor(watching: socket, context: context, report: report)
        if node.role == .logger {
            membership = try Membership(context: context, layout: layout, me: node, security: security, topics: [],
                                        report: report, onEvent: { _, _ in }, onChange: { _ in })
        }
    }

    /// Serves on `loop` until it stops; says once a second who was refused for a wrong key.
    public func attach(to loop: RunLoop) {
        loop.add(intake)
        loop.add(monitor)
        membership?.attach(to: loop)
        membership?.reportStatistics(on: loop, every: layout.statsInterval)
        if layout.rotationInterval > 0 {
            let schedule = RotationSchedule(interval: layout.rotationInterval)
            nextRotation = schedule.next(after: Clock.wallNanoseconds())
            loop.every(min(layout.rotationInterval / 10, 1_000_000_000)) { [unowned self] in
                archiver.reap()
                let now = Clock.wallNanoseconds()
                guard now >= nextRotation else { return }
                nextRotation = schedule.next(after: now)
                try rotate(at: now, terminating: false)
            }
        }
        let security = self.security, report = self.report
        loop.every(1_000_000_000) {
            for address in security.takeRefusals() { report("refused a connection from \(address): not the cluster's key") }
        }
    }

    /// Closes every log with #close, renames it after its opening time and post-processes it.
    func rotate(at now: UInt64, terminating: Bool) throws {
        for log in try logs.rotateAll(at: now) { archiver.process(log, terminating: terminating) }
    }

    /// Closes every log with its #close line, and rotates them when rotation is on (waiting
    /// a minute at most for their post-processing).
    public func finish(rotate: Bool) throws {
        membership?.leave()
        if rotate {
            try self.rotate(at: Clock.wallNanoseconds(), terminating: true)
            archiver.wait(timeout: 60_000_000_000)
        } else {
            try logs.closeAll()
        }
        security.stopAuthentication()
        monitor.close()
        socket.close()
    }

    public var batchesWritten: UInt64 { logs.batchesWritten }
    public var rowsWritten: UInt64 { logs.rowsWritten }
    public var duplicates: UInt64 { logs.duplicates }
    public var refusedMessages: UInt64 { intake.refusedMessages }
}
