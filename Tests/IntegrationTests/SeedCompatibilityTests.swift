import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The older systems' clients against the real binary with their sites' `compat:` profiles: every example of the
/// seed READMEs (and the collectors' public endpoints) as written, host and port aside, checking the answer the old
/// client expects and the event stored.
@Suite(.serialized)
struct SeedCompatibilityTests {
    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

    static func start(extra: String = "") throws -> VantageProcess {
        try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: off
            sites:
              - hosts: [localhost, 127.0.0.1]
                compat: [tracker, pushtech, alcolytics, traceglider]
                routes:
                  - { path: /, respond: "the site itself" }
              - hosts: [plain.example]
                compat: []
                routes:
                  - { path: /, respond: "no old endpoints here" }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
              visitors: { cookies: true }
              api:
                jurisdictions:
                  - { regulation: gdpr, compliance: consent, seq: 1, locs: [DE, FR], rules: { marketing: opt-in } }
            \(extra)
            """, expect: ["http", "admin"])
    }

    /// The events in the spool (the running gateway's, read as `vantage events export` does).
    func events(_ vantage: VantageProcess) throws -> [[String: Any]] {
        let export = try run([VantageProcess.binary, "events", "export", "--spool", vantage.directory.appendingPathComponent("spool").path])
        return try export.stdout.split(separator: "\n").map { try json(String($0)) }
    }

    /// Waits for an event matching `predicate` and returns it.
    func event(_ vantage: VantageProcess, where predicate: @escaping ([String: Any]) -> Bool) throws -> [String: Any] {
        var found: [String: Any]?
        try waitUntil(timeout: 10) {
            found = try events(vantage).first(where: predicate)
            return found != nil
        }
        return try #require(found)
    }

    func props(_ event: [String: Any]) -> [String: Any] { event["props"] as? [String: Any] ?? [:] }

    @Test func pushtechSeed003ExamplesBecomeNamedEvents() throws {
        let vantage = try Self.start()
        // README: `curl http://localhost:9090/t/a`, `/t/app_open?deviceid=abcdf&ts=123456&referrer=website`,
        // the kubectl test `/t/w?wor=king` and the docker-compose test `/event?d=1`.
        for path in ["/t/a", "/t/app_open?deviceid=abcdf&ts=123456&referrer=website", "/t/w?wor=king", "/event?d=1"] {
            let answer = try curl([vantage.url(path)])
            #expect(answer.status == 200, "\(path): \(answer.body)")
            #expect(answer.body == #"{"status":"ok"}"#)
            #expect(answer.headers["content-type"] == "application/json")
        }
        let open = try event(vantage) { $0["ename"] as? String == "app_open" }
        #expect(open["kind"] as? String == "track")
        #expect(open["vid"] as? String == "abcdf", "deviceid is the visitor")
        #expect(open["referrer"] as? String == "website")
        #expect(props(open)["ts"] as? String == "123456")
        #expect(try event(vantage) { $0["ename"] as? String == "a" }["status"] as? Int == 200)
        #expect(props(try event(vantage) { $0["ename"] as? String == "w" })["wor"] as? String == "king")
        #expect(props(try event(vantage) { $0["ename"] as? String == "event" })["d"] as? String == "1")
        // Pushtech took GET only; a site without the profile does not answer it.
        #expect(try curl(["-X", "POST", vantage.url("/t/a")]).status == 405)
        #expect(try curl(["-H", "Host: plain.example", vantage.url("/t/a")]).body == "no old endpoints here")
    }

    @Test func alcolyticsSeed004BeaconsPixelsAndTheUidCookie() throws {
        let vantage = try Self.start()
        // alcojs through sendBeacon: JSON as text/plain.
        let beacon = #"{"name":"page","projectId":1,"uid":"6517211786373791744","page":{"url":"https://localhost/pricing?utm_source=mail","referrer":"https://www.google.com/","title":"Pricing"},"session":{"type":"campaign","num":3},"user":{"id":"u-42","traits":{"plan":"pro"}},"data":{"button":"buy"}}"#
        let tracked = try curl(["-A", Self.firefox, "-H", "Content-Type: text/plain;charset=UTF-8", "--data-binary", beacon, vantage.url("/track")])
        #expect(tracked.status == 200)
        #expect(tracked.body == #"{"result":"queued"}"#)
        #expect(tracked.headers["set-cookie"]?.hasPrefix("uid=6517211786373791744;") == true, "the visitor's own uid, kept as Alcolytics did")
        let page = try event(vantage) { $0["ename"] as? String == "page" }
        #expect(page["vid"] as? String == "6517211786373791744")
        #expect(page["uid"] as? String == "u-42")
        #expect(page["path"] as? String == "/pricing" && page["host"] as? String == "localhost")
        #expect(page["referrer"] as? String == "https://www.google.com/")
        #expect(page["oid"] as? String == "1", "the project is the tenant")
        #expect(props(page)["button"] as? String == "buy", "data's members are fields")
        #expect((props(page)["session_info"] as? String)?.contains("campaign") == true, "\(page)")

        // The pixel: `GET /img?projectId=1&name=email_open&uid=...&campaign=spring`, and the older `GET /track`.
        let pixel = try curl([vantage.url("/img?projectId=1&name=email_open&uid=123456789012&campaign=spring")])
        #expect(pixel.status == 200 && pixel.headers["content-type"] == "image/gif" && pixel.headers["content-length"] == "43")
        let open = try event(vantage) { $0["ename"] as? String == "email_open" }
        #expect(open["kind"] as? String == "pixel_open")
        #expect(open["vid"] as? String == "123456789012")
        #expect(open["utm_campaign"] as? String == "spring")
        let older = try curl(["-D", "-", "-o", "/dev/null", vantage.url("/track?name=old_pixel")])
        #expect(older.status == 200)
        // Without a uid the visitor gets Alcolytics' numeric uid cookie, which the event carries.
        let issued = try curl([vantage.url("/img?name=fresh")])
        let cookie = try #require(issued.headers["set-cookie"], "\(issued.headers)")
        #expect(cookie.hasPrefix("uid=") && cookie.contains("HttpOnly") && cookie.contains("Max-Age=63072000"), "\(cookie)")
        let uid = String(cookie.dropFirst(4).prefix { $0 != ";" })
        #expect(uid.count == 19 && uid.allSatisfy(\.isNumber), "\(uid)")
        #expect(try event(vantage) { $0["ename"] as? String == "fresh" }["vid"] as? String == uid)
        // The cookie identifies later calls.
        _ = try curl(["-H", "Cookie: uid=\(uid)", "--data-binary", #"{"name":"later"}"#, vantage.url("/track")])
        #expect(try event(vantage) { $0["ename"] as? String == "later" }["vid"] as? String == uid)
        // Exact paths: the site's own /tracking.html and /images/ stay the site's.
        #expect(try curl([vantage.url("/tracking.html")]).body == "the site itself")
        #expect(try curl([vantage.url("/img/logo.png")]).body == "the site itself")
        // An empty beacon is answered (the seed did not answer at all).
        #expect(try curl(["-X", "POST", vantage.url("/track")]).status == 400)
    }

    @Test func traceGliderSeed002KeepsTheFirstEventAndBulkyClicks() throws {
        let vantage = try Self.start()
        // `GET /api/tracking-cookie`: the id as JSON and as a cookie.
        let issued = try curl([vantage.url("/api/tracking-cookie")])
        #expect(issued.status == 200)
        let trackingID = try #require(try json(issued.body)["tracking_id"] as? String)
        #expect(UUID(uuidString: trackingID) != nil)
        let cookie = try #require(issued.headers["set-cookie"])
        #expect(cookie.hasPrefix("tracking_id=\(trackingID);") && cookie.contains("Max-Age=31536000") && cookie.contains("HttpOnly"), "\(cookie)")

        // A realistic click: `target.computedStyle` holds about 300 properties (6.8 KB). It is kept, cut to the
        // value limit and flagged, not refused whole.
        let style = (0..<300).map { #""property-\#($0)":"value-\#($0)""# }.joined(separator: ",")
        let click = #"{"type":"click","timestamp":"2026-12-05T10:00:00.000Z","cursorPosition":{"x":10,"y":20},"target":{"tagName":"BUTTON","id":"buy","computedStyle":{\#(style)}},"pageDetails":{"url":"https://localhost/shop?item=3","referrer":"https://news.example/","language":"en"},"keystroke":"s3cret","trackingId":"\#(trackingID)"}"#
        #expect(click.utf8.count > 6_000)
        let clicked = try curl(["-H", "Content-Type: application/json", "-H", "X-Tracking-ID: \(trackingID)", "--data-binary", click, vantage.url("/api/events")])
        #expect(clicked.status == 200, "\(clicked.body)")
        #expect(clicked.body == #"{"status":"success"}"#)
        let stored = try event(vantage) { $0["ename"] as? String == "click" }
        #expect(stored["vid"] as? String == trackingID)
        #expect(stored["path"] as? String == "/shop" && stored["referrer"] as? String == "https://news.example/")
        #expect(props(stored)["truncated"] as? String == "target")
        #expect((props(stored)["target"] as? String)?.utf8.count == 2048)
        #expect(props(stored)["keystroke"] == nil, "keystrokes are never stored")

        // The first event of a visitor without the cookie is kept (the seed dropped it) and the cookie issued.
        let navigation = #"{"url":"https://localhost/next","referrer":"https://localhost/shop","nextPage":"https://localhost/next","duration":1234.5,"userAgent":"x"}"#
        let first = try curl(["-H", "Content-Type: application/json", "--data-binary", navigation, vantage.url("/api/navigation")])
        #expect(first.status == 200 && first.body == #"{"status":"success"}"#)
        #expect(first.headers["set-cookie"]?.hasPrefix("tracking_id=") == true)
        let moved = try event(vantage) { $0["ename"] as? String == "navigation" }
        #expect(moved["path"] as? String == "/next")
        #expect(props(moved)["duration"] as? String == "1234.5")
        #expect(props(moved)["useragent"] == nil)
        #expect(try curl([vantage.url("/api/events")]).status == 405)
    }

    @Test func trackerSeeds000And001ProbesClearAndJurisdictions() throws {
        let vantage = try Self.start()
        let health = try curl([vantage.url("/health")])
        #expect(health.status == 200 && health.body.contains("\"status\":\"ok\""), "\(health.body)")
        #expect(try curl([vantage.url("/ping")]).body == "pong")
        let status = try json("{\"list\":" + (try curl([vantage.url("/status")]).body) + "}")["list"] as? [[String: Any]] ?? []
        #expect(status.first?["Key"] as? String == "client" && status.first?["Value"] as? String == "127.0.0.1", "\(status)")
        #expect(status.last?["Key"] as? String == "conns" && (status.last?["Value"] as? Int ?? 0) >= 1, "\(status)")
        // Seed 001's "curl https://localhost:8443/metrics | jq '.batching.enabled'": the tracker's JSON shape.
        let metrics = try json(try curl([vantage.url("/metrics")]).body)
        let batching = try #require(metrics["batching"] as? [String: Any], "\(metrics)")
        #expect(batching["enabled"] as? Bool == false, "no ClickHouse here")
        #expect(batching["queued_items"] is Int && metrics["calculated"] is [String: Any] && metrics["timestamp"] is String)
        // Probes are not visits.
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try events(vantage).allSatisfy { !["/health", "/ping", "/status", "/metrics"].contains($0["path"] as? String ?? "") })

        let clear = try curl([vantage.url("/tr/v1/clear")])
        #expect(clear.status == 200 && clear.headers["clear-site-data"] == #""cookies", "storage""#)
        let jds = try curl([vantage.url("/tr/v1/ppi/jds")])
        #expect(jds.status == 200)
        #expect(jds.body == #"[{"compliance":"consent","locs":["DE","FR"],"regulation":"gdpr","rules":{"marketing":"opt-in"},"seq":1}]"#)
        #expect(try curl([vantage.url("/ppi/v1/jds")]).status == 200, "the legacy path too")
    }

    @Test func trackerSeeds000And001ShortLinkAPIInItsOldShape() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: { output: "{{DIR}}/access.log" }
            tls: { certificates: [{ cert: "{{DIR}}/site.pem", key: "{{DIR}}/site.key" }] }
            sites:
              - hosts: [yourdomain.com, yoursitename.com]
                routes:
                  - { path: /, links: true }
              - hosts: [localhost, 127.0.0.1]
                routes:
                  - { path: /, respond: "home" }
            links:
              dir: "{{DIR}}/links"
              legacy_api:
                accounts:
                  - { uid: USER_ID, password_env: SEED001_PASSWORD }
                  - { uid: 14fb0860-b4bf-11e9-8971-7b80435315ac, password_env: SEED000_PASSWORD }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
            """, expect: ["http", "https", "admin"],
            environment: ["SEED001_PASSWORD": "PASSWORD", "SEED000_PASSWORD": "password"]) { directory in
            _ = try makeCertificate(in: directory, name: "site", names: ["localhost", "127.0.0.1"])
        }
        let base = vantage.url("", kind: "https")
        // Seed 001, "Create shortened URL", as written (host and port aside).
        let created = try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/rpi/redirect/USER_ID/PASSWORD", "-d", #"{"urlfrom": "https://yourdomain.com/short", "slugfrom": "/short", "urlto": "https://example.com/long/path?utm_source=test", "oid": "org-id"}"#])
        #expect(created.status == 200 && created.body.isEmpty, "\(created.body)")
        // "List all redirects for a host".
        let listed = try curl(["-k", "-X", "GET", "\(base)/tr/v1/rpi/redirects/USER_ID/PASSWORD/yourdomain.com"])
        let rows = try json(listed.body)["results"] as? [[String: Any]] ?? []
        #expect(rows.count == 1, "\(listed.body)")
        #expect(rows.first?["urlfrom"] as? String == "yourdomain.com/short" && rows.first?["slugfrom"] as? String == "/short")
        #expect(rows.first?["urlto"] as? String == "https://example.com/long/path?utm_source=test" && rows.first?["oid"] as? String == "org-id")
        // "Test redirect": the link is served at once.
        let followed = try curl(["-k", "-H", "Host: yourdomain.com", "\(base)/short"])
        #expect(followed.status == 302 && followed.headers["location"] == "https://example.com/long/path?utm_source=test")
        // Seed 000's legacy path, with the host after the credentials and the tracker's leading-slash slug.
        let legacy = try curl(["-k", "--request", "POST", "--data", #"{"urlfrom":"https://yoursitename.com/test","hostfrom":"yoursrcsitename.com","slugfrom":"/test","urlto":"https://yoursitename.com/pathtourl?gu=1&ptyp=ad&utm_source=fb","hostto":"yourdestsitename.com","pathto":"/pathtourl","searchto":"?gu=1&ptyp=ad&utm_source=fb"}"#, "\(base)/rpi/v1/redirect/14fb0860-b4bf-11e9-8971-7b80435315ac/password/yoursitename.com"])
        #expect(legacy.status == 200, "\(legacy.body)")
        #expect(try curl(["-k", "-H", "Host: yoursitename.com", "\(base)/test"]).headers["location"] == "https://yoursitename.com/pathtourl?gu=1&ptyp=ad&utm_source=fb")
        // The same urlfrom again replaces the destination, as the tracker's table did.
        _ = try curl(["-k", "-X", "POST", "\(base)/tr/v1/rpi/redirect/USER_ID/PASSWORD", "-d", #"{"urlfrom":"yourdomain.com/short","urlto":"https://example.com/new"}"#])
        #expect(try curl(["-k", "-H", "Host: yourdomain.com", "\(base)/short"]).headers["location"] == "https://example.com/new")
        // The same checks as the admin API; wrong credentials, plain HTTP and other methods are refused.
        let bad = try curl(["-k", "-X", "POST", "\(base)/tr/v1/rpi/redirect/USER_ID/PASSWORD", "-d", #"{"urlfrom":"yourdomain.com/x","urlto":"javascript:alert(1)"}"#])
        #expect(bad.status == 400 && bad.body.contains("Bad URL"), "\(bad.body)")
        #expect(try curl(["-k", "\(base)/tr/v1/rpi/redirects/USER_ID/wrong-password/yourdomain.com"]).status == 401)
        #expect(try curl(["-k", "\(base)/tr/v1/rpi/redirects/14fb0860-b4bf-11e9-8971-7b80435315ac/PASSWORD/yourdomain.com"]).status == 401, "another account's password")
        #expect(try curl([vantage.url("/tr/v1/rpi/redirects/USER_ID/PASSWORD/yourdomain.com")]).status == 403)
        // A host without a site: 404, and still no password in the log.
        #expect(try curl(["-k", "-H", "Host: nowhere.example", "\(base)/rpi/v1/redirects/USER_ID/PASSWORD/x"]).status == 404)
        // The password never reaches the access log or the events.
        Thread.sleep(forTimeInterval: 0.5)
        let log = try String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)
        #expect(log.contains("/tr/v1/rpi/redirect/USER_ID/***") && !log.contains("PASSWORD") && !log.contains("/password/"), "\(log)")
        let export = try run([VantageProcess.binary, "events", "export", "--spool", vantage.directory.appendingPathComponent("spool").path]).stdout
        #expect(export.contains("/rpi/") && !export.contains("PASSWORD") && !export.contains("/password/"), "\(export)")
    }

    /// The older short-link API manages links, not events: it answers with tracking off too.
    @Test func theShortLinkAPIInItsOldShapeAnswersWithTrackingOff() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: off
            tls: { certificates: [{ cert: "{{DIR}}/site.pem", key: "{{DIR}}/site.key" }] }
            sites:
              - hosts: [yourdomain.com, localhost, 127.0.0.1]
                routes:
                  - { path: /, links: true }
            links:
              dir: "{{DIR}}/links"
              legacy_api: { accounts: [{ uid: USER_ID, password_env: SEED001_PASSWORD }] }
            tracking: { enabled: false }
            """, expect: ["http", "https", "admin"], environment: ["SEED001_PASSWORD": "PASSWORD"]) { directory in
            _ = try makeCertificate(in: directory, name: "site", names: ["localhost", "127.0.0.1"])
        }
        let base = vantage.url("", kind: "https")
        let created = try curl(["-k", "-X", "POST", "\(base)/tr/v1/rpi/redirect/USER_ID/PASSWORD", "-d", #"{"urlfrom":"yourdomain.com/off","urlto":"https://example.com/off"}"#])
        #expect(created.status == 200, "\(created.body)")
        let listed = try curl(["-k", "\(base)/tr/v1/rpi/redirects/USER_ID/PASSWORD/yourdomain.com"])
        #expect(listed.status == 200 && listed.body.contains("https://example.com/off"), "\(listed.body)")
        #expect(try curl(["-k", "-H", "Host: yourdomain.com", "\(base)/off"]).headers["location"] == "https://example.com/off")
        #expect(try curl(["-k", "\(base)/tr/v1/rpi/redirects/USER_ID/wrong-password/yourdomain.com"]).status == 401)
    }

    /// Runs the WebSocket ingest client (`ws_ingest_client.py`) against `url` with `messages`; returns its output.
    func webSocketClient(_ url: String, _ messages: [String], headers: String = "") throws -> CommandResult {
        try run([BackendProcess.python, BackendProcess.backendsFolder.appendingPathComponent("ws_ingest_client.py").path, url] + messages,
                environment: ["WS_HEADERS": headers])
    }

    @Test func trackerSeed001WebSocketIngestTextAndLZ4AcrossAReload() throws {
        let vantage = try Self.start(extra: "")
        let url = "ws://127.0.0.1:\(vantage.ports["http"]!)/tr/v1/ws"
        // Text frames of JSON and binary frames of LZ4 blocks, as the tracker's JS client sends them; a reload in the
        // middle leaves the connection open.
        let client = Process()
        client.executableURL = URL(fileURLWithPath: BackendProcess.python)
        client.arguments = [BackendProcess.backendsFolder.appendingPathComponent("ws_ingest_client.py").path, url,
                            #"{"ename":"ws_text","vid":"ws-visitor","url":"https://localhost/app?x=1","params":{"xid":"exp-7"}}"#,
                            #"lz4:{"ename":"ws_lz4","vid":"ws-visitor","etyp":"compressed","padding":"\#(String(repeating: "abc", count: 400))"}"#,
                            "@sleep:1.2",
                            #"lz4:{"ename":"ws_after_reload","vid":"ws-visitor"}"#]
        var environment = ProcessInfo.processInfo.environment
        environment["WS_HEADERS"] = "User-Agent: \(Self.firefox)\nCookie: CookieConsent=1024"
        client.environment = environment
        let out = Pipe()
        client.standardOutput = out
        try client.run()
        Thread.sleep(forTimeInterval: 0.6)
        vantage.signal(SIGHUP)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0 && output.hasPrefix("sent 3"), "\(output)\n\(vantage.log.suffix(2000))")
        let text = try event(vantage) { $0["ename"] as? String == "ws_text" }
        #expect(text["kind"] as? String == "track" && text["vid"] as? String == "ws-visitor")
        #expect(text["path"] as? String == "/app" && text["browser"] as? String == "Firefox" && text["cflags"] as? Int == 1024, "\(text)")
        #expect(text["xid"] as? String == "exp-7", "the experiment has its column")
        let compressed = try event(vantage) { $0["ename"] as? String == "ws_lz4" }
        #expect(compressed["etyp"] as? String == "compressed" && (props(compressed)["padding"] as? String)?.count == 1200)
        _ = try event(vantage) { $0["ename"] as? String == "ws_after_reload" }
        #expect(vantage.log.contains("configuration reloaded"))

        // Bad messages are counted, not fatal; a burst over the rate is dropped and counted; a corrupt LZ4 block too.
        let noisy = try webSocketClient(url, ["not json", "lz4:{}", "@burst:260:{\"ename\":\"burst\"}"])
        #expect(noisy.status == 0, "\(noisy.stderr)")
        let metrics = try run(["curl", "-s", vantage.url("/metrics", kind: "admin")]).stdout
        #expect(metrics.contains(#"vantage_websocket_ingest_messages_total{result="refused"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"vantage_websocket_ingest_messages_total{result="rate_limited"}"#))
        #expect(!metrics.contains(#"vantage_websocket_ingest_messages_total{result="rate_limited"} 0"#))
        // Not an upgrade: 426 with what is expected.
        let plain = try curl([vantage.url("/tr/v1/ws")])
        #expect(plain.status == 426 && plain.headers["sec-websocket-version"] == "13")
    }

    /// From the seed field report: `vantage events export --config` reads only the spool, so it must not need the
    /// gateway's secrets (the redirect key here) in its own environment.
    @Test func exportingEventsNeedsNoSecrets() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            access_log: off
            sites:
              - routes:
                  - { path: /, respond: ok }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
              api: { redirect_key_env: SEED_REPORT_REDIRECT_KEY }
            """, environment: ["SEED_REPORT_REDIRECT_KEY": "a-redirect-signing-key-0123456789"])
        _ = try curl([vantage.url("/tr/v1/tr/ename/exported")])
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.contains("\"ename\":\"exported\""))
        // Serving still needs the secret.
        let validate = try run([VantageProcess.binary, "validate", "--config", vantage.configPath])
        #expect(validate.status != 0 && (validate.stdout + validate.stderr).contains("SEED_REPORT_REDIRECT_KEY"))
    }

    @Test func anEventOverTheRecordCapIsRefusedAndCounted() throws {
        let vantage = try Self.start()
        // Five fields of 2 KB each: every one fits the value limit, together they exceed the 8 KB an event keeps.
        let big = String(repeating: "x", count: 2000)
        let fields = (1...5).map { #""f\#($0)":"\#(big)""# }.joined(separator: ",")
        let refused = try curl(["-H", "Content-Type: application/json", "--data-binary", "{\"type\":\"huge\",\(fields)}", vantage.url("/api/events")])
        #expect(refused.status == 413, "\(refused.body)")
        #expect(refused.body.contains("more than the 8192 an event keeps"), "\(refused.body)")
        let metrics = try run(["curl", "-s", vantage.url("/metrics", kind: "admin")]).stdout
        #expect(metrics.contains(#"vantage_tracking_api_refused_total{reason="too_large"} 1"#))
        #expect(vantage.log.contains("refusing calls whose fields take more than 8192 bytes"))
    }

    @Test func compatIsCheckedWhenTheConfigurationIsRead() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("compat-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        for (yaml, words) in [
            ("sites: [{ compat: [pushtec], routes: [{ path: /, respond: x }] }]", "expected one of tracker, pushtech, alcolytics, traceglider"),
            ("sites: [{ compat: [tracker, tracker], routes: [{ path: /, respond: x }] }]", "tracker is listed twice"),
            ("tracking: { enabled: false, compat: [pushtech] }\nsites: [{ routes: [{ path: /, respond: x }] }]", "compat needs tracking"),
        ] {
            try "listen: { http: \"127.0.0.1:0\" }\n\(yaml)\n".write(to: file, atomically: true, encoding: .utf8)
            let result = try run([VantageProcess.binary, "validate", "--config", file.path])
            #expect(result.status != 0)
            #expect((result.stdout + result.stderr).contains(words), "\(result.stdout)\(result.stderr)")
        }
    }
}
