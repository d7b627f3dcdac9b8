#if canImport(Glibc)
import Glibc
#endif
import CTrawlABI
import TrawlAnalysis
import TrawlCluster
import TrawlCore

/// The `trawl` command. Returns the process exit status.
public enum Trawl {
    public static func main(_ arguments: [String]) -> Int32 {
        let command: Command
        do {
            command = try parseArguments(arguments)
        } catch {
            writeStandardError("trawl: \(error)\n\(usageText)\n")
            return 1
        }
        switch command {
        case .help:
            print(usageText)
            return 0
        case .version:
            print("trawl version \(trawlVersion) (plugin ABI \(PluginABIVersion.host), \(SwiftToolchain.runtime))")
            return 0
        case let .listPlugins(verbose, name, json):
            guard let registry = loadRegistry() else { return 1 }
            var plugins = registry.plugins
            if let name {
                guard let plugin = registry.plugin(named: name) else {
                    writeStandardError("error: plugin \(name) is not available\n")
                    return 1
                }
                plugins = [plugin]
            }
            print(json ? PluginListing.json(plugins) : PluginListing.text(plugins, verbose: verbose), terminator: "")
            return 0
        case let .checkFanout(options):
            guard let registry = loadRegistry() else { return 1 }
            return reportingFatalErrors {
                try pin(options.pinCPUs)
                return try FanoutCheck.run(options, registry: registry)
            }
        case let .generateClusterKeys(directory):
            return reportingFatalErrors {
                do { _ = try ClusterSecurity.generateKeys(into: directory) }
                catch { throw FatalError("cannot write the cluster keys into \(directory): \(error)") }
                print("cluster keys written to \(directory): \(ClusterSecurity.fileNames.joined(separator: ", "))")
                return 0
            }
        case let .capture(options):
            if options.clusterLayout != nil {
                return reportingFatalErrors { try runClusterNode(options) }
            }
            guard let registry = loadRegistry() else { return 1 }
            return reportingFatalErrors {
                try pin(options.pinCPUs)
                try capture(options, registry: registry, logs: .files)
                return 0
            }
        }
    }

    /// Runs `body`; an error becomes "fatal error: ..." on stderr and exit status 1.
    static func reportingFatalErrors(_ body: () throws -> Int32) -> Int32 {
        do {
            return try body()
        } catch let error as FatalError {
            writeStandardError("fatal error: \(error.message)\n")
            return error.exitStatus
        } catch {
            writeStandardError("fatal error: \(error)\n")
            return 1
        }
    }

    struct FatalError: Error {
        let message: String
        var exitStatus: Int32 = 1
        init(_ message: String) { self.message = message }
        init(_ error: CustomStringConvertible) {
            if let failure = error as? PacketSourceError {
                // The source said what kind of failure it is: a hint, and a status to tell it by.
                message = failure.description + (SourceFailureAdvice.hint(failure).map { "\n" + $0 } ?? "")
                exitStatus = SourceFailureAdvice.exitStatus(failure.code)
            } else {
                message = error.description
            }
        }
    }

    /// `--pin-cpu`: restricts the process to the CPUs given.
    static func pin(_ cpus: [Int]?) throws {
        guard let cpus else { return }
        do { try CPUAffinity.pin(to: cpus) }
        catch { throw FatalError("cannot pin to CPUs \(cpus.map(String.init).joined(separator: ",")): \(error)") }
    }

    /// Loads plugins; warnings go to stderr, a prefix clash is fatal.
    static func loadRegistry() -> SourceRegistry? {
        let registry = SourceRegistry()
        do {
            for diagnostic in try PluginLoader.standard().load(into: registry) {
                writeStandardError("warning: \(diagnostic)\n")
            }
            return registry
        } catch {
            writeStandardError("fatal error: \(error)\n")
            return nil
        }
    }

    /// Where the analysis's logs go: files in the log directory, or a cluster's loggers.
    enum LogDestination {
        case files
        case cluster(WorkerShipping)
    }

    /// What a cluster worker adds to a capture run: given the loop, the analysis and the
    /// sources, it sets itself up and returns what to do when the run ends.
    typealias RunExtension = (RunLoop, ConnectionTracker?, PacketConsumer, [any PacketSource]) throws -> () -> Void

    static func capture(_ options: NodeConfiguration, registry: SourceRegistry, logs: LogDestination,
                        extend: RunExtension? = nil) throws {
        let settings: OptionSettings
        do { settings = try OptionSettings(assignments: options.optionAssignments, registry: registry) }
        catch { throw FatalError(error) }

        let live = !options.interfaces.isEmpty
        let names = live ? options.interfaces : options.traces
        if names.filter({ $0 == "-" }).count > 1 { throw FatalError("standard input can be read only once") }
        // Several live sources are read non-blocking and polled together.
        let timeout: UInt32 = live && names.count > 1 ? 0 : 100
        var sources: [any PacketSource] = []
        defer { sources.forEach { $0.close() } }
        for name in names {
            do {
                let source = try registry.open(name, mode: live ? .live : .offline, settings: settings, timeoutMilliseconds: timeout)
                sources.append(source)
                if let filter = options.filter { try source.setFilter(filter) }
            } catch {
                // Zeek's words first; then where a plugin for the prefix would have been found.
                if case let .unsupportedSourceType(prefix, _) = error, registry.component(prefix: prefix) == nil {
                    let known = registry.plugins.flatMap { $0.components.map(\.prefix) }.sorted()
                    throw FatalError(error.description + "\n  the prefixes the loaded plugins give: \(known.joined(separator: ", "))"
                        + "; a plugin for '\(prefix)' is searched in $\(PluginLoader.pathVariable), beside trawl, and in"
                        + " PREFIX/lib/trawl/plugins (trawl -N lists what was loaded)")
                }
                throw FatalError(error)
            }
        }

        var writer: TraceWriter?
        if let path = options.writePath {
            let linkTypes = Set(sources.map(\.info.linkType))
            guard linkTypes.count == 1 else {
                throw FatalError("cannot write \(path): the sources have different link types \(linkTypes.sorted())")
            }
            do { writer = try TraceWriter(path: path, linkType: linkTypes.first!, snaplen: sources.map(\.info.snaplen).max()!) }
            catch { throw FatalError("cannot write \(path): \(error)") }
        }

        // The connection log, opened last so that a failed start leaves no file behind.
        var analysis: (tracker: ConnectionTracker, sink: ConnLogSink)?
        if options.analyses {
            let configuration = options.resolvedAnalysis
            do {
                let manager: LogManager
                switch logs {
                case .files:
                    // --logdir is made when missing (mkdir -p), as a logger's directory is.
                    try makeDirectories(options.logDirectory)
                    manager = LogManager(.files(directory: options.logDirectory, json: options.jsonLogs))
                case let .cluster(shipping): manager = LogManager(.writers { shipping.writer(for: $0) })
                }
                let writer = try manager.register(.conn)
                // A write error stops the run at once and is said when it ends (below).
                let sink = ConnLogSink(writer: writer, openStream: { try manager.register($0) },
                                       onFailure: { _ in processStop.stop() })
                analysis = (ConnectionTracker(configuration: configuration, sink: sink), sink)
            } catch {
                writer?.abandon()
                throw FatalError("cannot write \(options.logDirectory)/conn.log: \(error)")
            }
        }

        let stopper = StopSignals(interrupting: sources, stop: processStop)
        defer { stopper.disarm() }
        if live {
            writeStandardError("listening on \(names.joined(separator: ", "))\n")
        }
        let showProgress = options.progress ?? (isatty(STDERR_FILENO) == 1)
        let consumer = PacketConsumer(writer: writer, progress: showProgress ? Progress() : nil, tracker: analysis?.tracker)
        let loop = RunLoop(stopToken: processStop)
        if case let .cluster(shipping) = logs, let tracker = analysis?.tracker {
            // Records of a quiet link leave within a flush interval, not when a batch is full.
            loop.every(shipping.layout.flushInterval) { tracker.flushLogs() }
        }
        let ending = try extend?(loop, analysis?.tracker, consumer, sources)
        let run = CaptureRun(sources: sources, consumer: consumer, loop: loop)
        let tally: CaptureTally
        do {
            tally = try run.run()
            try writer?.finish()
            if let analysis {
                analysis.tracker.finish()
                if let failure = analysis.sink.failure {
                    throw FatalError("cannot write \(options.logDirectory)/\(analysis.sink.failedPath ?? "conn").log: \(failure)")
                }
                try analysis.sink.close()
            }
            ending?()
            if case let .cluster(shipping) = logs { shipping.finish() }
        } catch let error as PacketSourceError {
            writer?.abandon()
            throw FatalError(error)
        } catch let error as Errno {
            writer?.abandon()
            throw FatalError("cannot write \(options.writePath ?? options.logDirectory + "/conn.log"): \(error)")
        }
        let statistics = sources.map { (try? $0.statistics()) ?? CaptureStatistics() }
        var logPath = options.logDirectory + "/conn.log"
        if case let .cluster(shipping) = logs { logPath = "the cluster's loggers (\(shipping.layout.logWriters.map(\.name).joined(separator: ", ")))" }
        var summary = Summary(
            sources: names, tally: tally, statistics: statistics, live: live,
            written: writer.map { ($0.path, $0.packetsWritten, run.notWritten) },
            connections: analysis.map { ($0.sink.rows, logPath, $0.tracker.weirds) },
            tables: analysis?.tracker.tables ?? []
        )
        if let shard = options.shard, let tracker = analysis?.tracker {
            summary.shard = (shard, tracker.packetsOfOtherShards)
        }
        if case let .cluster(shipping) = logs { summary.delivery = shipping.counters }
        summary.logWaits = analysis?.tracker.logStage.waits ?? 0
        summary.weirdLog = analysis.map { ($0.tracker.weirdsLogged, $0.tracker.weirdsNotLogged, $0.tracker.weirdsNotRemembered) }
        summary.sourceReports = sources.compactMap { source in
            guard let counts = source.reports?.counts, counts.warnings + counts.weirds > 0 else { return nil }
            return (source.name, counts.warnings, counts.weirds, counts.weirdsDropped)
        }
        // With -w -, standard output carries the trace: the summary goes to stderr.
        if options.writePath == "-" { writeStandardError(summary.text) } else { print(summary.text, terminator: "") }
    }
}
