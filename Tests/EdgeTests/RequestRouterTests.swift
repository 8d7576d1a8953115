import HTTP1Parser
import NIOCore
import NIOHTTP1
import Static
import Testing

@testable import Edge

/// Routing decisions without a channel: what a head gets, and what the exchange keeps of the routing.
@Suite struct RequestRouterTests {
    static let yaml = """
        listen: { http: ":8080", }
        sites:
          - hosts: [example.com]
            redirect_https: false
            rewrites:
              - { match: '^/blog/(\\d{4})/(.+)$', to: "/archive/{1}/{2}", redirect: 301 }
              - { match: '^/item/(\\d+)$', to: "/api/items?id={1}" }
              - { match: '^/climb/(.*)$', to: "/{1}/../../../etc" }
            routes:
              - { path: /api/, respond: "api", max_body_size: 10 }
              - { path: /limited/, respond: "ok", rate_limit: { rate: 1/m, headers: true } }
              - { path: /observed/, respond: "ok", rate_limit: { rate: 1/m, dry_run: true } }
              - { path: /docs/, respond: "docs" }
        """

    /// Routes one head the way the handler does, on a connection of the harness.
    struct Routed {
        var outcome: RequestRouter.Outcome
        var head: RequestHead
    }

    static func route(
        _ harness: HandlerHarness, _ target: String, method: HTTPMethod = .GET, headers: HTTPHeaders = ["Host": "example.com"],
        overCapacity: Bool = false
    ) -> Routed {
        let connection = ConnectionInfo(channel: harness.channel, isTLS: false, core: harness.core)
        connection.overCapacity = overCapacity
        let router = RequestRouter(
            snapshot: connection.snapshots.current, connection: connection, challenges: harness.core.acmeChallenges, isHTTP2: false)
        var head = RequestHead(HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers))
        var summary = RequestHeaderSummary(headers)
        let loop = harness.core.loopContext(for: harness.channel.embeddedEventLoop)
        let outcome = router.route(
            &head, headers: &summary,
            facts: { head, summary in
                ExchangeFacts(
                    head: head, host: summary.host, routePrefix: nil, isTLS: false, requestID: { "r" }, clientAddress: { "127.0.0.1" })
            },
            scratch: loop.rewriteScratch, nowMilliseconds: { 1_795_564_000_000 })
        return Routed(outcome: outcome, head: head)
    }

    static func refusal(_ routed: Routed) -> Refusal? {
        if case .refuse(let refusal) = routed.outcome.decision { return refusal }
        return nil
    }

    static func routeLabel(_ routed: Routed) -> String? {
        if case .route(let request) = routed.outcome.decision { return request.route.pathPrefix }
        return nil
    }

    @Test func aRouteIsChosenOnTheAdmittedTarget() throws {
        let harness = try HandlerHarness(Self.yaml)
        let routed = Self.route(harness, "/docs/a/../b/./c?x=1")
        #expect(Self.routeLabel(routed) == "/docs/")
        #expect(routed.head.uri == "/docs/b/c?x=1", "routing decides on the normal form")
        #expect(routed.outcome.originalTarget == "/docs/a/../b/./c?x=1", "the access log keeps the target as sent")
        #expect(routed.outcome.site?.name != nil)
    }

    @Test func refusalsSayWhatAndWhetherTheConnectionCloses() throws {
        let harness = try HandlerHarness(Self.yaml)
        let unknown = Self.route(harness, "/", headers: ["Host": "other.example"])
        #expect(Self.refusal(unknown) == .unknownHost && unknown.outcome.site == nil)
        #expect(Refusal.unknownHost.status == .notFound && !Refusal.unknownHost.closesConnection)
        let noRoute = Self.route(harness, "/nothing-here")
        #expect(Self.refusal(noRoute) == .noRoute)
        #expect(noRoute.outcome.site != nil, "the site's error pages and headers apply to its 404")
        let tunnel = Self.route(harness, "example.com:443", method: .CONNECT)
        #expect(Self.refusal(tunnel)?.kind == .inadmissible && Self.refusal(tunnel)?.status == .methodNotAllowed)
        #expect(Self.refusal(tunnel)?.closesConnection == true)
        let shed = Self.route(harness, "/docs/", overCapacity: true)
        #expect(Self.refusal(shed) == .overCapacity && Refusal.overCapacity.extraHeaders["Retry-After"] == ["1"])
        let climb = Self.route(harness, "/climb/a")
        #expect(Self.refusal(climb)?.kind == .rewriteRefused && Self.refusal(climb)?.status == .badRequest)
    }

    @Test func rewritesRedirectOrChangeTheTargetRoutingSees() throws {
        let harness = try HandlerHarness(Self.yaml)
        let moved = Self.route(harness, "/blog/2024/hello")
        guard case .redirect(let location, let status) = moved.outcome.decision else {
            Issue.record("expected a redirect, got \(moved.outcome.decision)")
            return
        }
        #expect(location == "/archive/2024/hello" && status == .movedPermanently)
        let rewritten = Self.route(harness, "/item/42")
        #expect(Self.routeLabel(rewritten) == "/api/")
        #expect(rewritten.head.uri == "/api/items?id=42" && rewritten.outcome.originalTarget == "/item/42")
    }

    @Test func bodyLimitsAndExpectationsAreDecidedAtTheHead() throws {
        let harness = try HandlerHarness(Self.yaml)
        let large = Self.route(harness, "/api/x", method: .POST, headers: ["Host": "example.com", "Content-Length": "11"])
        #expect(Self.refusal(large) == .bodyTooLarge(limit: 10) && large.outcome.route?.pathPrefix == "/api/")
        let waiting = Self.route(
            harness, "/api/x", method: .POST, headers: ["Host": "example.com", "Content-Length": "5", "Expect": "100-continue"])
        guard case .route(let request) = waiting.outcome.decision else {
            Issue.record("expected a route")
            return
        }
        #expect(request.sendsContinue)
        let odd = Self.route(harness, "/api/x", method: .POST, headers: ["Host": "example.com", "Content-Length": "5", "Expect": "tea"])
        #expect(Self.refusal(odd) == .unsupportedExpectation && Refusal.unsupportedExpectation.status == .expectationFailed)
    }

    @Test func rateLimitsPassWithHeadersThenRefuseOrOnlyReport() throws {
        let harness = try HandlerHarness(Self.yaml)
        let first = Self.route(harness, "/limited/")
        guard case .route(let request) = first.outcome.decision else {
            Issue.record("expected the first request to pass")
            return
        }
        #expect(request.rateLimitHeaders?.policy != nil)
        request.lease?.release()
        let second = Self.route(harness, "/limited/")
        #expect(Self.refusal(second)?.kind == .rateLimited && second.outcome.rateLimitFlag == "rate_limited")
        #expect(Self.refusal(second)?.status == .tooManyRequests && Self.refusal(second)?.closesConnection == false)
        _ = Self.route(harness, "/observed/")
        let observed = Self.route(harness, "/observed/")
        #expect(Self.routeLabel(observed) == "/observed/" && observed.outcome.rateLimitFlag == "rate_limited_dry_run")
    }

    @Test func everyRefusalKindHasItsOwnLabel() {
        let labels = Refusal.Kind.allCases.map(\.rawValue)
        #expect(Set(labels).count == labels.count)
        #expect(labels.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" } })
    }
}
