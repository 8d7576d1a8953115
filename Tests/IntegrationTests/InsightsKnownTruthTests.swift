import Foundation
import Testing

/// One scripted traffic set whose every number is known, sent to the real binary in each place reports read from:
/// the spool (embedded default), ClickHouse 18.16 (Debian) and a current ClickHouse (chdb). The stats API, the
/// dashboard and `vantage stats` must say exactly the truth in all three.
///
/// The traffic (all today): Firefox (cookies) reads `/`, `/about.html`, `/pricing.html` from Google; Safari lands on
/// `/` from a newsletter (utm) and leaves; Android reads `/pricing.html` from t.co and leaves; curl reads `/` (a
/// machine); an app sends two `signup` events through the tracking API as one visitor in two sessions of its own.
@Suite(.serialized)
struct InsightsKnownTruthTests {
    static let token = "truth-token"

    static func config(clickHouse: String?) -> String {
        var config = """
            listen: { http: "127.0.0.1:0" }
            sites:
              - hosts: [127.0.0.1, localhost]
                routes:
                  - { path: /, static: { root: "{{DIR}}/www" } }
            access_log: off
            admin: { listen: "127.0.0.1:0", token_env: TRUTH_TOKEN }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
              visitors: { cookies: true }
              api: { redirect_hosts: [example.org] }
            """
        if let clickHouse {
            config += "\n  clickhouse: { endpoints: [\"\(clickHouse)\"], database: truth, flush_interval: 100ms, retry: { min: 50ms, max: 1s } }"
        }
        return config
    }

    func verify(clickHouse: String?) throws {
        let vantage = try VantageProcess(
            config: Self.config(clickHouse: clickHouse), expect: ["http", "admin"], environment: ["TRUTH_TOKEN": Self.token]
        ) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            for page in ["index", "about", "pricing"] {
                try "<html><body>\(page)</body></html>".write(to: www.appendingPathComponent("\(page).html"), atomically: true, encoding: .utf8)
            }
        }
        let firefox = InsightsIntegrationTests.firefox
        let jar = vantage.directory.appendingPathComponent("cookies.txt").path
        for (path, referrer) in [("/", "https://www.google.com/"), ("/about.html", vantage.url("/")), ("/pricing.html", vantage.url("/about.html"))] {
            #expect(try curl(["-A", firefox, "-b", jar, "-c", jar, "-e", referrer, vantage.url(path)]).status == 200)
        }
        #expect(try curl(["-A", InsightsIntegrationTests.safari, vantage.url("/?utm_source=newsletter&utm_medium=email")]).status == 200)
        #expect(try curl(["-A", InsightsIntegrationTests.android, "-e", "https://t.co/x", vantage.url("/pricing.html")]).status == 200)
        #expect(try curl([vantage.url("/")]).status == 200)
        for (session, money) in [("app-session-1", #", "revenue": 10, "currency": "eur""#), ("app-session-2", "")] {
            let sent = try curl([
                "-A", firefox, "-H", "Content-Type: application/json", "-X", "POST", vantage.url("/tr/v1/tr/"),
                "-d", #"{"vid": "app-user", "sid": "\#(session)", "ename": "signup", "etyp": "conversion"\#(money)}"#,
            ])
            #expect(sent.status == 200, "\(sent.body)")
        }
        // A short link clicked by a person and unfurled by a chat app; a newsletter opened by a reader and fetched
        // by a mail proxy.
        let click = vantage.url("/tr/v1/rdr/?url=https%3A%2F%2Fexample.org%2Foffer&ename=cta")
        #expect(try curl(["-A", firefox, click]).status == 302)
        #expect(try curl(["-A", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", click]).status == 302)
        let open = vantage.url("/tr/v1/img/?ename=newsletter-dec&etyp=email&vid=reader-1")
        #expect(try curl(["-A", firefox, open]).status == 200)
        #expect(try curl(["-A", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", open]).status == 200)
        if clickHouse != nil { try vantage.waitUntilShipped(bearer: Self.token) }

        func stats(_ query: String) throws -> [String: Any] {
            let answer = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/stats?period=today&\(query)", kind: "admin")])
            #expect(answer.status == 200, "\(query): \(answer.body)")
            return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] ?? [:]
        }
        func totals(_ query: String) throws -> [String: Int] {
            ((try stats(query))["totals"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
        }
        /// Rows as key → the first metric's value.
        func rows(_ dimension: String, _ metric: String, _ more: String = "") throws -> [String: Int] {
            let answer = try stats("dimension=\(dimension)&metrics=\(metric)\(more)")
            let rows = answer["results"] as? [[String: Any]] ?? []
            return Dictionary(rows.map { ($0[dimension] as? String ?? "?", ($0[metric] as? NSNumber)?.intValue ?? -1) }) { first, _ in first }
        }
        // Waits for the last events in the embedded mode (the spool is read as it is written).
        try waitUntil(timeout: 20) { try totals("metrics=events")["events"] == 2 }

        let headline = try totals("metrics=visitors,visits,pageviews,events,bounce_rate,views_per_visit,visit_duration")
        #expect(headline["visitors"] == 4, "Firefox, Safari, Android, the app: \(headline)")
        #expect(headline["visits"] == 5, "\(headline)")
        #expect(headline["pageviews"] == 5)
        #expect(headline["events"] == 2)
        #expect(headline["bounce_rate"] == 67, "two of the three visits with a page view saw one page")
        #expect(headline["views_per_visit"] == 1)
        #expect(try rows("source", "visits") == ["google.com": 1, "t.co": 1, "Direct / None": 3])
        #expect(try rows("source", "bounce_rate") == ["google.com": 0, "t.co": 100, "Direct / None": 100])
        #expect(try rows("page", "pageviews") == ["/": 2, "/about.html": 1, "/pricing.html": 2])
        #expect(try rows("page", "visitors") == ["/": 2, "/about.html": 1, "/pricing.html": 2])
        #expect(try rows("entry_page", "visits") == ["/": 2, "/pricing.html": 1, "(not set)": 2])
        #expect(try rows("exit_page", "visits") == ["/pricing.html": 2, "/": 1, "(not set)": 2])
        #expect(try rows("event", "events") == ["signup": 2])
        #expect(try rows("event", "visitors") == ["signup": 1])
        #expect(try rows("utm_source", "visits") == ["newsletter": 1, "(none)": 4])
        #expect(try rows("device", "visitors") == ["desktop": 3, "mobile": 1])
        let browsers = try rows("browser", "visits")
        #expect(browsers == ["Firefox": 3, "Safari": 1, "Chrome": 1], "\(browsers)")
        #expect(try totals("filters=device%3D%3Dmobile")["visitors"] == 1)
        let about = try totals("filters=page%3D%3D/about.html&metrics=visitors,visits,pageviews")
        #expect(about == ["visitors": 1, "visits": 1, "pageviews": 1], "only Firefox's visit saw /about.html")
        let notAbout = try totals("filters=page%21%3D/about.html&metrics=visits,pageviews")
        #expect(notAbout == ["visits": 3, "pageviews": 4], "every visit with a page view saw another page too")
        let signups = try totals("filters=event%3D%3Dsignup&metrics=visitors,visits,events")
        #expect(signups == ["visitors": 1, "visits": 2, "events": 2])
        let fromGoogle = try rows("page", "pageviews", "&filters=source%3D%3Dgoogle.com")
        #expect(fromGoogle == ["/": 1, "/about.html": 1, "/pricing.html": 1])
        #expect(try totals("bots=include&metrics=pageviews")["pageviews"] == 6, "curl's page view, when machines are asked for")

        // Links, emails and money.
        let activityAnswer = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/activity?period=today", kind: "admin")])
        let activity = (try JSONSerialization.jsonObject(with: Data(activityAnswer.body.utf8)) as? [String: Any])?["tables"] as? [String: [[String: Any]]] ?? [:]
        func first(_ table: String) -> [String: String] {
            (activity[table]?.first ?? [:]).mapValues { "\($0)" }
        }
        #expect(first("links") == ["key": "cta", "clicks": "1", "visitors": "1", "machines": "1", "previews": "1"], "\(activityAnswer.body)")
        #expect(first("pixels") == ["key": "newsletter-dec", "opens": "1", "readers": "1", "machine_opens": "1"])
        #expect(first("link_referrers") == ["key": "Direct / None", "clicks": "1", "visitors": "1"])
        #expect(first("events") == ["key": "signup", "events": "2", "visitors": "1"])
        #expect(first("event_types") == ["key": "conversion", "events": "2", "visitors": "1"])
        #expect(first("revenue") == ["key": "EUR", "payments": "1", "payers": "1", "amount": "10"])
        let csv = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/api/v1/activity?period=today&format=csv&table=revenue", kind: "admin")])
        #expect(csv.body == "currency,payments,payers,amount\r\nEUR,1,1,10.00\r\n", "\(csv.body)")

        // The dashboard and the terminal say the same.
        let page = try curl(["-s", "-H", "Authorization: Bearer \(Self.token)", vantage.url("/?period=today", kind: "admin")])
        #expect(page.status == 200 && page.body.contains("<dt>Visitors</dt><dd>4 "), "\(page.body.prefix(2000))")
        #expect(page.body.contains("<th scope=\"row\">2xx</th>"), "the edge's panel")
        #expect(page.body.contains("<th scope=\"row\">newsletter-dec</th><td>1</td><td>1</td><td>1</td>"), "the email opens' panel")
        let terminal = try run([VantageProcess.binary, "stats", "--config", vantage.configPath, "--range", "today", "--by", "page"])
        #expect(terminal.status == 0, "\(terminal.stderr)")
        let pricing = terminal.stdout.split(separator: "\n").first { $0.hasPrefix("/pricing.html") } ?? ""
        #expect(pricing.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "2", "\(terminal.stdout)")
        #expect(vantage.stop() == 0)
    }

    @Test func theSpoolCountsTheTruth() throws {
        try verify(clickHouse: nil)
    }

    @Test(.enabled(if: ClickHouseServer.isInstalled)) func clickHouse1816CountsTheTruth() throws {
        let clickHouse = try ClickHouseServer()
        try verify(clickHouse: clickHouse.endpoint)
    }

    @Test func aCurrentClickHouseCountsTheTruth() throws {
        let chdb = try ChdbServer()
        try verify(clickHouse: chdb.endpoint)
    }
}
