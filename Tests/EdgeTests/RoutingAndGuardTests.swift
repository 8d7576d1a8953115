import Config
import Foundation
import HeaderRules
import HTTP1Parser
import NIOCore
import NIOHTTP1
import NIOPosix
import RegexSet
import RequestTarget
import Static
import Testing

@testable import Edge

@Suite struct RouteTableTests {
    func table() throws -> RouteTable {
        let configuration = try parseConfiguration("""
            listen: { http: ":8080" }
            sites:
              - hosts: [example.com, www.example.com]
                routes:
                  - { path: /, respond: "root" }
                  - { path: /api/, respond: "api" }
                  - { path: /api/v2/, respond: "v2" }
              - hosts: "*.example.org"
                routes: [{ respond: "wild" }]
              - routes: [{ respond: "default" }]
            """)
        let pool = NIOThreadPool(numberOfThreads: 1)
        return try RouteTable.build(from: configuration, cache: FileCache(maxBytes: 1024), threadPool: pool)
    }

    func body(_ route: Route?) -> String? {
        guard case .respond(let prepared) = route?.handler else { return nil }
        return String(buffer: prepared.body)
    }

    @Test func hostsMatchExactlyThenByWildcardThenDefault() throws {
        let table = try table()
        #expect(table.site(forHost: "example.com")?.name == "example.com")
        #expect(table.site(forHost: "WWW.Example.COM:8080")?.name == "example.com")
        #expect(table.site(forHost: "example.com.")?.name == "example.com")
        #expect(table.site(forHost: "a.example.org")?.name == "*.example.org")
        #expect(table.site(forHost: "example.org")?.name == "default")
        #expect(table.site(forHost: nil)?.name == "default")
        #expect(table.site(forHost: "[::1]:8080")?.name == "default")
    }

    @Test func longestPrefixWins() throws {
        let site = try #require(try table().site(forHost: "example.com"))
        #expect(body(site.route(for: "/")) == "root")
        #expect(body(site.route(for: "/api/users")) == "api")
        #expect(body(site.route(for: "/api/v2/users")) == "v2")
        #expect(body(site.route(for: "/apix")) == "root")
    }
}

@Suite struct ConnectionGuardStateMachineTests {
    func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func headTimerStartsWithTheFirstByteAndStopsAtTheBlankLine() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64)
        #expect(machine.connectionActive() == .startTimer(.idle))
        #expect(machine.bytesReceived(bytes("GET / HTTP/1.1\r\n")) == .startTimer(.header))
        #expect(machine.bytesReceived(bytes("Host: a\r\n\r")) == .none)
        #expect(machine.bytesReceived(bytes("\n")) == .cancelTimer)
        #expect(machine.state == .inRequest)
        #expect(machine.responseCompleted() == .startTimer(.idle))
        #expect(machine.timerFired() == .close)
    }

    @Test func aSlowHeadIsAnswered408() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64)
        _ = machine.bytesReceived(bytes("GET / HTTP/1.1\r\n"))
        #expect(machine.timerFired() == .reject(.headerTimeout))
    }

    @Test func anOversizedHeadIsAnswered431ButALargeBodyIsNot() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64)
        #expect(machine.bytesReceived(bytes("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 80))) == .reject(.headerTooLarge))
        var upload = ConnectionGuardStateMachine(maxHeaderSize: 64)
        let request = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 500\r\n\r\n" + String(repeating: "b", count: 500)
        #expect(upload.bytesReceived(bytes(request)) == .cancelTimer)
    }

    @Test func theParserCanReportTheHeadFirst() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64)
        #expect(machine.requestHeadReceived() == .cancelTimer)
        #expect(machine.requestHeadReceived() == .none)
    }

    static let second: UInt64 = 1_000_000_000

    @Test func aStalledBodyIsAnswered408() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64, bodyTimeout: 2 * Self.second, bodyMinRate: 0)
        _ = machine.bytesReceived(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n"))
        #expect(machine.requestHeadReceived(expectsBody: true, now: 0) == .startTimer(.body))
        // Every read restarts the body timer.
        #expect(machine.bytesReceived(bytes("abc"), now: Self.second) == .startTimer(.body))
        #expect(machine.timerFired() == .reject(.bodyTimeout))
        #expect(ConnectionGuardStateMachine.Rejection.bodyTimeout.status == .requestTimeout)
    }

    @Test func aTrickleBelowTheMinimumRateIsRefusedOnceTheGraceTimeHasPassed() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64, bodyTimeout: 10 * Self.second, bodyMinRate: 100)
        _ = machine.requestHeadReceived(expectsBody: true, now: 0)
        // 50 bytes a second: within the first body_timeout nothing is judged...
        for tick in 1...10 {
            #expect(machine.bytesReceived(bytes(String(repeating: "x", count: 50)), now: UInt64(tick) * Self.second) == .startTimer(.body))
        }
        // ...then the average (550 bytes in 11 s) is under 100 bytes/s.
        #expect(machine.bytesReceived(bytes(String(repeating: "x", count: 50)), now: 11 * Self.second) == .reject(.bodyTooSlow))
        // A fast upload is never judged slow.
        var fast = ConnectionGuardStateMachine(maxHeaderSize: 64, bodyTimeout: 10 * Self.second, bodyMinRate: 100)
        _ = fast.requestHeadReceived(expectsBody: true, now: 0)
        #expect(fast.bytesReceived(bytes(String(repeating: "x", count: 5000)), now: 20 * Self.second) == .startTimer(.body))
    }

    @Test func aPausedBodyIsNotTheClientsFault() {
        var machine = ConnectionGuardStateMachine(maxHeaderSize: 64, bodyTimeout: 10 * Self.second, bodyMinRate: 100)
        _ = machine.requestHeadReceived(expectsBody: true, now: 0)
        #expect(machine.bodyPaused() == .cancelTimer)
        #expect(machine.timerFired() == .none)
        // Resuming starts the rate measurement over.
        #expect(machine.bodyResumed(now: 100 * Self.second) == .startTimer(.body))
        #expect(machine.bytesReceived(bytes("x"), now: 101 * Self.second) == .startTimer(.body))
        #expect(machine.requestEnded() == .cancelTimer)
        #expect(machine.state == .inRequest)
        #expect(machine.timerFired() == .none)
    }
}

@Suite struct RedirectSafetyTests {
    private func expand(_ target: String, uri: String, prefix: String = "/", host: String? = "example.com") throws -> String {
        let facts = ExchangeFacts(
            head: RequestHead(version: .http1_1, method: .GET, uri: uri), host: host, routePrefix: prefix,
            isTLS: true, requestID: { "id" }, clientAddress: { "192.0.2.1" })
        return RequestHandler.expand(try Template(parsing: target), facts: facts)
    }

    @Test func placeholdersNeverMakeAProtocolRelativeLocation() throws {
        #expect(try expand("https://example.com{uri}", uri: "//evil.com/x") == "https://example.com//evil.com/x")
        #expect(try expand("{path}", uri: "//evil.com") == "/evil.com")
        #expect(try expand("/new{path}", uri: "/a?b") == "/new/a")
    }

    @Test func theRestOfThePathTheHostAndTheQuery() throws {
        #expect(try expand("/blog/{rest}", uri: "/old-blog/2024/x?y=1", prefix: "/old-blog/") == "/blog/2024/x")
        #expect(try expand("https://{host}{uri}", uri: "/a?b=1", host: "Example.COM:8443") == "https://example.com/a?b=1")
        #expect(try expand("https://{host}/", uri: "/", host: "evil.com/@x") == "https:///", "no odd host is reflected")
        #expect(try expand("/search?{query}", uri: "/find?q=a") == "/search?q=a")
    }

    @Test func httpsRedirectAuthorityRefusesOddHosts() {
        #expect(RequestRouter.redirectAuthority(host: "Example.com:8080", port: 443) == "example.com")
        #expect(RequestRouter.redirectAuthority(host: "example.com", port: 8443) == "example.com:8443")
        #expect(RequestRouter.redirectAuthority(host: "evil.com/@x", port: 443) == nil)
    }
}

@Suite struct ErrorAnswerTests {
    @Test func theFormatFollowsAccept() {
        #expect(ErrorAnswer.format(accept: "application/json", hasPage: true) == .json)
        #expect(ErrorAnswer.format(accept: "application/json", hasPage: false) == .json)
        #expect(ErrorAnswer.format(accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", hasPage: true) == .page)
        #expect(ErrorAnswer.format(accept: "*/*", hasPage: true) == .page)
        #expect(ErrorAnswer.format(accept: "*/*", hasPage: false) == .plain)
        #expect(ErrorAnswer.format(accept: nil, hasPage: true) == .page)
        #expect(ErrorAnswer.format(accept: "text/plain", hasPage: true) == .plain)
        #expect(ErrorAnswer.format(accept: "application/json;q=0.5, text/html", hasPage: true) == .page)
    }

    @Test func theClientsTextIsEscapedInHTMLPages() throws {
        let page = try ErrorPages(from: ConfigDocument(yaml: "404: { body: \"<p>{path}</p>\" }", file: "t.yaml", environment: [:]).root)
        let facts = ExchangeFacts(
            head: RequestHead(version: .http1_1, method: .GET, uri: "/a'<b>&"), host: "example.com", routePrefix: "/",
            isTLS: false, requestID: { "id" }, clientAddress: { "192.0.2.1" })
        let (headers, body) = ErrorAnswer.make(.notFound, reason: "not found", pages: page, accept: "text/html", facts: facts)
        #expect(String(buffer: body) == "<p>/a&#39;&lt;b&gt;&amp;</p>")
        #expect(headers["content-type"] == ["text/html; charset=utf-8"])
    }
}

@Suite struct AccessLogFormatTests {
    let entry = AccessLogEntry(
        milliseconds: 7, client: "203.0.113.9", method: "GET", host: "example.com", uri: "/a \"b\"?q=1", proto: "HTTP/1.1",
        status: 200, bytesSent: 612, bytesReceived: 0, elapsedNanoseconds: 2_500_000, site: "example.com", route: "/",
        tls: nil, requestID: "r1", eventID: nil, upstream: nil, upstreamMicroseconds: nil, userAgent: "curl/8.1 é",
        referer: nil)

    func line(_ format: AccessLogFormat) -> String {
        var buffer = ByteBuffer()
        entry.write(into: &buffer, format: format, isoSecond: "2026-12-05T06:27:11", commonLogSecond: "05/Dec/2026:06:27:11 +0000")
        return String(buffer: buffer)
    }

    @Test func combinedIsNginxsLineWithItsEscaping() {
        var format = AccessLogFormat()
        format.style = .combined
        #expect(line(format) == #"203.0.113.9 - - [05/Dec/2026:06:27:11 +0000] "GET /a \x22b\x22?q=1 HTTP/1.1" 200 612 "-" "curl/8.1 \xC3\xA9""#)
        #expect(LoopContext.commonLogTime(epochSeconds: 1_796_452_031) == "05/Dec/2026:06:27:11 +0000")
    }

    @Test func jsonKeepsTheChosenFields() throws {
        let all = line(AccessLogFormat())
        #expect(all.hasPrefix(#"{"time":"2026-12-05T06:27:11.007Z","client":"203.0.113.9","method":"GET""#))
        #expect(all.contains(#""request_id":"r1""#) && !all.contains("event_id") && !all.contains("referer"))
        let document = try ConfigDocument(yaml: "format: json\nfields: [time, status, uri]", file: "t.yaml", environment: [:]).root
        let map = try document.mapping(keys: ["format", "fields"])
        let chosen = try AccessLogFormat(format: map["format"], fields: map["fields"])
        #expect(line(chosen) == #"{"time":"2026-12-05T06:27:11.007Z","uri":"/a \"b\"?q=1","status":200}"#)
    }

    @Test func jsonLinesEscapeEveryFieldAndParse() throws {
        var every = AccessLogFormat()
        every.fieldBits = UInt32.max
        let hostile = AccessLogEntry(
            milliseconds: 0, client: "2001:db8::1", method: "POST", host: "h\u{1}st", uri: "/\\\t\r\n?x=\u{7f}",
            proto: "HTTP/2.0", status: 599, bytesSent: Int.max, bytesReceived: 10, elapsedNanoseconds: 9_999_999_999,
            site: "s", route: "/r/", tls: "TLSv1.3", requestID: RequestID(String(repeating: "é", count: 300)), eventID: "e",
            upstream: "127.0.0.1:1", upstreamMicroseconds: -5, userAgent: "", referer: "https://r.example/?\"")
        var buffer = ByteBuffer()
        hostile.write(into: &buffer, format: every, isoSecond: "2026-12-05T06:27:11", commonLogSecond: "")
        let text = String(buffer: buffer)
        #expect(text.hasPrefix(#"{"time":"2026-12-05T06:27:11.000Z","client":"2001:db8::1","method":"POST","host":"h\u0001st""#))
        #expect(text.contains(#""uri":"/\\\t\r\n?x=\#u{7f}""#))
        #expect(text.contains(#""status":599,"bytes_sent":9223372036854775807,"bytes_received":10,"duration_ms":9999,"duration_us":9999999"#))
        #expect(text.contains(#""upstream_us":-5,"user_agent":"","referer":"https://r.example/?\"""#))
        let object = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["request_id"] as? String == String(repeating: "é", count: 300))
        #expect(object.count == AccessLogFormat.Field.allCases.count)
    }

    @Test func numbersAreWrittenAsDecimalsAtEveryDigitCount() {
        var format = AccessLogFormat()
        format.fieldBits = AccessLogFormat.Field.bytesSent.bit
        var values = [0, 9, 10, 99, 100, 65_535, 1_000_000, -1, -10, Int.max, Int.min]
        var power = 1
        for _ in 1..<19 {
            power *= 10
            values += [power - 1, power, power + 1]
        }
        for value in values {
            var entry = entry
            entry.bytesSent = value
            var buffer = ByteBuffer()
            entry.write(into: &buffer, format: format, isoSecond: "", commonLogSecond: "")
            #expect(String(buffer: buffer) == "{\"bytes_sent\":\(value)}")
        }
    }
}

@Suite struct HealthVerdictTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func okUntilSomethingNeedsALook() {
        var facts = HealthVerdict.Facts()
        facts.now = now
        facts.routesWithoutUpstreams = 1
        facts.pools = [.init(route: "/api/ (127.0.0.1:3000)", members: 1, healthy: 1)]
        #expect(HealthVerdict.decide(facts) == HealthVerdict(status: .ok, reasons: []))
        facts.pools[0].healthy = 0
        facts.clickHouseConfigured = true
        facts.clickHouseFailure = "http://127.0.0.1:8123 unreachable: connection refused"
        facts.backlogSeconds = 1000
        facts.lastReloadError = "conf/vantage.yaml:3:1: sites: expected a list"
        facts.certificates = [.init(name: "example.com", notAfter: now.addingTimeInterval(3 * 86_400 - 60)),
                              .init(name: "old.example", notAfter: now.addingTimeInterval(-1)),
                              .init(name: "fine.example", notAfter: now.addingTimeInterval(60 * 86_400))]
        let verdict = HealthVerdict.decide(facts)
        #expect(verdict.status == .degraded && verdict.httpStatus == .ok)
        #expect(verdict.reasons == [
            "no healthy upstream for /api/ (127.0.0.1:3000) (1 down)",
            "ClickHouse: http://127.0.0.1:8123 unreachable: connection refused",
            "events wait 1000 s for ClickHouse (more than 900 s)",
            "the last reload was refused: conf/vantage.yaml:3:1: sites: expected a list",
            "the certificate for old.example has expired",
            "the certificate for example.com expires in 3 day(s)",
        ])
    }

    @Test func unhealthyWhenNothingCanBeServed() {
        var facts = HealthVerdict.Facts()
        facts.pools = [.init(route: "/", members: 2, healthy: 0)]
        #expect(HealthVerdict.decide(facts).status == .unhealthy)
        #expect(HealthVerdict.decide(facts).httpStatus == .serviceUnavailable)
        facts.routesWithoutUpstreams = 1
        #expect(HealthVerdict.decide(facts).status == .degraded, "a static route still serves")
        facts.listeners = 0
        #expect(HealthVerdict.decide(facts).reasons.first == "no listener is open")
        #expect(HealthVerdict.decide(HealthVerdict.Facts()).status == .ok, "ClickHouse not configured is not a problem")
    }
}

@Suite struct RewriteRulesTests {
    struct NoFacts: PlaceholderValues {
        func value(of placeholder: Placeholder) -> String { placeholder == .host ? "example.com" : "" }
    }

    func rules(_ yaml: String) throws -> RewriteRules {
        try RewriteRules(from: ConfigDocument(yaml: yaml, file: "t.yaml", environment: [:]).root)
    }

    @Test func redirectsAndRewritesWithGroups() throws {
        let rewrites = try rules("""
            - { match: '^/blog/(\\d{4})/(.+)$', to: "https://{host}/archive/{1}/{2}", redirect: 301 }
            - { match: '^/product/(\\d+)$', to: "/shop/item?id={1}" }
            - { match: '^/docs/(.*)$', to: "/manual/{1}" }
            - { match: '^/up/(.*)$', to: "/{1}/../../x" }
            """)
        let scratch = MatchScratch()
        func apply(_ path: Substring, _ query: Substring? = nil) -> RewriteRules.Outcome? {
            rewrites.apply(path: path, query: query, facts: NoFacts(), scratch: scratch, encodedSlashes: .reject)
        }
        #expect(apply("/blog/2024/hello") == .redirect(location: "https://example.com/archive/2024/hello", status: .movedPermanently))
        #expect(apply("/product/42", "ref=mail") == .rewrite(target: "/shop/item?id=42"), "the target's query replaces the request's")
        #expect(apply("/docs/a//b", "v=1") == .rewrite(target: "/manual/a/b?v=1"), "normalized again; the request's query kept")
        guard case .refused(let reason)? = apply("/up/a") else {
            Issue.record("a rewrite climbing above / is refused")
            return
        }
        #expect(reason.hasPrefix("the rewritten path /a/../../x"))
        #expect(apply("/other") == nil)
    }

    @Test func badExpressionsAndGroupsAreRefusedAtLoad() {
        #expect(throws: (any Error).self) { try rules("- { match: '^/(a', to: /x }") }
        #expect(throws: (any Error).self) { try rules("- { match: '^/(a)$', to: \"/x/{2}\" }") }
        #expect(throws: (any Error).self) { try rules("- { match: '^/a$', to: \"https://elsewhere/\" }") }
    }
}
