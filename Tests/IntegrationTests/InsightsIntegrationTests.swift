import Foundation
import Testing

/// Reports from the real binary in the embedded default (no ClickHouse): scripted browsers whose visits, bounces
/// and sources are known, then the stats API and `vantage stats` must say exactly that.
@Suite(.serialized)
struct InsightsIntegrationTests {
    static let token = "insights-test-token"
    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    static let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
    static let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"

    static func start() throws -> VantageProcess {
        let config = """
            listen: { http: "127.0.0.1:0" }
            sites:
              - hosts: [127.0.0.1, localhost]
                routes:
                  - { path: /, static: { root: "{{DIR}}/www" } }
            access_log: off
            admin: { listen: "127.0.0.1:0", token_env: INSIGHTS_TEST_TOKEN }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
              visitors: { cookies: true }
            """
        return try VantageProcess(config: config, expect: ["http", "admin"], environment: ["INSIGHTS_TEST_TOKEN": token]) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            for page in ["index", "about", "pricing"] {
                try "<html><body>\(page)</body></html>".write(to: www.appendingPathComponent("\(page).html"), atomically: true, encoding: .utf8)
            }
        }
    }

    func stats(_ vantage: VantageProcess, _ query: String) throws -> [String: Any] {
        let answer = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/stats?\(query)", kind: "admin")])
        #expect(answer.status == 200, "\(answer.body)")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] ?? [:]
    }

    @Test func theAPIAndTheTerminalCountWhatBrowsersDid() throws {
        let vantage = try Self.start()
        let jar = vantage.directory.appendingPathComponent("cookies.txt").path
        // Firefox keeps cookies: three pages from Google, one visit. Safari from a newsletter and Android from
        // Twitter: one page each, two bounces. curl is a machine.
        for (path, referrer) in [("/", "https://www.google.com/"), ("/about.html", vantage.url("/")), ("/pricing.html", vantage.url("/about.html"))] {
            #expect(try curl(["-A", Self.firefox, "-b", jar, "-c", jar, "-e", referrer, vantage.url(path)]).status == 200)
        }
        #expect(try curl(["-A", Self.safari, vantage.url("/?utm_source=newsletter&utm_medium=email")]).status == 200)
        #expect(try curl(["-A", Self.android, "-e", "https://t.co/x", vantage.url("/pricing.html")]).status == 200)
        #expect(try curl([vantage.url("/")]).status == 200)

        var totals: [String: Any] = [:]
        try waitUntil(timeout: 10) {
            totals = try stats(vantage, "period=today")["totals"] as? [String: Any] ?? [:]
            return totals["pageviews"] as? Int == 5
        }
        #expect(totals["visitors"] as? Int == 3)
        #expect(totals["visits"] as? Int == 3)
        #expect(totals["bounce_rate"] as? Int == 67)
        #expect(totals["views_per_visit"] as? Double == 1.67)

        let sources = try stats(vantage, "period=today&dimension=source&metrics=visits,bounce_rate")
        let rows = sources["results"] as? [[String: Any]] ?? []
        let bySource = Dictionary(uniqueKeysWithValues: rows.map { ($0["source"] as? String ?? "", $0) })
        #expect(bySource["google.com"]?["bounce_rate"] as? Int == 0, "\(rows)")
        #expect(bySource["t.co"]?["bounce_rate"] as? Int == 100)
        #expect(bySource["Direct / None"]?["visits"] as? Int == 1)

        let mobile = try stats(vantage, "period=today&filters=device%3D%3Dmobile")["totals"] as? [String: Any]
        #expect(mobile?["visitors"] as? Int == 1)
        let bots = try stats(vantage, "period=today&bots=include")["totals"] as? [String: Any]
        #expect(bots?["pageviews"] as? Int == 6, "curl's page view, when machines are asked for")

        // Refusals: no token, a parameter that cannot be read.
        #expect(try curl(["-s", vantage.url("/api/v1/stats", kind: "admin")]).status == 401)
        let bad = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/stats?period=8d", kind: "admin")])
        #expect(bad.status == 400 && bad.body.contains("period: unknown 8d"), "\(bad.body)")

        // The terminal: the same numbers, from the spool, while Vantage runs.
        let pages = try run([VantageProcess.binary, "stats", "--config", vantage.configPath, "--range", "today", "--by", "path"])
        #expect(pages.status == 0, "\(pages.stderr)")
        let pricing = pages.stdout.split(separator: "\n").first { $0.hasPrefix("/pricing.html") } ?? ""
        #expect(pricing.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "2", "\(pages.stdout)")
        #expect(pages.stdout.contains("Total"))
        let refused = try run([VantageProcess.binary, "stats", "--config", vantage.configPath, "--by", "colour"])
        #expect(refused.status == 64 && refused.stderr.contains("--by: unknown colour"), "\(refused.stderr)")
        #expect(vantage.stop() == 0)
    }
}
