import Foundation
import Testing

/// Visitors, sessions and channels as a site owner counts them, through the real binary and a real ClickHouse:
/// scripted browsers (one keeping cookies, one refusing them) across a restart, and a landing for every channel.
@Suite(.serialized)
struct VisitorsAndChannelsTests {
    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    static let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
    static let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

    static func config(clickHouse: String) -> String {
        """
        listen: { http: "127.0.0.1:0" }
        sites:
          - hosts: [127.0.0.1, localhost]
            routes:
              - { path: /, static: { root: "{{DIR}}/www" } }
        access_log: off
        admin: { listen: "127.0.0.1:0" }
        tracking:
          spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
          visitors: { cookies: true }
          clickhouse: { endpoints: ["\(clickHouse)"], flush_interval: 200ms, retry: { min: 50ms, max: 1s } }
        """
    }

    static func start(clickHouse: String, reusing earlier: URL? = nil) throws -> VantageProcess {
        try VantageProcess(config: config(clickHouse: clickHouse), expect: ["http", "admin"], reusing: earlier) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            for page in ["index", "about", "pricing"] {
                try "<html><head><link rel=stylesheet href=/site.css></head><body>\(page)</body></html>"
                    .write(to: www.appendingPathComponent("\(page).html"), atomically: true, encoding: .utf8)
            }
            try "body {}".write(to: www.appendingPathComponent("site.css"), atomically: true, encoding: .utf8)
        }
    }

    /// A browser: a user agent, and a cookie jar when it keeps cookies.
    struct Browser {
        var agent: String
        var jar: String?

        /// Loads `path` as a page does (its stylesheet after it), coming from `referrer`.
        func visit(_ vantage: VantageProcess, _ path: String, referrer: String? = nil) throws {
            var arguments = ["-A", agent]
            if let jar { arguments += ["-b", jar, "-c", jar] }
            if let referrer { arguments += ["-e", referrer] }
            #expect(try curl(arguments + [vantage.url(path)]).status == 200)
            #expect(try curl(arguments + ["-e", vantage.url(path), vantage.url("/site.css")]).status == 200)
        }
    }

    @Test func oneBrowserIsOneVisitorInOneSessionAcrossARestart() throws {
        let clickHouse = try ClickHouseServer()
        let first = try Self.start(clickHouse: clickHouse.endpoint)
        first.keepsDirectory = true
        defer { try? FileManager.default.removeItem(at: first.directory) }
        let jar = first.directory.appendingPathComponent("cookies.txt").path
        let keeping = Browser(agent: Self.firefox, jar: jar)
        let refusing = Browser(agent: Self.safari, jar: nil)

        try keeping.visit(first, "/", referrer: "https://www.google.com/")
        try keeping.visit(first, "/about.html", referrer: first.url("/"))
        try refusing.visit(first, "/?utm_source=newsletter&utm_medium=email&utm_campaign=dec")
        try refusing.visit(first, "/about.html", referrer: first.url("/"))
        #expect((try? String(contentsOfFile: jar, encoding: .utf8))?.contains("\tvid\t") == true, "the page set the cookie")
        #expect(first.stop() == 0)
        #expect(FileManager.default.fileExists(atPath: first.directory.appendingPathComponent("spool/visitor-keys").path))

        // A deploy: the same folder, a new process. Both browsers go on where they were.
        let second = try Self.start(clickHouse: clickHouse.endpoint, reusing: first.directory)
        #expect(second.log.contains("2 open session(s) from before the restart go on"), "\(second.log)")
        try keeping.visit(second, "/pricing.html", referrer: second.url("/about.html"))
        try refusing.visit(second, "/pricing.html", referrer: second.url("/about.html"))
        try second.waitUntilShipped()

        for (agent, channel) in [(Self.firefox, "Organic Search"), (Self.safari, "Email")] {
            let summary = try clickHouse.query("""
                SELECT count(), uniqExact(vid), uniqExact(sid), sum(session_start), countIf(kind = 'pageview'),
                    groupUniqArray(session_channel), anyIf(channel, session_start = 1)
                FROM vantage.events WHERE user_agent = '\(agent)' FORMAT TSV
                """).trimmingCharacters(in: .whitespacesAndNewlines)
            // Three pages and three stylesheets; one visitor, one session, opened once, first touch throughout.
            #expect(summary == "6\t1\t1\t1\t3\t['\(channel)']\t\(channel)", "\(agent): \(summary)")
        }
        #expect(second.stop() == 0)
    }

    @Test func everyLandingGetsItsChannel() throws {
        let clickHouse = try ClickHouseServer()
        let vantage = try Self.start(clickHouse: clickHouse.endpoint)
        let landings: [(String, String?, String)] = [
            ("/", nil, "Direct"),
            ("/", "https://www.bing.com/search?q=x", "Organic Search"),
            ("/?gclid=Cj0KCQiA", "https://www.google.com/", "Paid Search"),
            ("/?utm_source=facebook&utm_medium=paid_social", nil, "Paid Social"),
            ("/", "https://news.ycombinator.com/item?id=1", "Organic Social"),
            ("/?utm_source=newsletter&utm_medium=email", nil, "Email"),
            ("/", "https://blog.example.org/post", "Referral"),
            ("/?utm_source=adnet&utm_medium=display", nil, "Display"),
            ("/?utm_source=partner&utm_medium=affiliate", nil, "Affiliates"),
            ("/", "https://www.youtube.com/watch?v=1", "Video"),
            ("/?utm_source=chatgpt.com", nil, "AI Assistants"),
            ("/?utm_source=flyer&utm_medium=carrier-pigeon", nil, "Unassigned"),
        ]
        // Each landing by its own browser, so each is its own visitor and session.
        for (index, landing) in landings.enumerated() {
            var arguments = ["-A", Self.chrome + " Landing/\(index)"]
            if let referrer = landing.1 { arguments += ["-e", referrer] }
            #expect(try curl(arguments + [vantage.url(landing.0)]).status == 200)
        }
        try vantage.waitUntilShipped()
        let stored = try clickHouse.query(
            "SELECT user_agent, channel, session_channel FROM vantage.events WHERE kind = 'pageview' FORMAT TSV")
            .split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        for (index, landing) in landings.enumerated() {
            let row = stored.first { $0.first == Self.chrome + " Landing/\(index)" }
            // A landing is its session's first touch.
            #expect(row?.dropFirst() == [landing.2, landing.2], "\(landing): \(row ?? [])")
        }
        #expect(vantage.stop() == 0)
    }
}
