#if canImport(Glibc)
import Glibc
#endif
import TrawlAnalysis
import TrawlCluster
import TrawlCore

extension Trawl {
    /// `--cluster-layout FILE`: runs this process as the node the layout names.
    static func runClusterNode(_ options: CaptureOptions) throws -> Int32 {
        let file = options.clusterLayout!
        let layout: ClusterLayout
        do { layout = try ClusterLayout.load(path: file) } catch { throw FatalError(error) }
        guard let name = options.nodeName ?? environmentValue("CLUSTER_NODE") else {
            throw FatalError("which node of \(file) is this? Give --node NAME or set CLUSTER_NODE")
        }
        guard let node = layout.node(named: name) else {
            throw FatalError("\(file): no node named '\(name)' (nodes: \(layout.nodes.map(\.name).joined(separator: ", ")))")
        }
        let security: ClusterSecurity
        do { security = try ClusterSecurity.forLayout(layout) { writeStandardError("warning: \($0)\n") } }
        catch { throw FatalError(error) }
        let reads = !options.interfaces.isEmpty || !options.traces.isEmpty
        switch node.role {
        case .worker:
            guard reads else { throw FatalError("node \(name) is a worker: give it -r TRACE or -i INTERFACE to read") }
            guard let registry = loadRegistry() else { return 1 }
            try pin(options.pinCPUs)
            let shipping: WorkerShipping
            do { shipping = try WorkerShipping(layout: layout, node: node, security: security) { writeStandardError("warning: \($0)\n") } }
            catch { throw FatalError("cannot use the spool \(layout.spoolDirectory)/\(name): \(error)") }
            try capture(options, registry: registry, logs: .cluster(shipping))
            let left = shipping.pending
            if left > 0 {
                writeStandardError("warning: \(left) log batches were not acknowledged by a logger in time; they are kept in \(layout.spoolDirectory)/\(name) and sent when this node runs again\n")
            }
            return 0
        case .logger, .manager where layout.logWriters.contains(node):
            guard !reads else { throw FatalError("node \(name) is a \(node.role.rawValue): it reads no packets (no -r or -i)") }
            try pin(options.pinCPUs)
            return try runLogWriter(node, layout: layout, options: options, security: security)
        case .manager, .proxy, .logger:
            throw FatalError("node \(name): the \(node.role.rawValue) role is not available yet in this version of trawl")
        }
    }

    /// A logger (or the manager of a layout without loggers): writes what the nodes send
    /// until SIGINT/SIGTERM, then closes its logs.
    static func runLogWriter(_ node: ClusterNode, layout: ClusterLayout, options: CaptureOptions, security: ClusterSecurity) throws -> Int32 {
        let logger: LoggerNode
        do {
            logger = try LoggerNode(node: node, layout: layout, logDirectory: options.logDirectory, json: options.jsonLogs,
                                    security: security) { writeStandardError("\(node.name): \($0)\n") }
        } catch {
            throw FatalError("node \(node.name): \(error)")
        }
        let stopper = StopSignals(interrupting: [], stop: processStop)
        defer { stopper.disarm() }
        writeStandardError("\(node.name): taking logs on \(node.endpoint()!), writing into \(options.logDirectory)\n")
        let loop = RunLoop(stopToken: processStop)
        logger.attach(to: loop)
        do { try loop.run() } catch {
            try? logger.finish(rotate: false)
            throw FatalError("node \(node.name): \(error)")
        }
        do { try logger.finish(rotate: layout.rotationInterval > 0) } catch { throw FatalError("node \(node.name): cannot close the logs: \(error)") }
        print("node: \(node.name) (\(node.role.rawValue))")
        print("logs: \(logger.rowsWritten) records in \(logger.batchesWritten) batches written, \(logger.duplicates) batches already written, \(logger.refusedMessages) messages refused")
        return 0
    }

    static func environmentValue(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
