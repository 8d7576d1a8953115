import Foundation
import Testing

/// The tracking API and enrichment through the real binary, with rows checked in a real ClickHouse (Debian's
/// 18.16): every API path, the older tracker's curl examples as written (host and port aside), GeoIP from a
/// database the test makes, visitors, sessions and bots.
@Suite(.serialized)
struct TrackingAPITests {
    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    static let redirectKey = "test-signing-key-0123456789"

    /// Writes the test GeoIP database (`make_geoip.pl`, MaxMind's writer from Debian) into `directory`.
    static func makeGeoIP(in directory: URL, city: String = "Amsterdam") throws -> String {
        let path = directory.appendingPathComponent("geo.mmdb").path
        let script = VantageProcess.packageRoot.appendingPathComponent("Tests/IntegrationTests/Backends/make_geoip.pl").path
        let result = try run(["perl", script, path, city])
        guard result.status == 0 else { throw Failure("make_geoip.pl failed: \(result.stderr)") }
        return path
    }

    static func config(clickHouse: String?) -> String {
        """
        listen: { http: "127.0.0.1:0" }
        sites:
          - hosts: [127.0.0.1, localhost, www.example.com]
            routes:
              - { path: /, static: { root: "{{DIR}}/www" } }
        access_log: off
        admin: { listen: "127.0.0.1:0" }
        tracking:
          spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
          geoip: { database: "{{DIR}}/geo.mmdb", coordinates: true }
          visitors: { cookies: true }
          api:
            redirect_hosts: [sfpl.io, "*.example.org"]
            redirect_key_env: VANTAGE_TEST_REDIRECT_KEY\(clickHouse.map { """

              clickhouse: { endpoints: ["\($0)"], flush_interval: 200ms, retry: { min: 50ms, max: 1s } }
            """ } ?? "")
        """
    }

    static func start(clickHouse: String?) throws -> VantageProcess {
        try VantageProcess(
            config: config(clickHouse: clickHouse), expect: ["http", "admin"],
            environment: ["VANTAGE_TEST_REDIRECT_KEY": redirectKey]
        ) { directory in
            _ = try makeGeoIP(in: directory)
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            try "<html><body>home</body></html>".write(to: www.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            try "body {}".write(to: www.appendingPathComponent("site.css"), atomically: true, encoding: .utf8)
        }
    }

    /// One row as a dictionary (ClickHouse JSONEachRow; 18.16 quotes 64-bit numbers).
    func rows(_ clickHouse: ClickHouseServer, _ sql: String) throws -> [[String: Any]] {
        try clickHouse.query(sql + " FORMAT JSONEachRow").split(separator: "\n").map { try json(String($0)) }
    }

    @Test func everyAPIPathLandsInClickHouse() throws {
        let clickHouse = try ClickHouseServer()
        let vantage = try Self.start(clickHouse: clickHouse.endpoint)
        let base = vantage.url("")

        // Seed 000, "REST Payload Example" (legacy path, /key/value tuples).
        let rest = try curl(["-k", "\(base)/tr/v1/vid/14fb0860-b4bf-11e9-8971-7b80435315ac/ROCK/ON/lat/37.232332/lon/6.32233223/first/true/score/6/ref/14fb0860-b4bf-11e9-8971-7b80435315ac"])
        #expect(rest.status == 200 && rest.body.isEmpty)
        // Seed 000, "Failed Example" (numbers where strings were expected) and "Good Example".
        let failed = try curl(["-k", "--header", "Content-Type: application/json", "--request", "POST", "--data", #"{"app":"native","email":"lalala@aaa.com","uid":"179ea090-6e8c-11ea-bb89-1d0ba023ecf8","uname":null,"tz":"Europe/Warsaw","device":"Handset","os":"iOS 13.4","did":"758152C1-278C-4C80-84A0-CF771B000835","w":375,"h":667,"rel":1,"sid":"c1dcf340-6eaa-11ea-a0b8-6120e9776df7","time":1585149028377,"ename":"filter_results","etyp":"filter","ptyp":"own_rooms","page":1,"vid":"016f2740-6e8c-11ea-9f0b-5d70c66851be"}"#, "\(base)/tr/v1/", "-vvv"])
        #expect(failed.status == 200)
        let good = try curl(["-k", "--header", "Content-Type: application/json", "--request", "POST", "--data", #"{"app":"native","email":"lalala@aaa.com","uid":"179ea090-6e8c-11ea-bb89-1d0ba023ecf8","uname":null,"tz":"Europe/Warsaw","device":"Handset","os":"iOS 13.4","did":"758152C1-278C-4C80-84A0-CF771B000835","w":375,"h":667,"rel":"1","sid":"c1dcf340-6eaa-11ea-a0b8-6120e9776df7","time":1585149028377,"ename":"filter_results","etyp":"filter","ptyp":"own_rooms","page":"1","vid":"016f2740-6e8c-11ea-9f0b-5d70c66851be"}"#, "\(base)/tr/v1/"])
        #expect(good.status == 200)
        // Seed 000's ECS test event (params object) and `tlv`, `ppi/agree` on the legacy paths.
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-XPOST", "\(base)/tr/v1/", "-d", #"{"hideFreePlan":"false","name":"Bewusstsein in Aufruhr","ename":"visited_site","etyp":"session","last":"/einloggen","url":"/registrieren","sid":"627f7c80-0d7c-11eb-9767-93f1d9c02a9c","vid":"627f7c80-0d7c-11eb-9767-93f1d9c02a9c","w":1331,"params":{"homepageSlogan":"B","ename":"viewed_page"}}"#]).status == 200)
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-XPOST", "\(base)/tlv/v1/", "-d", #"{"vid":"627f7c80-0d7c-11eb-9767-93f1d9c02a9c","uid":"627f7c80-0d7c-11eb-9767-93f1d9c02a9c","sid":"627f7c80-0d7c-11eb-9767-93f1d9c02a9c", "orid":"627f7c80-0d7c-11eb-9767-93f1d9c02a9c", "amt" : 35}"#]).status == 200)
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-XPOST", "\(base)/ppi/v1/agree", "-d", #"{"vid": "5ae3c890-5e55-11ea-9283-4fa18a847130", "cflags": 1024}"#]).status == 200)
        // Seed 001: the current paths.
        #expect(try curl(["-k", "\(base)/tr/v1/tr/vid/USER_ID/ename/page_view/etyp/view"]).status == 200)
        let server = try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/str/", "-d", #"{"vid": "14fb0860-b4bf-11e9-8971-7b80435315ac","oid": "org-id","ename": "server_event","etyp": "conversion","revenue": "99.99"}"#])
        #expect(server.status == 200 && server.headers["content-type"] == "application/json")
        let serverEventID = server.body.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        #expect(UUID(uuidString: serverEventID) != nil, "str answers the event id: \(server.body)")
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/ltv/", "-d", #"{"vid": "user-id","uid": "user-123","oid": "org-id","amt": 99.99,"currency": "USD","orid": "order-123"}"#]).status == 200)
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/ltv/", "-d", #"{"vid": "user-id","uid": "user-123","oid": "org-id","payments": [{"amt": 50.00, "currency": "USD", "orid": "order-124"},{"amt": 25.00, "currency": "eur", "orid": "order-125"}]}"#]).status == 200)
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/ppi/agree", "-d", #"{"vid": "user-id","cflags": 1024,"tz": "America/Los_Angeles","lat": 37.7749,"lon": -122.4194}"#]).status == 200)
        // Money on any kind lands in the revenue columns; a currency that is not ISO 4217 is refused, naming it.
        #expect(try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/tr/", "-d", #"{"vid": "buyer-1","ename": "purchase","revenue": 42.5,"currency": "eur"}"#]).status == 200)
        let badCurrency = try curl(["-k", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/tr/", "-d", #"{"vid": "buyer-1","revenue": 1,"currency": "XYZ"}"#])
        #expect(badCurrency.status == 400 && badCurrency.body.contains("currency"))
        let geo = try curl(["-k", "-X", "GET", "\(base)/tr/v1/ppi/geoip?ip=203.0.113.8"])
        let location = try json(geo.body)
        #expect(geo.status == 200 && location["country"] as? String == "DE" && location["city"] as? String == "Munich")
        #expect(try curl(["\(base)/tr/v1/ppi/geoip?ip=not-an-ip"]).status == 400)

        // Pixel: a transparent 43-byte GIF that caches must not keep; opened through Gmail's image proxy.
        let pixel = try curl(["-A", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "\(base)/tr/v1/img/?ename=open&etyp=email&vid=reader-1&utm_campaign=november"])
        #expect(pixel.status == 200 && pixel.headers["content-type"] == "image/gif" && pixel.headers["content-length"] == "43")
        #expect(pixel.headers["cache-control"] == "no-store, max-age=0")
        // Redirects: allowed host, wildcard host, signed target; an unknown host is refused (no open redirect).
        let click = try curl(["-A", Self.firefox, "\(base)/tr/v1/rdr/?url=https%3A%2F%2Fsfpl.io%2Foffer%3Fa%3D1&ename=cta"])
        #expect(click.status == 302 && click.headers["location"] == "https://sfpl.io/offer?a=1")
        #expect(click.headers["set-cookie"]?.hasPrefix("vid=") == true)
        #expect(try curl(["\(base)/rdr/v1/?url=https://shop.example.org/"]).status == 302)
        #expect(try curl(["\(base)/tr/v1/rdr/?url=https://evil.example.net/"]).status == 400)
        #expect(try curl(["\(base)/tr/v1/rdr/?url=//evil.example.net/"]).status == 400)
        let signedTarget = "https://partner.example.net/landing"
        let signature = try run([VantageProcess.binary, "api", "sign-url", signedTarget], environment: ["VANTAGE_REDIRECT_KEY": Self.redirectKey])
        let signed = try curl(["\(base)/tr/v1/rdr/?url=\(signedTarget)&sig=\(signature.stdout.trimmingCharacters(in: .whitespacesAndNewlines))"])
        #expect(signed.status == 302 && signed.headers["location"] == signedTarget, "\(signature.stderr)")
        #expect(try curl(["\(base)/tr/v1/rdr/?url=\(signedTarget)&sig=00"]).status == 400)

        // CORS: the site's own origin gets credentials; a stranger gets nothing; no `*` with credentials.
        let preflight = try curl(["-X", "OPTIONS", "-H", "Origin: https://www.example.com", "\(base)/tr/v1/tr/"])
        #expect(preflight.status == 204 && preflight.headers["access-control-allow-origin"] == "https://www.example.com")
        #expect(preflight.headers["access-control-allow-credentials"] == "true")
        let stranger = try curl(["-X", "OPTIONS", "-H", "Origin: https://evil.example.net", "\(base)/tr/v1/tr/"])
        #expect(stranger.headers["access-control-allow-origin"] == nil)

        // Bounded input, clear answers.
        let tooMany = "{" + (0..<300).map { "\"k\($0)\":1" }.joined(separator: ",") + "}"
        let refused = try curl(["-X", "POST", "-d", tooMany, "\(base)/tr/v1/tr/"])
        #expect(refused.status == 400 && refused.body.contains("more than 256 fields"))
        #expect(try curl(["-X", "POST", "-d", "{not json", "\(base)/tr/v1/tr/"]).status == 400)
        // A value over the limit is cut and flagged, not refused (issue 19: beacons are never lost whole).
        let long = try curl(["-X", "POST", "-d", "{\"ename\":\"long_value\",\"x\":\"\(String(repeating: "a", count: 3000))\"}", "\(base)/tr/v1/tr/"])
        #expect(long.status == 200)
        let huge = try curl(["-X", "POST", "-d", "{\"x\":\"\(String(repeating: "a", count: 70_000))\"}", "\(base)/tr/v1/tr/"])
        #expect(huge.status == 413)
        #expect(try curl(["-X", "DELETE", "\(base)/tr/v1/img/"]).status == 405)
        #expect(try curl(["\(base)/tr/v1/ppi/unknown"]).status == 400)

        // A page view by a browser: visitor cookie, session, device, source, GeoIP of 127.0.0.0/24.
        let page = try curl(["-A", Self.firefox, "-e", "https://www.google.de/", "\(base)/?utm_source=newsletter&utm_medium=email&gclid=g1"])
        let cookie = try #require(page.headers["set-cookie"])
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"))
        let vid = String(cookie.dropFirst(4).prefix { $0 != ";" })
        _ = try curl(["-A", Self.firefox, "-b", "vid=\(vid)", "\(base)/site.css"])
        let again = try curl(["-A", Self.firefox, "-b", "vid=\(vid)", "\(base)/"])
        #expect(again.headers["set-cookie"] == nil, "a visitor with a cookie keeps it")
        _ = try curl(["-A", Self.firefox, "-H", "Sec-Purpose: prefetch", "\(base)/"])

        try vantage.waitUntilShipped()
        let table = "vantage.events"
        func count(_ condition: String) throws -> Int { try clickHouse.count("SELECT count() FROM \(table) WHERE \(condition)") }
        let legacy = try rows(clickHouse, "SELECT props, lat, lon FROM \(table) WHERE kind = 'track' AND vid = '14fb0860-b4bf-11e9-8971-7b80435315ac'")
        #expect(legacy.count == 1 && (legacy.first?["props"] as? String)?.contains(#""rock":"ON""#) == true, "\(legacy)")
        #expect(legacy.first?["lat"] as? Double == 37.232332)
        #expect(try count("kind = 'track' AND ename = 'filter_results' AND uid = '179ea090-6e8c-11ea-bb89-1d0ba023ecf8' AND sid = 'c1dcf340-6eaa-11ea-a0b8-6120e9776df7' AND props LIKE '%\"page\":\"1\"%' AND props LIKE '%\"rel\":\"1\"%'") == 2)
        #expect(try count("props LIKE '%lalala%'") == 0, "email addresses are never stored")
        #expect(try count("ename = 'long_value' AND props LIKE '%\"truncated\":\"x\"%' AND length(visitParamExtractString(props, 'x')) = 2048") == 1)
        #expect(try count("kind = 'track' AND ename = 'visited_site' AND path = '/registrieren' AND referrer = '/einloggen' AND props LIKE '%\"homepageslogan\":\"B\"%'") == 1)
        #expect(try count("kind = 'track' AND ename = 'page_view' AND etyp = 'view' AND vid = 'USER_ID'") == 1)
        #expect(try count("kind = 'server_track' AND id = '\(serverEventID)' AND ename = 'server_event' AND oid = 'org-id' AND client_ip = '' AND bot_reason = ''") == 1)
        #expect(try count("kind = 'ltv' AND uid = 'user-123'") == 3)
        #expect(try clickHouse.query("SELECT currency, revenue FROM \(table) WHERE kind = 'ltv' AND uid = 'user-123' ORDER BY revenue FORMAT CSV") == "\"EUR\",25\n\"USD\",50\n\"USD\",99.99\n")
        #expect(try count("kind = 'ltv' AND path = '/tlv/v1/' AND revenue = 35") == 1)
        #expect(try count("kind = 'server_track' AND id = '\(serverEventID)' AND revenue = 99.99 AND currency = 'USD'") == 1)
        #expect(try count("kind = 'track' AND vid = 'buyer-1' AND ename = 'purchase' AND revenue = 42.5 AND currency = 'EUR'") == 1)
        #expect(try count("kind = 'track' AND vid = 'buyer-1'") == 1, "the refused call recorded no event of its own")
        #expect(try count("kind = 'consent' AND cflags = 1024") == 2)
        #expect(try count("kind = 'pixel_open' AND vid = 'reader-1' AND bot_reason = 'mail_proxy' AND utm_campaign = 'november'") == 1)
        #expect(try count("kind = 'link_click' AND ename = 'cta' AND props LIKE '%sfpl.io/offer%' AND browser = 'Firefox'") == 1)
        #expect(try count("kind = 'link_click'") == 3)
        #expect(try count("kind = 'request' AND path LIKE '/tr/v1/%' AND status = 400") >= 6, "refused calls are still requests")
        let views = try rows(clickHouse, "SELECT vid, sid, session_start, browser, device, country, city, client_ip, referrer_host, source, utm_source, utm_medium, click_id, bot FROM \(table) WHERE kind = 'pageview' ORDER BY ts, ts_ms")
        #expect(views.count == 2, "the prefetch is not a page view: \(views)")
        if views.count == 2 {
            #expect(views[0]["vid"] as? String == vid && views[1]["vid"] as? String == vid)
            #expect(views[0]["sid"] as? String == views[1]["sid"] as? String)
            #expect("\(views[0]["session_start"]!)" == "1" && "\(views[1]["session_start"]!)" == "0")
            #expect(views[0]["browser"] as? String == "Firefox" && views[0]["device"] as? String == "desktop")
            #expect(views[0]["country"] as? String == "NL" && views[0]["city"] as? String == "Amsterdam")
            #expect(views[0]["client_ip"] as? String == "127.0.0.0")
            #expect(views[0]["referrer_host"] as? String == "google.de" && views[0]["source"] as? String == "email")
            #expect(views[0]["utm_source"] as? String == "newsletter" && views[0]["utm_medium"] as? String == "email")
            #expect(views[0]["click_id"] as? String == "gclid=g1" && "\(views[0]["bot"]!)" == "0")
        }
        #expect(try count("path = '/site.css' AND kind = 'request' AND vid = '\(vid)'") == 1)
        #expect(try count("client_ip LIKE '127.0.0.1'") == 0, "no whole address reaches storage")

        // Consent history after shipping comes from ClickHouse.
        let history = try curl(["\(base)/tr/v1/ppi/agree?vid=user-id"])
        #expect(history.status == 200 && history.body.contains("\"cflags\":1024"), "\(history.body)")
        #expect(try curl(["\(base)/tr/v1/ppi/agree?vid=nobody"]).status == 404)
        #expect(vantage.stop() == 0)
    }

    /// The embedded default (no ClickHouse): DNT and GPC honoured when configured, the address policies, the
    /// GeoIP file reloaded when it changes.
    @Test func privacySettingsAndGeoIPReload() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, respond: { body: "<html></html>", content_type: text/html } }
            access_log: off
            admin: { listen: "off" }
            tracking:
              spool: { dir: "{{DIR}}/spool" }
              geoip: "{{DIR}}/geo.mmdb"
              client_ip: none
              privacy: { dnt: true, gpc: true }
              api: true
            """) { directory in _ = try TrackingAPITests.makeGeoIP(in: directory) }
        _ = try curl(["-A", Self.firefox, vantage.url("/a")])
        _ = try curl(["-A", Self.firefox, "-H", "DNT: 1", vantage.url("/b")])
        _ = try curl(["-A", Self.firefox, "-H", "Sec-GPC: 1", vantage.url("/c")])
        _ = try TrackingAPITests.makeGeoIP(in: vantage.directory, city: "Rotterdam")
        var city = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, city != "Rotterdam" {
            Thread.sleep(forTimeInterval: 0.5)
            city = (try? json(try curl([vantage.url("/tr/v1/ppi/geoip?ip=127.0.0.9")]).body))?["city"] as? String ?? ""
        }
        #expect(city == "Rotterdam", "the changed database was picked up")
        #expect(vantage.log.contains("geoip: reloaded"))
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        let events = try export.stdout.split(separator: "\n").map { try json(String($0)) }
        let byPath = Dictionary(events.map { ($0["path"] as? String ?? "", $0) }) { first, _ in first }
        let tracked = try #require(byPath["/a"])
        #expect(tracked["client_ip"] as? String == "", "client_ip: none")
        #expect(tracked["city"] as? String == "Amsterdam" && tracked["lat"] == nil, "no coordinates unless asked for")
        #expect((tracked["vid"] as? String)?.count == 13 && (tracked["sid"] as? String)?.count == 13, "cookieless ids")
        for path in ["/b", "/c"] {
            let quiet = try #require(byPath[path])
            #expect(quiet["vid"] as? String == "" && quiet["sid"] as? String == "" && quiet["city"] as? String == "")
            #expect(quiet["country"] as? String == "NL" && quiet["kind"] as? String == "pageview", "still counted")
        }
    }

    /// Native apps call the API through their platform's HTTP client (OkHttp on Android and React Native, Dart on
    /// Flutter, CFNetwork on iOS): people, with a session, and what the app says about itself in the columns.
    @Test func nativeAppsArePeopleAndSayWhatTheyAre() throws {
        let vantage = try VantageProcess(config: VantageProcess.respondingConfig(tracking: "api: true"))
        let calls: [(agent: String, query: String)] = [
            ("okhttp/4.9.0", "app=Shop%20Android&device=mobile&os=Android%2014"),
            ("Dart/2.19 (dart:io)", "app=Shop%20Flutter&device=Tablet"),
            ("Shop/5.2 CFNetwork/1496.0.7 Darwin/23.5.0", "device=fridge"),
        ]
        for (index, call) in calls.enumerated() {
            #expect(try curl(["-A", call.agent, vantage.url("/tr/v1/tr/?ename=open&vid=app-\(index)&\(call.query)")]).status == 200)
        }
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--fields",
                              "vid,bot,browser,os,device,sid,props"]).stdout
        let rows = try export.split(separator: "\n").map { try json(String($0)) }
        let byVisitor = Dictionary(rows.map { ($0["vid"] as? String ?? "", $0) }) { first, _ in first }
        for index in 0..<3 {
            let row = try #require(byVisitor["app-\(index)"], "\(export)")
            #expect(row["bot"] as? Bool == false && (row["sid"] as? String)?.count == 13, "\(row)")
        }
        #expect(byVisitor["app-0"]?["browser"] as? String == "Shop Android" && byVisitor["app-0"]?["os"] as? String == "Android 14"
            && byVisitor["app-0"]?["device"] as? String == "mobile")
        #expect(byVisitor["app-1"]?["browser"] as? String == "Shop Flutter" && byVisitor["app-1"]?["device"] as? String == "tablet")
        // Not a device class: kept as a property; the agent's own reading stands.
        #expect(byVisitor["app-2"]?["browser"] as? String == "App" && (byVisitor["app-2"]?["props"] as? [String: Any])?["device"] as? String == "fridge")
    }

    /// `vantage erase --vid`: through a running gateway's admin API, on a stopped gateway's spool, and in ClickHouse.
    @Test func erasureRemovesAVisitorEverywhere() throws {
        let adminPort = try freePort()
        func config(clickHouse: String?) -> String {
            """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, respond: "ok" }
            access_log: off
            admin: { listen: "127.0.0.1:\(adminPort)", token_env: VANTAGE_TEST_ADMIN_TOKEN }
            tracking:
              spool: { dir: "{{DIR}}/spool" }
              api: true\(clickHouse.map { "\n  clickhouse: { endpoints: [\"\($0)\"], flush_interval: 200ms }" } ?? "")
            """
        }
        let environment = ["VANTAGE_TEST_ADMIN_TOKEN": "admin-secret"]
        func track(_ vantage: VantageProcess, _ vid: String, count: Int) throws {
            for index in 0..<count { _ = try curl([vantage.url("/tr/v1/tr/vid/\(vid)/ename/e\(index)")]) }
        }
        func exported(_ vantage: VantageProcess) throws -> [String] {
            try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath]).stdout
                .split(separator: "\n").map { try json(String($0))["vid"] as? String ?? "" }
        }
        // Running, spool only: the command goes through the admin API (with its token).
        let running = try VantageProcess(config: config(clickHouse: nil), expect: ["http", "admin"], environment: environment)
        try track(running, "visitor-a", count: 5)
        try track(running, "visitor-b", count: 3)
        let online = try run([VantageProcess.binary, "erase", "--config", running.configPath, "--vid", "visitor-a"], environment: environment)
        #expect(online.status == 0 && online.stdout.contains("\"removed\":5"), "\(online.stdout)\(online.stderr)")
        try track(running, "visitor-a", count: 1)  // a later visit is recorded again
        var vids = try exported(running)
        #expect(vids.filter { $0 == "visitor-a" }.count == 1 && vids.filter { $0 == "visitor-b" }.count == 3)
        let refused = try run([VantageProcess.binary, "erase", "--config", running.configPath, "--vid", "visitor-b"])
        #expect(refused.status == 1 && refused.stderr.contains("401"), "no token, no erasure")
        #expect(running.stop() == 0)
        // Stopped: the command rewrites the spool itself.
        let offline = try run([VantageProcess.binary, "erase", "--config", running.configPath, "--vid", "visitor-b"])
        #expect(offline.status == 0 && offline.stdout.contains("3 event(s) removed"), "\(offline.stdout)\(offline.stderr)")
        vids = try exported(running)
        #expect(vids == ["visitor-a"])

        // ClickHouse: rows already shipped are deleted by a mutation.
        let clickHouse = try ClickHouseServer()
        let shipping = try VantageProcess(config: config(clickHouse: clickHouse.endpoint), expect: ["http", "admin"], environment: environment)
        try track(shipping, "visitor-c", count: 4)
        try track(shipping, "visitor-d", count: 2)
        try shipping.waitUntilShipped(bearer: "admin-secret")
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE vid = 'visitor-c'") == 4)
        let erased = try run([VantageProcess.binary, "erase", "--config", shipping.configPath, "--vid", "visitor-c", "--wait"], environment: environment)
        #expect(erased.status == 0 && erased.stdout.contains("delete finished"), "\(erased.stdout)\(erased.stderr)")
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE vid = 'visitor-c'") == 0)
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE vid = 'visitor-d'") == 2)
        #expect(shipping.stop() == 0)
    }

    /// What a test for planted personal data looks for: the address and the phone number as sent and as decoded
    /// (a bare "555" can occur by chance in ids and times).
    static let plantedTraces = ["planted", "%40pii", "555%20123", "555 123", "15551234567"]

    /// Sends personal data through every input path: page query, referrer, API body URL, API query, pixel query,
    /// redirect destination.
    func plantPersonalData(_ base: String) throws {
        let email = "planted%40pii.example"
        _ = try curl(["-s", "-H", "Referer: https://ref.example/?email=\(email)&x=1", "\(base)/?email=\(email)&phone=%2B1%20555%20123%204567&page=2"])
        _ = try curl(["-s", "-H", "Content-Type: application/json", "-X", "POST", "\(base)/tr/v1/tr/?token=planted-secret",
                      "-d", #"{"ename":"x","url":"https://www.example.com/p?email=planted@pii.example&plan=pro"}"#])
        _ = try curl(["-s", "\(base)/tr/v1/img/?mail=\(email)&utm_campaign=nov"])
        let redirect = try curl(["-s", "\(base)/tr/v1/rdr/?url=" + "https://sfpl.io/offer?email=planted@pii.example"
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!])
        #expect(redirect.status == 302 && redirect.headers["location"]?.contains("planted@pii.example") == true,
                "the client still goes to the whole destination")
    }

    /// The same planted data, shipped: no column of any row holds it.
    @Test func personalDataInQueryStringsNeverReachesClickHouse() throws {
        let clickHouse = try ClickHouseServer()
        let vantage = try Self.start(clickHouse: clickHouse.endpoint)
        try plantPersonalData(vantage.url(""))
        try vantage.waitUntilShipped()
        let rows = try clickHouse.query("SELECT * FROM vantage.events FORMAT TSV")
        #expect(rows.split(separator: "\n").count == 4, "\(rows)")
        #expect(rows.contains("page=2") && rows.contains("plan=pro") && rows.contains("utm_campaign=nov"))
        for planted in Self.plantedTraces { #expect(!rows.contains(planted), "\(planted) in ClickHouse: \(rows)") }
        #expect(vantage.stop() == 0)
    }

    /// Personal data planted in every input path (page query, referrer, API body URL, API query, pixel query,
    /// redirect destination) is in no spool file, access-log line or export.
    @Test func personalDataInQueryStringsNeverReachesTheDisk() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: off }
            access_log: "{{DIR}}/access.log"
            sites:
              - hosts: [127.0.0.1, localhost]
                routes:
                  - { path: /, static: { root: "{{DIR}}/www" } }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
              api: { redirect_hosts: [sfpl.io] }
            """) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            try "<html><body>home</body></html>".write(to: www.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        }
        defer { _ = vantage.stop() }
        try plantPersonalData(vantage.url(""))
        Thread.sleep(forTimeInterval: 1.5)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath]).stdout
        #expect(export.split(separator: "\n").count == 4, "\(export)")
        #expect(export.contains("page=2") && export.contains("plan=pro") && export.contains("utm_campaign=nov"))
        var stored: [String: String] = ["export": export]
        stored["access log"] = try String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)
        let spool = vantage.directory.appendingPathComponent("spool")
        for name in try FileManager.default.contentsOfDirectory(atPath: spool.path) {
            stored["spool/" + name] = String(decoding: try Data(contentsOf: spool.appendingPathComponent(name)), as: UTF8.self)
        }
        for (place, text) in stored {
            // The phone number as sent and as decoded (a bare "555" can occur by chance in ids and times).
            for planted in Self.plantedTraces {
                #expect(!text.contains(planted), "\(planted) in \(place)")
            }
        }
    }
}
