import Foundation
import Testing

@testable import Insights
@testable import Tracking

/// The metrics on a traffic set whose truth is known by construction (times in seconds after `day`).
@Suite struct VisitAggregatorTests {
    static let day: Int64 = 1_764_892_800_000  // 2025-12-05T00:00:00Z
    static let range = TimeRange(start: day, end: day + 86_400_000)

    static func event(
        _ kind: TrackingEvent.Kind = .pageview, at seconds: Int64, visitor: String, session: String, path: String = "/",
        site: String = "shop", referrerHost: String = "", category: String = "direct", channel: String = "Direct",
        country: String = "FR", device: String = "desktop", bot: String = "", name: String = ""
    ) -> TrackingEvent {
        var event = TrackingEvent(
            id: EventID(high: UInt64(bitPattern: seconds), low: UInt64(bitPattern: Int64(visitor.hashValue))), timeMilliseconds: day + seconds * 1000,
            site: site, host: "shop.test", kind: kind, method: "GET", scheme: "https", target: path, status: 200, bytesIn: 0,
            bytesOut: 0, durationMicroseconds: 0, httpVersion: "HTTP/1.1", clientAddress: "")
        event.visitorID = visitor
        event.sessionID = session
        event.referrerHost = referrerHost
        event.sourceCategory = category
        event.channel = channel
        event.sessionChannel = channel
        event.country = country
        event.device = device
        event.botReason = bot
        event.eventName = name
        return event
    }

    /// Alice: 3 pages over 2 minutes from Google (a visit), then a bounce on /pricing later (a second visit).
    /// Bob: one page from twitter.com in Germany on a phone (a bounce). Carol: /pricing then a signup event
    /// (not a bounce), 30 s. A crawler's page view, another site's page view, a stylesheet and yesterday's page
    /// view are not counted.
    static let traffic: [TrackingEvent] = [
        event(at: 100, visitor: "alice", session: "a1", path: "/", referrerHost: "google.com", category: "search", channel: "Organic Search"),
        event(at: 160, visitor: "alice", session: "a1", path: "/docs?x=1", category: "internal", channel: "Organic Search"),
        event(at: 220, visitor: "alice", session: "a1", path: "/pricing", category: "internal", channel: "Organic Search"),
        event(at: 9000, visitor: "alice", session: "a2", path: "/pricing"),
        event(at: 500, visitor: "bob", session: "b1", path: "/", referrerHost: "twitter.com", category: "social", channel: "Organic Social",
              country: "DE", device: "mobile"),
        event(at: 700, visitor: "carol", session: "c1", path: "/pricing"),
        event(.track, at: 730, visitor: "carol", session: "c1", path: "/pricing", name: "signup"),
        event(at: 800, visitor: "bot", session: "", path: "/", bot: "crawler"),
        event(at: 900, visitor: "dave", session: "d1", path: "/", site: "blog"),
        event(.request, at: 101, visitor: "alice", session: "a1", path: "/style.css"),
        event(at: -60, visitor: "erin", session: "e1", path: "/"),
    ]

    static func evaluate(_ query: InsightsQuery, _ events: [TrackingEvent] = traffic) -> InsightsResult {
        var aggregator = VisitAggregator(query: query)
        for event in events.reversed() { aggregator.add(event) }  // any order
        return aggregator.result()
    }

    @Test func theHeadlineCountsVisitorsVisitsBouncesAndDurations() {
        let result = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, metrics: Metric.headline + [.events]))
        #expect(result.total(.visitors) == 3)
        #expect(result.total(.visits) == 4)
        #expect(result.total(.pageviews) == 6)
        #expect(result.total(.viewsPerVisit) == 1.5)
        #expect(result.total(.bounceRate) == 50, "a2 and b1 bounce, a1 and c1 do not")
        #expect(result.total(.visitDuration) == 38, "(120 + 0 + 0 + 30) / 4 = 37.5 s")
        #expect(result.total(.events) == 1)
    }

    @Test func sourcesAreTheLandingsAndPagesAreEachView() {
        let sources = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, dimension: .source, metrics: [.visitors, .visits, .bounceRate]))
        #expect(sources.rows.map(\.key) == ["Direct / None", "google.com", "twitter.com"])
        #expect(sources.value(.visits, of: "Direct / None") == 2)
        #expect(sources.value(.bounceRate, of: "google.com") == 0)
        #expect(sources.value(.bounceRate, of: "twitter.com") == 100)

        let pages = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, dimension: .page, metrics: [.pageviews, .visitors, .bounceRate]))
        #expect(pages.rows.map(\.key) == ["/pricing", "/", "/docs"], "the query string is not part of the page")
        #expect(pages.value(.pageviews, of: "/pricing") == 3)
        #expect(pages.value(.visitors, of: "/pricing") == 2)
        #expect(pages.value(.bounceRate, of: "/pricing") == 50, "visits entering on /pricing: a2 bounces, c1 does not")

        let entries = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, dimension: .exitPage, metrics: [.visits]))
        #expect(entries.value(.visits, of: "/pricing") == 3)
        #expect(entries.value(.visits, of: "/") == 1)
    }

    @Test func filtersCombineOnVisitsAndOnPages() {
        let france = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, filters: [Filter(.country, .is, ["FR"])]))
        #expect(france.total(.visitors) == 2 && france.total(.visits) == 3)
        let pricing = Self.evaluate(InsightsQuery(
            site: "shop", range: Self.range, filters: [Filter(.page, .is, ["/pricing"]), Filter(.device, .isNot, ["mobile"])],
            metrics: [.visitors, .visits, .pageviews]))
        #expect(pricing.total(.visitors) == 2)
        #expect(pricing.total(.visits) == 3)
        #expect(pricing.total(.pageviews) == 3, "only the page views of /pricing")
        let signups = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, dimension: .event, metrics: [.visitors, .events]))
        #expect(signups.rows == [InsightsResult.Row(key: "signup", values: [1, 1])])
    }

    @Test func machinesCountOnlyWhenAskedFor() {
        let withBots = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, includeBots: true))
        #expect(withBots.total(.visitors) == 4)
        #expect(withBots.total(.pageviews) == 7)
    }

    @Test func aBoundOnVisitsIsSaid() {
        var aggregator = VisitAggregator(query: InsightsQuery(site: "shop", range: Self.range), maximumVisits: 2)
        for event in Self.traffic { aggregator.add(event) }
        let result = aggregator.result()
        #expect(result.truncated)
        #expect(result.total(.visits) == 2)
    }

    @Test func parametersAreReadAsThePlausibleAPIsAndRefusedWithTheirName() throws {
        let now = Date(timeIntervalSince1970: Double(Self.day) / 1000 + 3600)
        let query = try InsightsQuery.parse(
            ["period": "7d", "dimension": "page", "filters": "country==FR|DE;page~/pri", "metrics": "visitors,pageviews"],
            defaultSite: "shop", now: now)
        #expect(query.site == "shop")
        #expect(query.range == TimeRange(start: Self.day - 6 * 86_400_000, end: Self.day + 86_400_000))
        #expect(query.filters == [Filter(.country, .is, ["FR", "DE"]), Filter(.page, .contains, ["/pri"])])
        #expect(query.metrics == [.visitors, .pageviews])
        let custom = try InsightsQuery.parse(["period": "custom", "from": "2025-12-01", "to": "2025-12-05"], defaultSite: "shop", now: now)
        #expect(custom.range == TimeRange(start: Self.day - 4 * 86_400_000, end: Self.day + 86_400_000))
        #expect(throws: InsightsQueryError(parameter: "period", problem: "unknown 8d; expected one of today, yesterday, 7d, 30d, 90d, month, custom")) {
            try InsightsQuery.parse(["period": "8d"], defaultSite: "shop", now: now)
        }
        #expect(throws: InsightsQueryError.self) { try InsightsQuery.parse(["filters": "colour==red"], defaultSite: "shop", now: now) }
        #expect(throws: InsightsQueryError.self) { try InsightsQuery.parse(["metrics": "visitors,revenue"], defaultSite: "shop", now: now) }
    }

    @Test func tablesAndJSONShowTheSameNumbers() {
        let result = Self.evaluate(InsightsQuery(site: "shop", range: Self.range, dimension: .source, metrics: [.visitors, .bounceRate, .visitDuration]))
        let table = ResultTable.render(result)
        #expect(table.contains("google.com"))
        #expect(table.contains("2m 0s"))
        #expect(table.contains("Total"))
        let json = ResultJSON.render(result)
        let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let rows = object?["results"] as? [[String: Any]]
        #expect(rows?.first?["source"] as? String == "Direct / None")
        #expect((object?["totals"] as? [String: Any])?["visitors"] as? Int == 3)
    }
}

@Suite struct IntervalTests {
    @Test func stepsStartWhereCalendarsDo() {
        let day: Int64 = 86_400_000
        let friday = VisitAggregatorTests.day + 13 * 3_600_000 + 5  // 2025-12-05 13:00:00.005, a Friday
        #expect(Interval.hour.start(of: friday) == VisitAggregatorTests.day + 13 * 3_600_000)
        #expect(Interval.day.start(of: friday) == VisitAggregatorTests.day)
        #expect(Interval.week.start(of: friday) == VisitAggregatorTests.day - 4 * day, "Monday 2025-12-01")
        #expect(Interval.month.start(of: friday) == VisitAggregatorTests.day - 4 * day)
        #expect(Interval.month.next(after: VisitAggregatorTests.day - 4 * day) == VisitAggregatorTests.day + 27 * day, "2026-01-01")
        #expect(Interval.day.start(of: -1) == -day, "before 1970 too")
        #expect(Interval.suited(to: TimeRange(start: 0, end: day)) == .hour)
        #expect(Interval.suited(to: TimeRange(start: 0, end: 30 * day)) == .day)
    }

    @Test func aSeriesHasEveryStepAndAddsUpToTheTotals() {
        let result = VisitAggregatorTests.evaluate(InsightsQuery(
            site: "shop", range: VisitAggregatorTests.range, metrics: [.visits, .pageviews], interval: .hour))
        #expect(result.series.count == 24)
        #expect(result.series[0].values == [3, 5], "a1, b1, c1 start in the first hour")
        #expect(result.series[2].values == [1, 1], "a2 at 02:30")
        #expect(result.series.reduce(0) { $0 + ($1.values[0] ?? 0) } == result.total(.visits))
    }
}

@Suite struct EdgeReportTests {
    @Test func everyRequestCountsByStatusPathUpstreamAndReason() {
        func request(_ status: Int, _ path: String, upstream: String = "", microseconds: Int = 0, bot: String = "", site: String = "shop",
                     kind: TrackingEvent.Kind = .request, at seconds: Int64 = 10) -> TrackingEvent {
            var event = VisitAggregatorTests.event(kind, at: seconds, visitor: "v", session: "", path: path, site: site, bot: bot)
            event.status = status
            event.upstream = upstream
            event.upstreamMicroseconds = microseconds
            return event
        }
        var aggregator = EdgeAggregator(site: "shop", range: VisitAggregatorTests.range)
        var events = [request(200, "/"), request(404, "/old?x=1"), request(404, "/old"), request(404, "/gone"), request(502, "/api/a", upstream: "10.0.0.1:3000", microseconds: 30_000_000)]
        events += (1...100).map { request(200, "/api/a", upstream: "10.0.0.1:3000", microseconds: $0 * 1000) }
        events += [request(400, "/", site: "-", kind: .refused), request(200, "/", bot: "crawler"), request(200, "/", site: "blog"), request(200, "/", at: -5)]
        for event in events { aggregator.add(event) }
        let report = aggregator.report()
        #expect(report.requests == 107, "everything of the site in the period, and the refusal")
        #expect(report.refused == 1)
        #expect(report.statusClasses.map(\.key) == ["2xx", "4xx", "5xx"])
        #expect(report.statusClasses.first { $0.key == "4xx" }?.count == 4)
        #expect(report.notFound.map(\.key) == ["/old", "/gone"], "by path, without the query")
        #expect(report.notFound.first?.count == 2)
        #expect(report.serverErrors.map(\.key) == ["/api/a"])
        #expect(report.machines.map(\.key) == ["crawler"])
        let upstream = report.upstreams.first
        #expect(upstream?.requests == 101)
        #expect(upstream?.p50 == 51, "the 51st of 101 latencies (1 … 100 ms and one of 30 s)")
        #expect(upstream?.p95 == 96)
    }
}
