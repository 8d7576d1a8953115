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

    static func start(token: Bool = true, mount: Bool = false) throws -> VantageProcess {
        let config = """
            listen: { http: "127.0.0.1:0" }
            sites:
              - hosts: [127.0.0.1, localhost]
                routes:\(mount ? "\n      - { path: /analytics, insights: {} }" : "")
                  - { path: /, static: { root: "{{DIR}}/www" } }
            access_log: off
            admin: { listen: "127.0.0.1:0"\(token ? ", token_env: INSIGHTS_TEST_TOKEN" : "") }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
              visitors: { cookies: true }
            """
        return try VantageProcess(config: config, expect: ["http", "admin"], environment: ["INSIGHTS_TEST_TOKEN": Self.token]) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            for page in ["index", "about", "pricing"] {
                try "<html><body>\(page)</body></html>".write(to: www.appendingPathComponent("\(page).html"), atomically: true, encoding: .utf8)
            }
        }
    }

    /// Three visitors: Firefox keeps cookies and reads three pages from Google; Safari lands from a newsletter and
    /// Android from Twitter, one page each. curl is a machine. Returns once the spool holds all five page views.
    func browse(_ vantage: VantageProcess) throws {
        let jar = vantage.directory.appendingPathComponent("cookies.txt").path
        for (path, referrer) in [("/", "https://www.google.com/"), ("/about.html", vantage.url("/")), ("/pricing.html", vantage.url("/about.html"))] {
            #expect(try curl(["-A", Self.firefox, "-b", jar, "-c", jar, "-e", referrer, vantage.url(path)]).status == 200)
        }
        #expect(try curl(["-A", Self.safari, vantage.url("/?utm_source=newsletter&utm_medium=email")]).status == 200)
        #expect(try curl(["-A", Self.android, "-e", "https://t.co/x", vantage.url("/pricing.html")]).status == 200)
        #expect(try curl([vantage.url("/")]).status == 200)
        // Reports are kept for 5 s: an answer read before the last event landed may be served again meanwhile.
        try waitUntil(timeout: 20) {
            let totals = try stats(vantage, "period=today")["totals"] as? [String: Any]
            return totals?["pageviews"] as? Int == 5
        }
    }

    func stats(_ vantage: VantageProcess, _ query: String) throws -> [String: Any] {
        let answer = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/stats?\(query)", kind: "admin")])
        #expect(answer.status == 200, "\(answer.body)")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] ?? [:]
    }

    @Test func theAPIAndTheTerminalCountWhatBrowsersDid() throws {
        let vantage = try Self.start()
        try browse(vantage)
        let totals = try stats(vantage, "period=today")["totals"] as? [String: Any] ?? [:]
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

    /// Chromium renders the page; the test reads its DOM, follows a row's link (a filter) and keeps a screenshot.
    /// The page carries no script and a policy that refuses any, so it is the page a browser with scripts off
    /// shows (Chromium's headless `--dump-dom` and `--screenshot` themselves stop working with scripts off).
    @Test func theDashboardWorksInABrowserWithoutScript() throws {
        let vantage = try Self.start(token: false)
        try browse(vantage)
        #expect(try curl(["-A", Self.firefox, vantage.url("/old-page.html")]).status == 404)
        func dom(_ url: String) throws -> String {
            let result = try run(["chromium", "--no-sandbox", "--headless", "--disable-gpu", "--dump-dom", url])
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }
        let page = try dom(vantage.url("/?period=today", kind: "admin"))
        #expect(!page.contains("<script"))
        #expect(page.contains("<dt>Visitors</dt><dd>3 "), "\(page.prefix(3000))")
        #expect(page.contains(">Pages</h2>") && page.contains("<caption>Top pages") && page.contains(">/pricing.html</a>"))
        #expect(page.contains(">Organic Search</a>"), "the Sources card opens on channels")
        #expect(page.contains(">The edge</h2>") && page.contains("<th scope=\"row\">/old-page.html</th><td>1</td>"), "the 404 is in the edge's panel")
        // A card's tab is a link: the referrers' tab of the Sources card.
        let tab = try #require(page.firstMatch(of: /href="(\/\?[^"]*sources=source[^"]*)">Sources</)?.1)
        let sources = try dom(vantage.url(String(tab).replacingOccurrences(of: "&amp;", with: "&"), kind: "admin"))
        #expect(sources.contains(">google.com</a>") && sources.contains("<caption>Sources"), "\(sources.prefix(3000))")
        // Drill down: the Sources row for google.com is a link that filters by it.
        let link = try #require(sources.firstMatch(of: /href="(\/\?[^"]*source%3D%3Dgoogle\.com[^"]*)"/)?.1)
        let filtered = try dom(vantage.url(String(link).replacingOccurrences(of: "&amp;", with: "&"), kind: "admin"))
        #expect(filtered.contains("<dt>Visitors</dt><dd>1 "), "only Firefox came from Google")
        #expect(filtered.contains("Remove this filter"))
        // A screenshot to look at (kept next to the test's folder).
        let shot = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-dashboard.png").path
        let screenshot = try run([
            "chromium", "--no-sandbox", "--headless", "--disable-gpu", "--window-size=1280,1600", "--screenshot=\(shot)",
            vantage.url("/?period=today", kind: "admin"),
        ])
        #expect(screenshot.status == 0 && FileManager.default.fileExists(atPath: shot), "\(screenshot.stderr)")
        print("dashboard screenshot: \(shot)")
        #expect(vantage.stop() == 0)
    }

    /// The sign-in form trades the token for a session cookie that reads reports and nothing else; wrong tokens
    /// are refused, then slowed down.
    @Test func signingInOpensTheReportsOnly() throws {
        let vantage = try Self.start()
        let admin = vantage.url("/", kind: "admin")
        let first = try curl([admin])
        #expect(first.status == 303 && first.headers["location"] == "/login", "\(first)")
        let form = try curl(["-s", vantage.url("/login", kind: "admin")])
        #expect(form.status == 200 && form.body.contains("name=\"token\""))
        #expect(form.headers["content-security-policy"]?.contains("default-src 'none'") == true)

        let jar = vantage.directory.appendingPathComponent("admin-cookies.txt").path
        let signedIn = try curl(["-c", jar, "--data-urlencode", "token=\(Self.token)", vantage.url("/login", kind: "admin")])
        #expect(signedIn.status == 303)
        let cookies = (try? String(contentsOfFile: jar, encoding: .utf8)) ?? ""
        #expect(cookies.contains("#HttpOnly_") && cookies.contains("vantage_admin"), "\(cookies)")
        #expect(try curl(["-s", "-b", jar, admin]).status == 200, "the dashboard with the session")
        #expect(try curl(["-s", "-b", jar, vantage.url("/api/v1/stats", kind: "admin")]).status == 200, "the API with the session")
        #expect(try curl(["-s", "-b", jar, "-X", "POST", vantage.url("/reload", kind: "admin")]).status == 401, "a session changes nothing")
        #expect(try curl(["-s", "-b", "vantage_admin=9999999999.forged", admin]).status == 303, "a forged cookie is no session")

        for _ in 0..<5 {
            #expect(try curl(["--data-urlencode", "token=wrong", vantage.url("/login", kind: "admin")]).status == 401)
        }
        let slowed = try curl(["--data-urlencode", "token=\(Self.token)", vantage.url("/login", kind: "admin")])
        #expect(slowed.status == 429 && slowed.headers["retry-after"] != nil, "\(slowed)")
        #expect(vantage.stop() == 0)
    }

    /// A share link opens one site's reports without the token, in a browser too, and nothing else; revoked, it
    /// opens nothing.
    @Test func aShareLinkOpensOneSitesReportsOnly() throws {
        let vantage = try Self.start()
        try browse(vantage)
        let bearer = ["-H", "Authorization: Bearer \(Self.token)"]
        #expect(try curl(["-s", "-X", "POST", vantage.url("/api/v1/shares?site=127.0.0.1", kind: "admin")]).status == 401)
        let made = try curl(["-s", "-X", "POST"] + bearer + [vantage.url("/api/v1/shares?site=127.0.0.1", kind: "admin")])
        #expect(made.status == 201, "\(made.body)")
        let share = try JSONSerialization.jsonObject(with: Data(made.body.utf8)) as? [String: Any] ?? [:]
        let path = try #require(share["path"] as? String)
        let id = try #require(share["id"] as? String)
        #expect(try curl(["-s", "-X", "POST"] + bearer + [vantage.url("/api/v1/shares?site=nowhere", kind: "admin")]).status == 400)

        let page = try curl(["-s", vantage.url(path + "?period=today&site=elsewhere", kind: "admin")])
        #expect(page.status == 200 && page.body.contains("<h1>127.0.0.1</h1>") && page.body.contains("<dt>Visitors</dt><dd>3 "), "\(page.body.prefix(1500))")
        #expect(!page.body.contains("Sign out") && page.body.contains("href=\"\(path)assets/insights.css\""))
        #expect(try curl(["-s", vantage.url(path + "assets/insights.css", kind: "admin")]).status == 200)
        let stats = try curl(["-s", vantage.url(path + "api/v1/stats?period=today&site=elsewhere", kind: "admin")])
        #expect(stats.status == 200 && stats.body.contains("\"site\":\"127.0.0.1\""), "\(stats.body)")
        #expect(try curl(["-s", "-X", "POST", vantage.url(path, kind: "admin")]).status == 405, "a share link only reads")
        #expect(try curl(["-s", vantage.url("/reload", kind: "admin")]).status == 401, "and opens nothing else")
        let listed = try curl(["-s"] + bearer + [vantage.url("/api/v1/shares", kind: "admin")])
        #expect(listed.body.contains("\"id\":\"\(id)\"") && !listed.body.contains(path), "the secret is shown once")

        // In a browser.
        let dom = try run(["chromium", "--no-sandbox", "--headless", "--disable-gpu", "--dump-dom", vantage.url(path + "?period=today", kind: "admin")])
        #expect(dom.stdout.contains("<dt>Visitors</dt><dd>3 "), "\(dom.stderr)")

        #expect(try curl(["-s", "-X", "DELETE"] + bearer + [vantage.url("/api/v1/shares/\(id)", kind: "admin")]).status == 204)
        #expect(try curl(["-s", vantage.url(path, kind: "admin")]).status == 404, "revoked")
        for _ in 0..<4 { _ = try curl(["-s", vantage.url("/share/AAAAAAAAAAAAAAAAAAAAAA/", kind: "admin")]) }
        #expect(try curl(["-s", vantage.url("/share/AAAAAAAAAAAAAAAAAAAAAA/", kind: "admin")]).status == 429, "guessing is slowed")
        #expect(vantage.stop() == 0)
    }

    /// The live view: the page says who is on the site now, and its event stream brings a new page view within
    /// two seconds.
    @Test func theLiveViewFollowsTheSiteWithinTwoSeconds() throws {
        let vantage = try Self.start(token: false)
        try browse(vantage)
        let page = try curl(["-s", vantage.url("/live?site=127.0.0.1", kind: "admin")])
        #expect(page.status == 200 && page.body.contains("<dd id=\"live-visitors\" aria-live=\"polite\">3</dd>"), "\(page.body.prefix(2000))")
        #expect(page.body.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"), "reloads itself without script")
        #expect(page.headers["content-security-policy"]?.contains("script-src 'self'") == true)
        #expect(page.body.contains("<td>/pricing.html</td>"))
        // The events' table is laid out as a list (narrow time column, text left-aligned), not as a report.
        #expect(page.body.contains("<table class=\"events\">"))
        #expect(try curl(["-s", vantage.url("/assets/insights.css", kind: "admin")]).body.contains("table.events td:nth-child(3)"))
        #expect(try curl(["-s", vantage.url("/assets/live.js", kind: "admin")]).body.contains("EventSource"))

        let stream = Process()
        let output = Pipe()
        stream.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        stream.arguments = ["-sN", "--max-time", "3", vantage.url("/api/v1/live?site=127.0.0.1", kind: "admin")]
        stream.standardOutput = output
        try stream.run()
        defer { stopPeer(stream) }
        Thread.sleep(forTimeInterval: 0.8)
        #expect(try curl(["-A", Self.safari, vantage.url("/about.html")]).status == 200)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("event: live") && text.contains("\"visitors\":3"), "\(text)")
        #expect(text.contains("\"what\":\"/about.html\""), "the new page view, at most 2.2 s after it: \(text)")

        let shot = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-live.png").path
        let screenshot = try run([
            "chromium", "--no-sandbox", "--headless", "--disable-gpu", "--window-size=1280,900", "--screenshot=\(shot)",
            vantage.url("/live?site=127.0.0.1", kind: "admin"),
        ])
        #expect(screenshot.status == 0, "\(screenshot.stderr)")
        print("live view screenshot: \(shot)")
        #expect(vantage.stop() == 0)
    }

    /// A site mounts the reports (`insights: {}`): reachable over the site's own listener, behind the sign-in form,
    /// with share links, the admin API not; the team's visits to it are not the site's traffic.
    @Test func aSiteMountsTheReportsBehindSignIn() throws {
        let vantage = try Self.start(mount: true)
        try browse(vantage)
        let mount = try curl([vantage.url("/analytics")])
        #expect(mount.status == 308 && mount.headers["location"] == "/analytics/", "\(mount)")
        let first = try curl([vantage.url("/analytics/")])
        #expect(first.status == 303 && first.headers["location"] == "/analytics/login", "\(first)")
        let form = try curl(["-s", vantage.url("/analytics/login")])
        #expect(form.body.contains("action=\"/analytics/login\"") && form.body.contains("href=\"/analytics/assets/insights.css\""))

        let jar = vantage.directory.appendingPathComponent("site-cookies.txt").path
        #expect(try curl(["--data-urlencode", "token=wrong", vantage.url("/analytics/login")]).status == 401)
        let signedIn = try curl(["-c", jar, "--data-urlencode", "token=\(Self.token)", vantage.url("/analytics/login")])
        #expect(signedIn.status == 303 && signedIn.headers["location"] == "/analytics/")
        #expect(signedIn.headers["set-cookie"]?.contains("Path=/analytics/") == true, "\(signedIn.headers)")
        let page = try curl(["-s", "-b", jar, vantage.url("/analytics/?period=today")])
        #expect(page.status == 200 && page.body.contains("<dt>Visitors</dt><dd>3 "), "\(page.body.prefix(1500))")
        #expect(page.body.contains("href=\"/analytics/assets/insights.css\"") && page.body.contains("href=\"/analytics/live?site=127.0.0.1\""))
        #expect(try curl(["-s", vantage.url("/analytics/assets/insights.css")]).status == 200)
        let live = try curl(["-s", "-b", jar, vantage.url("/analytics/live?site=127.0.0.1")])
        #expect(live.status == 200 && live.body.contains("id=\"live-visitors\""))
        let api = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/analytics/api/v1/stats?period=today")])
        #expect(api.status == 200 && api.body.contains("\"pageviews\":5"), "the dashboard's own pages are not the site's traffic: \(api.body)")
        #expect(try curl(["-s", "-b", jar, vantage.url("/analytics/reload")]).status == 404, "the admin API stays on the admin listener")

        let made = try curl(["-s", "-X", "POST", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/shares", kind: "admin")])
        let path = try #require((try JSONSerialization.jsonObject(with: Data(made.body.utf8)) as? [String: Any])?["path"] as? String)
        let shared = try curl(["-s", vantage.url("/analytics" + path + "?period=today")])
        #expect(shared.status == 200 && shared.body.contains("<dt>Visitors</dt><dd>3 ") && shared.body.contains("href=\"/analytics\(path)assets/insights.css\""))
        #expect(vantage.stop() == 0)

        // Without a token the reports would be public: the configuration is refused.
        let open = vantage.directory.appendingPathComponent("open.yaml")
        try """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /analytics, insights: {} }
            """.write(to: open, atomically: true, encoding: .utf8)
        let refused = try run([VantageProcess.binary, "validate", "--config", open.path])
        #expect(refused.status == 2 && refused.stderr.contains("set admin.token_env"), "\(refused.stderr)")
    }
}
