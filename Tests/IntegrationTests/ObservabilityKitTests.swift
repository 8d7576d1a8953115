import Foundation
import Testing

/// The Grafana dashboard and Prometheus alert rules in conf/ against the real binary's /metrics: promtool checks the
/// rules and runs their unit tests, and every metric the dashboard or the rules read is one Vantage exports.
/// /metrics itself: no series for routes never used, and two routes on one path told apart.
@Suite(.serialized) struct ObservabilityKitTests {
    static let conf = VantageProcess.packageRoot.appendingPathComponent("conf")

    @Test func promtoolAcceptsTheRulesAndTheirTests() throws {
        let rules = Self.conf.appendingPathComponent("prometheus/vantage-alerts.yml").path
        let check = try run(["promtool", "check", "rules", rules])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let tests = try run(["promtool", "test", "rules", Self.conf.appendingPathComponent("prometheus/vantage-alerts.test.yml").path])
        #expect(tests.status == 0, "\(tests.stdout)\(tests.stderr)")
    }

    @Test func everyMetricTheKitReadsIsExported() throws {
        let node = try BackendProcess.node("n1")
        defer { node.kill() }
        let closed = try freePort()
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            tls: { certificates: [{ cert: "{{DIR}}/site.pem", key: "{{DIR}}/site.key" }] }
            tracking:
              spool: { dir: spool }
              clickhouse: { endpoints: ["http://127.0.0.1:\(closed)"], flush_interval: 200ms }
            sites:
              - routes:
                  - { path: /, links: { fallthrough: true } }
                  - { path: /, respond: ok }
                  - { path: /api/, proxy: { upstreams: ["\(node.address)"] } }
                  - { path: /never/, respond: "never asked" }
            """, expect: ["http", "https", "admin"]
        ) { directory in
            _ = try makeCertificate(in: directory, name: "site", names: ["localhost", "127.0.0.1"])
        }
        _ = try curl([vantage.url("/")])
        _ = try curl(["-k", vantage.url("/api/echo", kind: "https")])
        let metrics = try run(["curl", "-s", vantage.url("/metrics", kind: "admin")]).stdout
        #expect(vantage.stop() == 0)

        let exported = Set(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        })
        let dashboard = try String(contentsOf: Self.conf.appendingPathComponent("grafana/vantage-dashboard.json"), encoding: .utf8)
        let parsed = try JSONSerialization.jsonObject(with: Data(dashboard.utf8)) as? [String: Any]
        #expect((parsed?["panels"] as? [[String: Any]])?.count ?? 0 >= 10)
        let rules = try String(contentsOf: Self.conf.appendingPathComponent("prometheus/vantage-alerts.yml"), encoding: .utf8)
        var read = Set((dashboard + rules).matches(of: /vantage_[a-z_]+/).map { String($0.output) })
        read.remove("vantage_acme_certificate_expiry_timestamp_seconds")  // exported with tls.acme only
        for name in read.sorted() {
            let series = [name, name + "_bucket", name + "_sum", name + "_count"]
            #expect(series.contains(where: exported.contains), "\(name) is read by the kit but not exported")
        }

        // Only routes that answered have series; the links route and the site's route on "/" are apart.
        #expect(!metrics.contains("route=\"/never/\""), "a route never used has no series")
        #expect(metrics.contains("vantage_requests_total{site=\"default\",route=\"/ (respond)\",code=\"2xx\"} 1"), "\(metrics.prefix(3000))")
        #expect(metrics.contains("vantage_certificate_expiry_timestamp_seconds{name=\"localhost\",source=\"file\"}"))
    }
}
