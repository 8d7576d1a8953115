import Foundation
import Testing

/// `/health` telling the truth through the real binary: a dead upstream pool, a refused reload and a certificate
/// about to expire make it `degraded` (200, with reasons); a site's `health` route answers load balancers, 503
/// when nothing can be served.
@Suite(.serialized) struct HealthTests {
    func health(_ vantage: VantageProcess) throws -> (status: Int, body: [String: Any]) {
        let answer = try curl([vantage.url("/health", kind: "admin")])
        return (answer.status, try json(answer.body))
    }

    @Test func degradedWithReasonsWhileSomethingServes() throws {
        let closed = try freePort()
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            tls: { certificates: [{ cert: "{{DIR}}/site.pem", key: "{{DIR}}/site.key" }] }
            sites:
              - routes:
                  - { path: /healthz, health: true }
                  - { path: /api/, proxy: { upstreams: ["127.0.0.1:\(closed)"], health_check: { path: /, interval: 200ms, fails: 1 } } }
                  - { path: /, respond: ok }
            """, expect: ["http", "https", "admin"]
        ) { directory in
            _ = try makeCertificate(in: directory, name: "site", names: ["localhost", "127.0.0.1"])
        }
        var report = try health(vantage)
        try waitUntil(timeout: 10) {
            report = try health(vantage)
            return (report.body["reasons"] as? [String] ?? []).contains { $0.hasPrefix("no healthy upstream for /api/") }
        }
        #expect(report.status == 200 && report.body["status"] as? String == "degraded", "\(report.body)")
        let reasons = report.body["reasons"] as? [String] ?? []
        #expect(reasons.contains("no healthy upstream for /api/ (127.0.0.1:\(closed)) (1 down)"), "\(reasons)")
        #expect(reasons.contains { $0.hasPrefix("the certificate for localhost expires in") }, "a 2-day test certificate: \(reasons)")
        let balancer = try curl([vantage.url("/healthz")])
        #expect(balancer.status == 200 && balancer.body == "{\"status\":\"degraded\"}\n", "status only, no reasons in public")

        // A reload the file refuses is a reason until one succeeds.
        let good = try String(contentsOfFile: vantage.configPath, encoding: .utf8)
        try (good + "\nnonsense: [\n").write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        #expect(try curl(["-X", "POST", vantage.url("/reload", kind: "admin")]).status != 200)
        #expect((try health(vantage).body["reasons"] as? [String] ?? []).contains { $0.hasPrefix("the last reload was refused") })
        try good.write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        #expect(try curl(["-X", "POST", vantage.url("/reload", kind: "admin")]).status == 200)
        #expect(!(try health(vantage).body["reasons"] as? [String] ?? []).contains { $0.hasPrefix("the last reload was refused") })
        #expect(vantage.stop() == 0)
    }

    @Test func unhealthyWhenEveryRouteWaitsForADeadUpstream() throws {
        let closed = try freePort()
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /healthz, health: true }
                  - { path: /, proxy: { upstreams: ["127.0.0.1:\(closed)"], health_check: { path: /, interval: 200ms, fails: 1 } } }
            """)
        try waitUntil(timeout: 10) { try curl([vantage.url("/healthz")]).status == 503 }
        let balancer = try curl([vantage.url("/healthz")])
        #expect(balancer.status == 503 && balancer.body == "{\"status\":\"unhealthy\"}\n")
        #expect(try health(vantage).status == 503)
        #expect(vantage.stop() == 0)
    }

    @Test func anUnreachableClickHouseIsAReason() throws {
        let closed = try freePort()
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            tracking:
              spool: { dir: spool }
              clickhouse: { endpoints: ["http://127.0.0.1:\(closed)"], flush_interval: 200ms }
            sites: [{ routes: [{ path: /, respond: ok }] }]
            """)
        _ = try curl([vantage.url("/")])
        var reasons: [String] = []
        try waitUntil(timeout: 20) {
            reasons = try health(vantage).body["reasons"] as? [String] ?? []
            return reasons.contains { $0.hasPrefix("ClickHouse: http://127.0.0.1:\(closed) unreachable: connection refused") }
        }
        #expect(reasons.contains { $0.hasPrefix("ClickHouse: http://127.0.0.1:\(closed) unreachable: connection refused") }, "\(reasons)")
        #expect(vantage.stop() == 0)
    }
}
