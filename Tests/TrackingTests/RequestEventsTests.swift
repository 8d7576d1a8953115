import Logging
import NIOHTTP1
import Testing

@testable import Tracking

/// The rules of what an answered request becomes: page view or request, and when it carries a visitor cookie.
@Suite struct RequestEventRulesTests {
    @Test func aPageViewIsAnHTMLAnswerToAGetThatIsNotAPrefetch() {
        #expect(PageView.qualifies(method: .GET, status: 200, isHTML: true, isPrefetch: false))
        #expect(PageView.qualifies(method: .GET, status: 304, isHTML: true, isPrefetch: false), "a revalidated page was viewed")
        #expect(!PageView.qualifies(method: .GET, status: 200, isHTML: true, isPrefetch: true), "a prefetch was not viewed (yet)")
        #expect(!PageView.qualifies(method: .POST, status: 200, isHTML: true, isPrefetch: false))
        #expect(!PageView.qualifies(method: .HEAD, status: 200, isHTML: true, isPrefetch: false))
        #expect(!PageView.qualifies(method: .GET, status: 200, isHTML: false, isPrefetch: false), "a stylesheet is a request")
        #expect(!PageView.qualifies(method: .GET, status: 404, isHTML: true, isPrefetch: false), "an error page is no view")
        #expect(!PageView.qualifies(method: .GET, status: 301, isHTML: true, isPrefetch: false))
    }

    static func enricher(dnt: Bool = false, cookies: Bool = true) -> Enricher {
        var visitors = VisitorConfiguration()
        visitors.cookies = cookies
        visitors.honorDoNotTrack = dnt
        return Enricher(context: EnrichmentContext(
            visitors: visitors, clientAddressPolicy: .truncated, geoIP: GeoIPSource(logger: Logger(label: "test")),
            logger: Logger(label: "test")))
    }

    static func request(pageView: Bool = true, cookie: String? = nil, dnt: Bool = false, tracked: Bool = true) -> CookieRequest {
        CookieRequest(
            site: "example.com", tracked: tracked, isPageView: pageView, cookie: cookie, doNotTrack: dnt,
            globalPrivacyControl: false, userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            secureTransport: true)
    }

    @Test func aPageViewWithoutTheCookieGetsOneCarryingItsCookielessID() throws {
        let enricher = Self.enricher()
        let now: Int64 = 1_795_564_000_000
        let issued = try #require(enricher.visitorCookieToIssue(for: Self.request(), clientAddress: "203.0.113.7", nowMilliseconds: now))
        let cookieless = enricher.visitorIDForCookie(
            site: "example.com", clientAddress: "203.0.113.7",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", timeMilliseconds: now)
        #expect(issued.visitorID == cookieless)
        #expect(issued.setCookie.hasPrefix("vid=\(cookieless); Max-Age="))
        #expect(issued.setCookie.contains("; Secure"), "over TLS the cookie is Secure")
    }

    @Test func noCookieForOtherRequestsReturningVisitorsOrARefusal() {
        let enricher = Self.enricher(dnt: true)
        let now: Int64 = 1_795_564_000_000
        var asked = 0
        func address() -> String {
            asked += 1
            return "203.0.113.7"
        }
        #expect(enricher.visitorCookieToIssue(for: Self.request(pageView: false), clientAddress: address(), nowMilliseconds: now) == nil)
        #expect(enricher.visitorCookieToIssue(for: Self.request(cookie: "a=1; vid=abc_12"), clientAddress: address(), nowMilliseconds: now) == nil)
        #expect(enricher.visitorCookieToIssue(for: Self.request(dnt: true), clientAddress: address(), nowMilliseconds: now) == nil)
        #expect(enricher.visitorCookieToIssue(for: Self.request(tracked: false), clientAddress: address(), nowMilliseconds: now) == nil)
        #expect(asked == 0, "the client address is only worked out for a cookie that is issued")
        #expect(enricher.visitorCookieToIssue(for: Self.request(cookie: "vid=not valid!"), clientAddress: address(), nowMilliseconds: now) != nil,
                "an unacceptable cookie value is replaced")
        #expect(Self.enricher(cookies: false).visitorCookieToIssue(for: Self.request(), clientAddress: address(), nowMilliseconds: now) == nil)
    }
}
