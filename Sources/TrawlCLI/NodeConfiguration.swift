import TrawlAnalysis
import TrawlCluster
import TrawlCore

/// Everything one `trawl` process runs with, in one place: what it reads, how it analyses,
/// where its logs go and which cluster node it is. Flags fill it (`parseArguments`); a
/// cluster layout — which trawlctl writes from node.cfg — fills in what the flags left
/// (`applying(layout:node:)`): the cluster's settings, then the node's, then the command
/// line's, which win.
public struct NodeConfiguration: Equatable {
    // What to read.
    public var interfaces: [String] = []
    public var traces: [String] = []
    public var filter: String?
    public var writePath: String?
    public var progress: Bool?
    /// `--pin-cpu LIST`: run on these CPUs only.
    public var pinCPUs: [Int]?
    /// `Namespace::name=value` words for the plugins, checked once they are loaded.
    public var optionAssignments: [String] = []

    // How to analyse.
    /// Connection analysis and conn.log; off with --no-analysis.
    public var analyses = true
    /// -C, -b and `Cluster::shard` set it directly; Zeek's named settings (`Site::local_nets`,
    /// `tcp_inactivity_timeout`, ...) are kept in `analysisSettings` and applied last.
    public var analysis = AnalysisConfiguration()
    public var analysisSettings = AnalysisSettings()

    // Where logs go.
    public var logDirectory = "."
    /// Whether --logdir was given (else a cluster node takes its layout's).
    public var logDirectoryGiven = false
    public var jsonLogs = false

    // Which node.
    /// `--cluster-layout FILE`: this process is a node of the cluster the file describes.
    public var clusterLayout: String?
    /// `--node NAME` (else $CLUSTER_NODE): which of the layout's nodes.
    public var nodeName: String?

    public init() {}

    /// The analysis as configured, Zeek's named settings applied.
    public var resolvedAnalysis: AnalysisConfiguration {
        var configuration = analysis
        analysisSettings.apply(to: &configuration)
        // Zeek's peer_description: a cluster node's name in its weird.log rows.
        if clusterLayout != nil, let nodeName { configuration.weirds.peer = nodeName }
        return configuration
    }

    /// `Cluster::shard`, when given.
    public var shard: Shard? { analysis.shard == .whole ? nil : analysis.shard }

    /// This configuration with a layout's settings for `node` under it: the cluster's
    /// `options`, then the node's; its sources, CPUs and log directory when the command line
    /// gave none. Plugin options keep that order too (later ones win).
    public func applying(layout: ClusterLayout, node: ClusterNode) throws(AnalysisSettingError) -> NodeConfiguration {
        var merged = self
        var settings = AnalysisSettings()
        var pluginOptions: [String] = []
        for word in layout.options + node.options where try !settings.take(word) { pluginOptions.append(word) }
        merged.optionAssignments = pluginOptions + optionAssignments
        merged.analysisSettings = settings.merged(with: analysisSettings)
        if interfaces.isEmpty && traces.isEmpty { merged.interfaces = node.interfaces }
        if pinCPUs == nil { merged.pinCPUs = node.pinCPUs }
        if !logDirectoryGiven, let directory = node.logDirectory { merged.logDirectory = directory }
        return merged
    }

    public static func == (a: NodeConfiguration, b: NodeConfiguration) -> Bool {
        a.interfaces == b.interfaces && a.traces == b.traces && a.filter == b.filter && a.writePath == b.writePath
            && a.progress == b.progress && a.pinCPUs == b.pinCPUs && a.optionAssignments == b.optionAssignments
            && a.analyses == b.analyses && a.analysis.verifyChecksums == b.analysis.verifyChecksums
            && a.analysis.bareMode == b.analysis.bareMode && a.analysis.shard == b.analysis.shard
            && a.analysisSettings == b.analysisSettings && a.logDirectory == b.logDirectory
            && a.logDirectoryGiven == b.logDirectoryGiven && a.jsonLogs == b.jsonLogs
            && a.clusterLayout == b.clusterLayout && a.nodeName == b.nodeName
    }
}
