import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Short links through the real binary: the admin API and `vantage links`, every status, expiry, click limits under
/// concurrent clicks, passthrough, fall-through, persistence across restart and kill -9, click events.
@Suite(.serialized)
struct LinksTests {
    static let token = "links-admin-token"

    static func config(adminPort: Int) -> String {
        """
        listen: { http: "127.0.0.1:0" }
        sites:
          - hosts: [go.example.com]
            routes:
              - { path: /, links: true }
          - hosts: [www.example.com]
            routes:
              - { path: /, links: { fallthrough: true } }
              - { path: /, respond: "the site itself" }
        access_log: off
        admin: { listen: "127.0.0.1:\(adminPort)", token_env: VANTAGE_LINKS_TOKEN }
        tracking: { spool: { dir: "{{DIR}}/spool" } }
        links: { dir: "{{DIR}}/links" }
        """
    }

    let adminPort: Int
    let vantage: VantageProcess

    init() throws {
        adminPort = try freePort()
        vantage = try VantageProcess(
            config: Self.config(adminPort: adminPort), expect: ["http", "admin"], environment: ["VANTAGE_LINKS_TOKEN": Self.token])
    }

    /// `vantage links ...` against the running gateway; returns the JSON answer.
    func cli(_ arguments: [String], in process: VantageProcess? = nil) throws -> CommandResult {
        try run([VantageProcess.binary, "links"] + arguments + ["--config", (process ?? vantage).configPath],
                environment: ["VANTAGE_LINKS_TOKEN": Self.token])
    }

    func add(_ arguments: [String], in process: VantageProcess? = nil) throws -> [String: Any] {
        let result = try cli(["add"] + arguments, in: process)
        guard result.status == 0 else { throw Failure("links add failed: \(result.stderr)") }
        return try json(result.stdout)
    }

    func click(_ host: String, _ path: String, _ extra: [String] = [], on process: VantageProcess? = nil) throws -> CurlAnswer {
        try curl(["-H", "Host: \(host)", (process ?? vantage).url(path)] + extra)
    }

    @Test func theCLIListsAcrossHostsAndNamesLinksAsPeopleDo() throws {
        let added = try cli(["add", "--host", "go.example.com", "--slug", "spring", "--to", "https://example.org/spring-sale", "--tag", "season"])
        #expect(added.status == 0)
        #expect(added.stderr.contains("short link: http://go.example.com/spring"), "\(added.stderr)")
        let elsewhere = try cli(["add", "--host", "nowhere.example", "--slug", "x", "--to", "https://example.org/x",
                                 "--expires", "2020-01-01T00:00:00Z"])
        #expect(elsewhere.stderr.contains("no site of") && elsewhere.stderr.contains("answers for nowhere.example"), "\(elsewhere.stderr)")
        #expect(elsewhere.stderr.contains("is already past"), "\(elsewhere.stderr)")

        let table = try cli(["ls"])
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("SHORT LINK"), "\(table.stdout)")
        #expect(table.stdout.contains("http://go.example.com/spring") && table.stdout.contains("http://nowhere.example/x"), "every host")
        let tagged = try json(try cli(["ls", "--tag", "season", "--json"]).stdout)["links"] as? [[String: Any]] ?? []
        #expect(tagged.map { $0["slug"] as? String } == ["spring"])
        #expect(try cli(["ls", "--search", "spring-sale"]).stdout.contains("go.example.com/spring"))

        let stats = try cli(["stats", "--host", "go.example.com", "--slug", "/spring"])
        #expect(stats.status == 0 && stats.stdout.contains("clicks"), "\(stats.stdout)\(stats.stderr)")
        #expect(try cli(["rm", "--host", "go.example.com", "--slug", "spring"]).status == 0)
        #expect(try click("go.example.com", "/spring").status == 404)
        let missing = try cli(["rm", "--host", "go.example.com", "--slug", "spring"])
        #expect(missing.status == 1 && missing.stderr.contains("no link go.example.com/spring"))
    }

    @Test func statusesExpiryPassthroughAndFallThrough() throws {
        for status in [301, 302, 307, 308] {
            _ = try add(["--host", "go.example.com", "--slug", "s\(status)", "--to", "https://example.org/\(status)", "--status", String(status)])
            let answer = try click("go.example.com", "/s\(status)")
            #expect(answer.status == status && answer.headers["location"] == "https://example.org/\(status)")
            #expect(answer.headers["cache-control"] == "private, max-age=0")
        }
        _ = try add(["--host", "go.example.com", "--slug", "old", "--to", "https://example.org/", "--expires", "2020-01-01T00:00:00Z"])
        #expect(try click("go.example.com", "/old").status == 410)
        _ = try add(["--host", "go.example.com", "--slug", "old2", "--to", "https://example.org/", "--expires", "2020-01-01T00:00:00Z",
                     "--fallback", "https://example.org/ended"])
        let ended = try click("go.example.com", "/old2")
        #expect(ended.status == 302 && ended.headers["location"] == "https://example.org/ended")
        _ = try add(["--host", "go.example.com", "--slug", "promo/spring", "--to", "https://example.org/p?lang=en",
                     "--pass-query", "--utm", "utm_source=qr", "--utm", "utm_medium=print"])
        let passed = try click("go.example.com", "/promo/spring?ref=poster&lang=de")
        #expect(passed.headers["location"] == "https://example.org/p?lang=en&ref=poster&lang=de&utm_medium=print&utm_source=qr")
        let generated = try add(["--host", "go.example.com", "--to", "https://example.org/generated"])
        let slug = try #require(generated["slug"] as? String)
        #expect(slug.count == 7)
        #expect(try click("go.example.com", "/\(slug)").status == 302)
        // Unknown slugs: a clean 404 on the links host, the site itself where links fall through.
        let missing = try click("go.example.com", "/nope")
        #expect(missing.status == 404 && missing.body.contains("no link"))
        _ = try add(["--host", "www.example.com", "--slug", "deal", "--to", "https://example.org/deal"])
        #expect(try click("www.example.com", "/deal").status == 302)
        let site = try click("www.example.com", "/about")
        #expect(site.status == 200 && site.body == "the site itself")
        // Links are per host.
        #expect(try click("www.example.com", "/s301").body == "the site itself")
    }

    @Test func theAdminAPIValidatesAndPages() throws {
        let bad: [([String], String)] = [
            (["--host", "go.example.com", "--slug", "x", "--to", "javascript:alert(1)"], "absolute http"),
            (["--host", "go.example.com", "--slug", "loop", "--to", "https://go.example.com/loop"], "back at the link"),
            (["--host", "go.example.com", "--slug", "bad slug", "--to", "https://example.org/"], "slug may only"),
            (["--host", "go.example.com", "--slug", "x", "--to", "https://example.org/", "--status", "200"], "status must be"),
        ]
        for (arguments, message) in bad {
            let result = try cli(["add"] + arguments)
            #expect(result.status == 1 && result.stderr.contains("400") && result.stderr.contains(message), "\(result.stderr)")
        }
        _ = try add(["--host", "go.example.com", "--slug", "taken", "--to", "https://example.org/"])
        let duplicate = try cli(["add", "--host", "go.example.com", "--slug", "taken", "--to", "https://example.org/"])
        #expect(duplicate.status == 1 && duplicate.stderr.contains("409"))
        let anonymous = try curl(["-X", "POST", "-d", "{}", "http://127.0.0.1:\(adminPort)/links"])
        #expect(anonymous.status == 401, "the admin token guards the link API")
        for index in 0..<5 { _ = try add(["--host", "page.example.com", "--slug", "p\(index)", "--to", "https://example.org/\(index)"]) }
        let first = try json(try cli(["ls", "--host", "page.example.com", "--limit", "2", "--json"]).stdout)
        let firstSlugs = (first["links"] as? [[String: Any]])?.compactMap { $0["slug"] as? String }
        #expect(firstSlugs == ["p0", "p1"] && first["next_cursor"] as? String == "p1")
        let second = try json(try cli(["ls", "--host", "page.example.com", "--limit", "2", "--cursor", "p1", "--json"]).stdout)
        #expect((second["links"] as? [[String: Any]])?.compactMap { $0["slug"] as? String } == ["p2", "p3"])
        let id = try #require(try add(["--host", "go.example.com", "--slug", "gone-soon", "--to", "https://example.org/"])["id"] as? String)
        // PATCH through the API: a new destination and status.
        let patched = try curl(["-X", "PATCH", "-H", "Authorization: Bearer \(Self.token)", "-d", #"{"destination":"https://example.org/new","status":307}"#,
                                "http://127.0.0.1:\(adminPort)/links/\(id)"])
        #expect(patched.status == 200)
        let moved = try click("go.example.com", "/gone-soon")
        #expect(moved.status == 307 && moved.headers["location"] == "https://example.org/new")
        #expect(try cli(["rm", id]).status == 0)
        #expect(try click("go.example.com", "/gone-soon").status == 404)
        #expect(try cli(["stats", id]).stderr.contains("404"))
    }

    @Test func aClickLimitHoldsUnderConcurrentClicks() throws {
        let link = try add(["--host", "go.example.com", "--slug", "limited", "--to", "https://example.org/", "--max-clicks", "50"])
        let result = try run(["h2load", "--h1", "-n", "400", "-c", "20", "-t", "1", "-H", ":authority: go.example.com", vantage.url("/limited")])
        #expect(result.stdout.contains("status codes: 0 2xx, 50 3xx, 350 4xx"), "\(result.stdout)")
        let stats = try json(try cli(["stats", try #require(link["id"] as? String)]).stdout)
        #expect(stats["clicks"] as? Int == 50)
    }

    @Test func linksAndClicksSurviveRestartAndKill9() throws {
        let link = try add(["--host", "go.example.com", "--slug", "kept", "--to", "https://example.org/kept", "--max-clicks", "5"])
        for _ in 0..<3 { _ = try click("go.example.com", "/kept") }
        Thread.sleep(forTimeInterval: 1.5)  // click counts are written once a second
        vantage.keepsDirectory = true
        vantage.signal(SIGKILL)
        _ = vantage.stop()
        let second = try VantageProcess(
            config: Self.config(adminPort: adminPort), expect: ["http", "admin"], environment: ["VANTAGE_LINKS_TOKEN": Self.token],
            reusing: vantage.directory)
        #expect(second.log.contains("1 link(s) loaded"))
        #expect(try click("go.example.com", "/kept", on: second).status == 302)
        #expect(try click("go.example.com", "/kept", on: second).status == 302)
        #expect(try click("go.example.com", "/kept", on: second).status == 410, "3 clicks before the kill + 2 after = 5")
        second.keepsDirectory = true
        #expect(second.stop() == 0)
        let third = try VantageProcess(
            config: Self.config(adminPort: adminPort), expect: ["http", "admin"], environment: ["VANTAGE_LINKS_TOKEN": Self.token],
            reusing: vantage.directory)
        let stats = try json(try cli(["stats", try #require(link["id"] as? String)], in: third).stdout)
        #expect(stats["clicks"] as? Int == 5, "the counts flushed at shutdown")
        #expect(third.stop() == 0)
    }

    @Test func theCLIManagesLinksWhileVantageIsStopped() throws {
        let kept = try add(["--host", "go.example.com", "--slug", "kept", "--to", "https://example.org/kept"])
        vantage.keepsDirectory = true
        #expect(vantage.stop() == 0)

        // Stopped: the CLI says so and works on the journal under its lock, with the admin API's rules.
        let added = try cli(["add", "--host", "go.example.com", "--slug", "offline", "--to", "https://example.org/offline"])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stderr.contains("no Vantage answers on the admin listener: working on the links journal in \(vantage.directory.path)/links"), "\(added.stderr)")
        #expect(try json(added.stdout)["slug"] as? String == "offline")
        let duplicate = try cli(["add", "--host", "go.example.com", "--slug", "offline", "--to", "https://example.org/again"])
        #expect(duplicate.status == 1 && duplicate.stderr.contains("409") && duplicate.stderr.contains("exists already"), "\(duplicate.stderr)")
        let invalid = try cli(["add", "--host", "go.example.com", "--to", "ftp://example.org/"])
        #expect(invalid.status == 1 && invalid.stderr.contains("400"), "\(invalid.stderr)")
        let table = try cli(["ls"])
        #expect(table.stdout.contains("http://go.example.com/offline") && table.stdout.contains("http://go.example.com/kept"), "\(table.stdout)")
        let removed = try cli(["rm", "--host", "go.example.com", "--slug", "kept"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(removed.stderr.components(separatedBy: "no Vantage answers").count == 2, "the note once: \(removed.stderr)")
        #expect(try cli(["stats", try #require(kept["id"] as? String)]).status == 1)

        // The next start serves what was changed.
        let second = try VantageProcess(
            config: Self.config(adminPort: adminPort), expect: ["http", "admin"], environment: ["VANTAGE_LINKS_TOKEN": Self.token],
            reusing: vantage.directory)
        #expect(try click("go.example.com", "/offline", on: second).status == 302)
        #expect(try click("go.example.com", "/kept", on: second).status == 404)
        // Running again: the CLI goes through the admin API (no note).
        let online = try cli(["ls"], in: second)
        #expect(online.status == 0 && !online.stderr.contains("no Vantage answers"), "\(online.stderr)")
        second.keepsDirectory = true
        #expect(second.stop() == 0)

        // A gateway that holds the journal but whose admin listener is off: the CLI refuses rather than write beside it.
        let closed = try VantageProcess(
            config: Self.config(adminPort: adminPort).replacingOccurrences(
                of: "admin: { listen: \"127.0.0.1:\(adminPort)\", token_env: VANTAGE_LINKS_TOKEN }", with: "admin: { listen: off }"),
            expect: ["http"], reusing: vantage.directory)
        let refused = try cli(["add", "--host", "go.example.com", "--slug", "late", "--to", "https://example.org/late"], in: closed)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("is held by a running Vantage, so only its admin listener may change it"), "\(refused.stderr)")
        #expect(closed.stop() == 0)
    }

    @Test func aDestinationsPersonalQueryIsNotStoredWithTheClick() throws {
        _ = try add(["--host", "go.example.com", "--slug", "invite",
                     "--to", "https://example.org/join?email=invitee@pii.example&team=7"])
        let answer = try click("go.example.com", "/invite")
        #expect(answer.status == 302 && answer.headers["location"] == "https://example.org/join?email=invitee@pii.example&team=7",
                "the client goes to the whole destination")
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath]).stdout
        let click = try #require(try export.split(separator: "\n").map { try json(String($0)) }
            .first { $0["kind"] as? String == "link_click" })
        #expect((click["props"] as? [String: Any])?["to"] as? String == "https://example.org/join?team=7", "\(click)")
        #expect(!export.contains("pii.example"))
    }

    @Test func clicksBecomeEventsWithBotsFlaggedAndRepeatsMarked() throws {
        let link = try add(["--host", "go.example.com", "--slug", "news", "--to", "https://example.org/article"])
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
        _ = try click("go.example.com", "/news", ["-A", firefox])
        _ = try click("go.example.com", "/news", ["-A", firefox])
        let preview = try click("go.example.com", "/news", ["-A", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"])
        #expect(preview.status == 302, "previewers get the redirect too")
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        let clicks = try export.stdout.split(separator: "\n").map { try json(String($0)) }.filter { $0["kind"] as? String == "link_click" }
            .sorted { ($0["ts"] as? Int ?? 0) < ($1["ts"] as? Int ?? 0) }
        #expect(clicks.count == 3)
        guard clicks.count == 3 else { return }
        let props = clicks.compactMap { $0["props"] as? [String: Any] }
        #expect(props.allSatisfy { $0["link_id"] as? String == link["id"] as? String && $0["to"] as? String == "https://example.org/article" })
        #expect(clicks.map { $0["etyp"] as? String } == ["unique", "repeat", ""], "machines are flagged, not marked")
        #expect(clicks.map { $0["bot_reason"] as? String } == ["", "", "link_preview"])
        #expect(clicks[0]["ename"] as? String == "news" && clicks[0]["status"] as? Int == 302)
    }

    /// Two gateways sharing links through ClickHouse: a change made through one resolves on the other within the
    /// refresh interval, deletions too, and a node started later loads them all.
    @Test func twoNodesShareLinksThroughClickHouse() throws {
        _ = vantage.stop()
        let clickHouse = try ClickHouseServer()
        func node() throws -> (VantageProcess, Int) {
            let port = try freePort()
            let process = try VantageProcess(config: """
                listen: { http: "127.0.0.1:0" }
                sites:
                  - hosts: [go.example.com]
                    routes:
                      - { path: /, links: true }
                access_log: off
                admin: { listen: "127.0.0.1:\(port)", token_env: VANTAGE_LINKS_TOKEN }
                tracking:
                  spool: { dir: "{{DIR}}/spool" }
                  clickhouse: { endpoints: ["\(clickHouse.endpoint)"], flush_interval: 200ms }
                links: { store: clickhouse, refresh: 500ms }
                """, expect: ["http", "admin"], environment: ["VANTAGE_LINKS_TOKEN": Self.token])
            return (process, port)
        }
        func waitFor(_ status: Int, _ process: VantageProcess, _ path: String) throws -> TimeInterval {
            let started = Date()
            while Date().timeIntervalSince(started) < 10 {
                if try click("go.example.com", path, on: process).status == status { return Date().timeIntervalSince(started) }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw Failure("\(path) did not answer \(status) within 10 s")
        }
        let (first, _) = try node()
        let (second, _) = try node()
        let created = try add(["--host", "go.example.com", "--slug", "shared", "--to", "https://example.org/one"], in: first)
        let id = try #require(created["id"] as? String)
        #expect(try click("go.example.com", "/shared", on: first).status == 302, "the node that made it answers at once")
        let seen = try waitFor(302, second, "/shared")
        #expect(seen < 3, "seen by the other node within the refresh interval (\(seen) s)")
        // A change through the second node reaches the first.
        let patched = try run([VantageProcess.binary, "links", "add", "--host", "go.example.com", "--slug", "other",
                               "--to", "https://example.org/two", "--config", second.configPath],
                              environment: ["VANTAGE_LINKS_TOKEN": Self.token])
        #expect(patched.status == 0)
        _ = try waitFor(302, first, "/other")
        #expect(try cli(["rm", id], in: second).status == 0)
        _ = try waitFor(404, first, "/shared")
        // A node started now loads what is there.
        let (third, _) = try node()
        _ = try waitFor(302, third, "/other")
        #expect(try click("go.example.com", "/shared", on: third).status == 404)
        for process in [first, second, third] { #expect(process.stop() == 0) }
    }
}
