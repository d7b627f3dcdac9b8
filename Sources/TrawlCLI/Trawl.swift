#if canImport(Glibc)
import Glibc
#endif
import CTrawlABI
import TrawlAnalysis
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
            print("trawl version \(trawlVersion) (plugin ABI \(TRAWL_ABI_VERSION))")
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
        case let .capture(options):
            guard let registry = loadRegistry() else { return 1 }
            return reportingFatalErrors {
                try pin(options.pinCPUs)
                try capture(options, registry: registry)
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
            return 1
        } catch {
            writeStandardError("fatal error: \(error)\n")
            return 1
        }
    }

    struct FatalError: Error {
        let message: String
        init(_ message: String) { self.message = message }
        init(_ error: CustomStringConvertible) { message = error.description }
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

    static func capture(_ options: CaptureOptions, registry: SourceRegistry) throws {
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
        if options.analysis {
            var configuration = AnalysisConfiguration()
            configuration.verifyChecksums = !options.ignoreChecksums
            configuration.bareMode = options.bareMode
            do {
                let writer: LogWriter = options.jsonLogs
                    ? try JSONLinesWriter(schema: .conn, directory: options.logDirectory)
                    : try ZeekASCIIWriter(schema: .conn, directory: options.logDirectory)
                let sink = ConnLogSink(writer: writer)
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
        let run = CaptureRun(sources: sources, consumer: consumer, loop: RunLoop(stopToken: processStop))
        let tally: CaptureTally
        do {
            tally = try run.run()
            try writer?.finish()
            if let analysis {
                analysis.tracker.finish()
                if let failure = analysis.sink.failure { throw failure }
                try analysis.sink.writer.close()
            }
        } catch let error as PacketSourceError {
            writer?.abandon()
            throw FatalError(error)
        } catch let error as Errno {
            writer?.abandon()
            throw FatalError("cannot write \(options.writePath ?? options.logDirectory + "/conn.log"): \(error)")
        }
        let statistics = sources.map { (try? $0.statistics()) ?? CaptureStatistics() }
        let summary = Summary(
            sources: names, tally: tally, statistics: statistics, live: live,
            written: writer.map { ($0.path, $0.packetsWritten, run.notWritten) },
            connections: analysis.map { ($0.sink.rows, options.logDirectory + "/conn.log", $0.tracker.weirds) },
            tables: analysis?.tracker.tables ?? []
        )
        // With -w -, standard output carries the trace: the summary goes to stderr.
        if options.writePath == "-" { writeStandardError(summary.text) } else { print(summary.text, terminator: "") }
    }
}
