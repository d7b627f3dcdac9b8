import Foundation
import Testing
import TrawlAnalysis
import TrawlCluster

/// Local networks and timeouts, set as Zeek names them, on the command line and in a layout.
@Suite struct AnalysisSettingsTests {
    @Test func zeeksNamesSetTheLocalNetworksAndTimeouts() throws {
        var settings = AnalysisSettings()
        #expect(try settings.take("Site::local_nets={100.1.0.0/16, 2001:db8::/32}"))
        #expect(try settings.take("tcp_inactivity_timeout=10min"))
        #expect(try settings.take("udp_inactivity_timeout=30 secs"))
        #expect(try settings.take("icmp_inactivity_timeout=90"))
        #expect(try !settings.take("AF_Packet::fanout_id=3"))
        var configuration = AnalysisConfiguration()
        settings.apply(to: &configuration)
        #expect(configuration.tcpInactivityTimeout == 600_000_000_000)
        #expect(configuration.udpInactivityTimeout == 30_000_000_000)
        #expect(configuration.icmpInactivityTimeout == 90_000_000_000)
        let local = SubnetSet(configuration.localNetworks)
        // As Zeek: the given networks join the private address space.
        #expect(local.contains(IPAddress("100.1.2.3")!) && local.contains(IPAddress("2001:db8::1")!) && local.contains(IPAddress("10.1.1.1")!))
        #expect(!local.contains(IPAddress("100.2.0.1")!))
        #expect(try settings.take("Site::private_address_space_is_local=F"))
        settings.apply(to: &configuration)
        #expect(!SubnetSet(configuration.localNetworks).contains(IPAddress("10.1.1.1")!))
    }

    @Test(arguments: [
        ("Site::local_nets=10.0.0.0/33", "Site::local_nets: '10.0.0.0/33' is not a subnet (CIDR such as 10.0.0.0/8 or 2001:db8::/32)"),
        ("tcp_inactivity_timeout=soon", "tcp_inactivity_timeout: 'soon' is not an interval above 0 (300, 300sec, 5min, 1hr, 2days)"),
        ("udp_inactivity_timeout=0", "udp_inactivity_timeout: '0' is not an interval above 0 (300, 300sec, 5min, 1hr, 2days)"),
        ("Site::private_address_space_is_local=maybe", "Site::private_address_space_is_local: expected T or F, not 'maybe'"),
    ])
    func badValuesAreNamed(word: String, message: String) {
        var settings = AnalysisSettings()
        #expect(throws: AnalysisSettingError.self) { try settings.take(word) }
        do { _ = try settings.take(word) } catch { #expect(error.description == message) }
    }

    @Test func intervalsReadAsZeekWritesThem() {
        #expect(AnalysisSettings.interval("5min") == 300_000_000_000)
        #expect(AnalysisSettings.interval("1 hr") == 3_600_000_000_000)
        #expect(AnalysisSettings.interval("2days") == 172_800_000_000_000)
        #expect(AnalysisSettings.interval("250msec") == 250_000_000)
        #expect(AnalysisSettings.interval("1.5sec") == 1_500_000_000)
        #expect(AnalysisSettings.interval("3 fortnights") == nil)
    }

    /// On the command line: a host outside the private address space becomes local.
    @Test func theCommandLineSetsWhatConnLogCallsLocal() throws {
        let dir = try TemporaryDirectory()
        let trace = dir.file("t.pcap")
        try writeClusterTrace(at: trace, flows: 20)
        let plain = try runProcess(Paths.trawl, ["-r", trace, "--logdir", dir.path, "Site::private_address_space_is_local=F"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let rows = try String(contentsOfFile: dir.file("conn.log"), encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(rows.allSatisfy { $0.split(separator: "\t")[12] == "F" })
        let local = try runProcess(Paths.trawl, ["-r", trace, "--logdir", dir.path, "Site::local_nets=10.0.0.0/8",
                                                 "Site::private_address_space_is_local=F"])
        #expect(local.status == 0)
        let marked = try String(contentsOfFile: dir.file("conn.log"), encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(marked.contains { $0.split(separator: "\t")[2].hasPrefix("10.") && $0.split(separator: "\t")[12] == "T" })
        let bad = try runProcess(Paths.trawl, ["-r", trace, "tcp_inactivity_timeout=soon"])
        #expect(bad.status != 0 && bad.stderr.contains("tcp_inactivity_timeout: 'soon' is not an interval"))
    }

    @Test func aLayoutCarriesTheClustersSettings() throws {
        let layout = try ClusterLayout.parse("""
            {"nodes": {"m": {"role": "manager", "host": "h"}}, "local_networks": ["100.64.0.0/10"],
             "options": ["tcp_inactivity_timeout=10min", "AF_Packet::fanout_id=7"]}
            """, file: "c.json")
        #expect(layout.options == ["Site::local_nets=100.64.0.0/10", "tcp_inactivity_timeout=10min", "AF_Packet::fanout_id=7"])
        #expect(throws: LayoutError.self) {
            try ClusterLayout.parse("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}}, \"options\": [\"udp_inactivity_timeout=never\"]}", file: "c.json")
        }
        #expect(throws: LayoutError.self) {
            try ClusterLayout.parse("{\"nodes\": {\"m\": {\"role\": \"manager\", \"host\": \"h\"}}, \"local_networks\": [\"ten\"]}", file: "c.json")
        }
    }
}
