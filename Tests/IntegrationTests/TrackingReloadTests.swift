import Foundation
import Testing

/// `tracking` settings changed by `POST /reload` while Vantage runs, with a real ClickHouse: each applies to the
/// requests after it and no queued event is lost; a key that needs a restart refuses the reload, naming itself.
@Suite(.serialized)
struct TrackingReloadTests {
    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    /// The config with `tracking` lines after the spool's.
    static func config(_ tracking: String = "", spool: String = "spool", links: String = "") -> String {
        """
        listen: { http: "127.0.0.1:0" }
        sites:
          - hosts: [127.0.0.1, localhost]
            routes:
              - { path: /, static: { root: "{{DIR}}/www" } }
        access_log: off
        admin: { listen: "127.0.0.1:0" }
        tracking:
          spool: { dir: "{{DIR}}/\(spool)", sync_interval: 50ms }
        \(tracking.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        \(links)
        """
    }

    func reload(_ vantage: VantageProcess, to yaml: String) throws -> CurlAnswer {
        try yaml.replacingOccurrences(of: "{{DIR}}", with: vantage.directory.path)
            .write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        return try curl(["-X", "POST", vantage.url("/reload", kind: "admin")])
    }

    func page(_ vantage: VantageProcess, _ path: String) throws -> CurlAnswer {
        try curl(["-A", Self.firefox, vantage.url(path)])
    }

    @Test func trackingSettingsApplyOnReloadWithoutLosingQueuedEvents() throws {
        let clickHouse = try ClickHouseServer()
        let vantage = try VantageProcess(config: Self.config(), expect: ["http", "admin"]) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            try "<html><body>home</body></html>".write(to: www.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            _ = try TrackingAPITests.makeGeoIP(in: directory, city: "Leiden")
        }
        // No ClickHouse yet: the events wait in the spool.
        for index in 0..<20 { #expect(try page(vantage, "/?before=\(index)").status == 200) }
        #expect(try page(vantage, "/").headers["set-cookie"] == nil)

        let endpoint = "clickhouse: { endpoints: [\"\(clickHouse.endpoint)\"], flush_interval: 200ms, retry: { min: 50ms, max: 1s } }"
        let applied = try reload(vantage, to: Self.config("""
            \(endpoint)
            visitors: { cookies: true }
            privacy: { query: { drop: [coupon] } }
            geoip: "{{DIR}}/geo.mmdb"
            """))
        #expect(applied.status == 200, "\(applied.body)\n\(vantage.log)")
        let answer = try page(vantage, "/?coupon=SECRET-CODE&after=1")
        #expect(answer.headers["set-cookie"]?.hasPrefix("vid=") == true, "cookies: true applies to the next page")
        try waitUntil(timeout: 30) { (try? clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/'")) == 22 }
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE query LIKE 'before=%'") == 20, "queued events shipped")
        #expect(try clickHouse.query("SELECT query, city FROM vantage.events WHERE query LIKE '%after=1%' FORMAT TSV")
            .trimmingCharacters(in: .whitespacesAndNewlines) == "after=1\tLeiden", "privacy rule and GeoIP database apply")

        // Another database (as another endpoint would be): the next events go there, none lost on the way.
        let moved = try reload(vantage, to: Self.config("""
            clickhouse: { endpoints: ["\(clickHouse.endpoint)"], database: moved, flush_interval: 200ms, retry: { min: 50ms, max: 1s } }
            """))
        #expect(moved.status == 200, "\(moved.body)")
        for index in 0..<5 { #expect(try page(vantage, "/?moved=\(index)").status == 200) }
        try waitUntil(timeout: 30) { (try? clickHouse.count("SELECT count() FROM moved.events WHERE query LIKE 'moved=%'")) == 5 }
        #expect(try clickHouse.count("SELECT count() FROM vantage.events") + clickHouse.count("SELECT count() FROM moved.events") == 27)

        // The spool's folder is held open: changing it needs a restart, and the reload says so.
        let refused = try reload(vantage, to: Self.config(spool: "elsewhere"))
        #expect(refused.status == 422)
        #expect(refused.body.contains("tracking.spool.dir changed: it takes effect only at a restart"), "\(refused.body)")
        #expect(try page(vantage, "/?still=1").status == 200)
        try waitUntil(timeout: 30) { (try? clickHouse.count("SELECT count() FROM moved.events WHERE query = 'still=1'")) == 1 }
        #expect(vantage.stop() == 0)
    }

    @Test func linksSettingsNeedARestartAndSaySo() throws {
        let vantage = try VantageProcess(config: Self.config(links: "links: { dir: \"{{DIR}}/links\" }"), expect: ["http", "admin"]) { directory in
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("www"), withIntermediateDirectories: true)
        }
        let refused = try reload(vantage, to: Self.config(links: "links: { dir: \"{{DIR}}/links\", repeat_window: 10m }"))
        #expect(refused.status == 422 && refused.body.contains("links.repeat_window changed"), "\(refused.body)")
        #expect(vantage.stop() == 0)
    }
}
