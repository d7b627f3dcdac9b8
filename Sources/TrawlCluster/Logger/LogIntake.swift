import CZeroMQ
import TrawlAnalysis
import TrawlCore

/// A logger's (or the log-writing manager's) intake: a ROUTER socket on its port that
/// takes batches from every node, writes each through the log directory and answers with
/// an acknowledgement once it is in the file. Driven by the node's run loop.
public final class LogIntake: IOSource {
    private let socket: ZMQSocket
    let logs: LogDirectory
    /// Messages that were not batches, or not readable ones: counted, said, dropped.
    public private(set) var refusedMessages: UInt64 = 0
    private let report: Reporter
    private var reportsLeft = 100

    init(socket: ZMQSocket, logs: LogDirectory, report: @escaping Reporter) {
        self.socket = socket
        self.logs = logs
        self.report = report
    }

    public var descriptor: Int32? { socket.fileDescriptor }
    public var isExhausted: Bool { false }

    /// Takes up to 64 messages a turn, so that timers and other sockets get their turn.
    public func process() throws -> Bool {
        var any = false
        for _ in 0..<64 {
            guard socket.canReceive, let frames = try socket.receive() else { break }
            any = true
            try handle(frames)
        }
        return any
    }

    private func handle(_ frames: [[UInt8]]) throws {
        // From a DEALER: [peer, empty, batch].
        guard frames.count == 3, frames[1].isEmpty else {
            refuse("a message of \(frames.count) frames")
            return
        }
        let batch: LogBatchDecoder
        do { batch = try LogBatchDecoder(frames[2]) } catch {
            refuse("\(error)")
            return
        }
        let outcome: LogDirectory.Outcome
        do { outcome = try logs.write(batch) } catch {
            // The disk failed: nothing is acknowledged, so nothing is lost; the node resends.
            throw LoggerError.cannotWrite(logs.fileName(batch.header.path), error)
        }
        let status: LogAck.Status
        switch outcome {
        case .written: status = .written
        case .duplicate: status = .duplicate
        case let .refused(reason):
            status = .refused
            refuse("batch \(batch.header.sequence) of \(batch.header.node): \(reason)")
        }
        let ack = LogAck(status: status, session: batch.header.session, sequence: batch.header.sequence)
        _ = try? socket.send([frames[0], [], ack.bytes])
    }

    private func refuse(_ what: String) {
        refusedMessages += 1
        guard reportsLeft > 0 else { return }
        reportsLeft -= 1
        report("refused \(what)" + (reportsLeft == 0 ? " (no more of these are reported)" : ""))
    }
}

public enum LoggerError: Error, CustomStringConvertible {
    case cannotWrite(String, Errno)
    public var description: String {
        switch self {
        case let .cannotWrite(path, error): return "cannot write \(path): \(error)"
        }
    }
}
