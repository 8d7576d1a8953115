import Foundation
import Testing

/// Route rate limits through the real binary: the accepted rate under wrk, the 429 answer and its headers, keys,
/// allow lists, dry runs, and the events of limited requests.
@Suite(.serialized)
struct RateLimitIntegrationTests {
    @Test func theAcceptedRateMatchesTheConfiguredOne() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, respond: "ok", rate_limit: { rate: 200/s, burst: 20 } }
            access_log: off
            admin: { listen: "off" }
            tracking: { enabled: false }
            """)
        let result = try run(["wrk", "-t1", "-c16", "-d10s", vantage.url("/")])
        let total = Double(result.stdout.firstMatch(of: /(\d+) requests in ([\d.]+)s/)?.1 ?? "0") ?? 0
        let seconds = Double(result.stdout.firstMatch(of: /(\d+) requests in ([\d.]+)s/)?.2 ?? "0") ?? 0
        let refused = Double(result.stdout.firstMatch(of: /Non-2xx or 3xx responses: (\d+)/)?.1 ?? "0") ?? 0
        let accepted = total - refused
        let expected = 200 * seconds + 20
        #expect(abs(accepted - expected) / expected < 0.05, "accepted \(accepted) in \(seconds) s, expected \(expected)\n\(result.stdout)")
        #expect(refused > 0)
        #expect(vantage.stop() == 0)
    }

    @Test func refusalsAnswer429WithHeadersAndStillBecomeEvents() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /api/, respond: "api", rate_limit: { key: "header:X-Api-Key", rate: [2/m, 1000/d] } }
                  - { path: /trusted/, respond: "ok", rate_limit: { rate: 1/m, allow: [127.0.0.0/8] } }
                  - { path: /observed/, respond: "ok", rate_limit: { rate: 1/m, dry_run: true } }
            access_log: off
            admin: { listen: "127.0.0.1:0" }
            tracking: { spool: { dir: "{{DIR}}/spool" } }
            """, expect: ["http", "admin"])
        for _ in 0..<2 { #expect(try curl(["-H", "X-Api-Key: alpha", vantage.url("/api/x")]).status == 200) }
        let refused = try curl(["-H", "X-Api-Key: alpha", vantage.url("/api/x")])
        #expect(refused.status == 429 && refused.body.contains("too many requests"))
        #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 29, "one request per 30 s at 2/m: \(refused.headers)")
        #expect(refused.headers["ratelimit-policy"] == "\"r0\";q=2;w=60, \"r1\";q=1000;w=86400, \"day\";q=1000;w=86400"
            || refused.headers["ratelimit-policy"]?.contains("\"r0\";q=2;w=60") == true)
        #expect(refused.headers["ratelimit"]?.hasPrefix("\"r0\";r=0;t=") == true)
        #expect(try curl(["-H", "X-Api-Key: beta", vantage.url("/api/x")]).status == 200, "another key has its own budget")
        for _ in 0..<3 { #expect(try curl([vantage.url("/trusted/")]).status == 200, "allow-listed") }
        for _ in 0..<3 { #expect(try curl([vantage.url("/observed/")]).status == 200, "dry run only counts") }
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect(metric(metrics, "vantage_ratelimit_limited_total{route=\"default /api/\"}") == 1)
        #expect(metric(metrics, "vantage_ratelimit_dry_run_total{route=\"default /observed/\"}") == 2)
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        let events = try export.stdout.split(separator: "\n").map { try json(String($0)) }
        #expect(events.filter { $0["status"] as? Int == 429 && $0["etyp"] as? String == "rate_limited" }.count == 1)
        #expect(events.filter { $0["etyp"] as? String == "rate_limited_dry_run" }.count == 2)
    }
}
