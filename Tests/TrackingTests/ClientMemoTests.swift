import Config
import Logging
import Testing

@testable import Tracking

/// A connection's memo of its client gives the same enrichment as working it out per request, and is not used for
/// another client, other settings or another day.
@Suite struct ClientMemoTests {
    static let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    static let iPhone =
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
    static let start: Int64 = 1_795_564_000_000

    static func enricher() -> Enricher {
        let context = EnrichmentContext(
            visitors: VisitorConfiguration(), clientAddressPolicy: .truncated, geoIP: GeoIPSource(logger: Logger(label: "test")),
            logger: Logger(label: "test"))
        return Enricher(context: context)
    }

    static func request(at milliseconds: Int64, method: String = "GET") -> TrackingEvent {
        TrackingEvent(
            id: EventID(high: 1, low: UInt64(milliseconds)), timeMilliseconds: milliseconds, site: "example.com",
            host: "example.com", kind: .request, method: method, scheme: "https", target: "/app.css", status: 200, bytesIn: 0,
            bytesOut: 10, durationMicroseconds: 1, httpVersion: "HTTP/1.1", clientAddress: "203.0.113.7")
    }

    /// The enrichment of one request, with or without a memo.
    static func enriched(
        _ enricher: Enricher, at milliseconds: Int64, address: String, agent: String?, memo: ClientMemo?, method: String = "GET"
    ) -> TrackingEvent {
        var event = request(at: milliseconds, method: method)
        var facts = RequestFacts(clientAddress: address, userAgent: agent, cookie: nil)
        facts.memo = memo
        enricher.enrich(&event, facts: facts)
        return event
    }

    /// The fields the memo stands in for.
    static func client(_ event: TrackingEvent) -> [String] {
        [event.visitorID, event.browser, event.browserVersion, event.os, event.device, event.botReason, event.clientAddress, event.country]
    }

    @Test func aConnectionsRequestsAreClassifiedOnceWithTheSameResult() {
        let enricher = Self.enricher()
        let memo = ClientMemo()
        let first = Self.enriched(enricher, at: Self.start, address: "203.0.113.7", agent: Self.firefox, memo: memo)
        let second = Self.enriched(enricher, at: Self.start + 1_000, address: "203.0.113.7", agent: Self.firefox, memo: memo)
        let third = Self.enriched(enricher, at: Self.start + 2_000, address: "203.0.113.7", agent: Self.firefox, memo: memo)
        #expect(enricher.userAgentCacheHits + enricher.userAgentCacheMisses == 1, "the agent was classified for the first request only")
        let worked = Self.enriched(enricher, at: Self.start + 3_000, address: "203.0.113.7", agent: Self.firefox, memo: nil)
        #expect(Self.client(first) == Self.client(worked) && Self.client(second) == Self.client(worked))
        #expect(Self.client(third) == Self.client(worked))
        #expect(first.browser == "Firefox" && first.clientAddress == "203.0.113.0" && !first.visitorID.isEmpty)
        // The session goes on as without a memo: one session, opened by the first request.
        #expect(Set([first.sessionID, second.sessionID, third.sessionID, worked.sessionID]).count == 1)
        #expect(first.sessionStart && !second.sessionStart && !third.sessionStart)
    }

    /// A trusted proxy's connection carries many clients; a client may change its agent.
    @Test func anotherClientOnTheConnectionIsWorkedOutAgain() {
        let enricher = Self.enricher()
        let memo = ClientMemo()
        let first = Self.enriched(enricher, at: Self.start, address: "203.0.113.7", agent: Self.firefox, memo: memo)
        let other = Self.enriched(enricher, at: Self.start + 1_000, address: "198.51.100.20", agent: Self.firefox, memo: memo)
        let phone = Self.enriched(enricher, at: Self.start + 2_000, address: "198.51.100.20", agent: Self.iPhone, memo: memo)
        let noAgent = Self.enriched(enricher, at: Self.start + 3_000, address: "198.51.100.20", agent: nil, memo: memo)
        #expect(other.visitorID != first.visitorID && other.clientAddress == "198.51.100.0")
        #expect(phone.visitorID != other.visitorID && phone.device == "mobile" && phone.os == "iOS")
        #expect(noAgent.visitorID != phone.visitorID && noAgent.botReason == "empty")
        for (event, address, agent) in [(other, "198.51.100.20", Self.firefox), (phone, "198.51.100.20", Self.iPhone), (noAgent, "198.51.100.20", nil)] {
            let worked = Self.enriched(enricher, at: event.timeMilliseconds, address: address, agent: agent, memo: nil)
            #expect(Self.client(event) == Self.client(worked))
        }
        // A HEAD is a machine whatever the memo says about the agent.
        let head = Self.enriched(enricher, at: Self.start + 4_000, address: "198.51.100.20", agent: Self.iPhone, memo: memo, method: "HEAD")
        #expect(head.botReason == "head" && head.sessionID.isEmpty)
    }

    @Test func aReloadOrANewDayIsNotServedFromTheMemo() throws {
        let enricher = Self.enricher()
        let memo = ClientMemo()
        let before = Self.enriched(enricher, at: Self.start, address: "17.58.1.1", agent: Self.firefox, memo: memo)
        #expect(before.botReason.isEmpty)
        var visitors = VisitorConfiguration()
        visitors.mailProxyNetworks = [try #require(CIDR("17.58.0.0/16"))]
        enricher.apply(visitors: visitors, clientAddressPolicy: .full)
        let after = Self.enriched(enricher, at: Self.start + 1_000, address: "17.58.1.1", agent: Self.firefox, memo: memo)
        #expect(after.botReason == "mail_proxy" && after.clientAddress == "17.58.1.1")
        let tomorrow = Self.enriched(enricher, at: Self.start + 86_400_000, address: "17.58.1.1", agent: Self.firefox, memo: memo)
        let worked = Self.enriched(enricher, at: Self.start + 86_400_000, address: "17.58.1.1", agent: Self.firefox, memo: nil)
        #expect(tomorrow.visitorID != after.visitorID && tomorrow.visitorID == worked.visitorID)
    }
}
