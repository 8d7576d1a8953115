import Foundation
import Testing

@testable import Insights
@testable import Tracking

@Suite struct DashboardPageTests {
    static func page(_ parameters: [String: String] = ["period": "today"], filters: [Filter] = []) -> String {
        var query = InsightsQuery(site: "shop", range: VisitAggregatorTests.range, filters: filters)
        query.interval = .hour
        var events = VisitAggregatorTests.traffic
        events.append(VisitAggregatorTests.event(at: 300, visitor: "mallory", session: "m1", path: "/<script>alert(1)</script>"))
        let dashboard = Dashboard.gather(query) { wants, sink in
            events.filter { wants($0.kind, $0.timeMilliseconds) }.forEach(sink)
        }
        return DashboardPage(dashboard: dashboard, sites: ["shop", "blog"], parameters: parameters).html
    }

    @Test func thePageNeedsNoScriptNoInlineStyleAndEscapesWhatVisitorsSent() {
        let html = Self.page()
        #expect(!html.contains("<script"), "a path a visitor sent is text, not markup")
        #expect(html.contains("/&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!html.contains(" style="), "the policy allows no inline style")
        #expect(html.contains("<svg class=\"chart\""))
        #expect(html.contains("<caption"), "tables have captions")
        #expect(html.contains("scope=\"col\""))
    }

    @Test func everyLinkKeepsThePageStateAndRowsAddAFilter() {
        let html = Self.page(["period": "today", "bots": "include"], filters: [Filter(.country, .is, ["FR"])])
        #expect(html.contains("href=\"/?bots=include&amp;filters=country%3D%3DFR%3Bpage%3D%3D/pricing&amp;period=today\""), "a row of Top pages")
        #expect(html.contains("aria-current=\"page\" href=\"/?bots=include&amp;period=today\"") || html.contains("aria-current=\"page\" href=\"/?bots=include&amp;filters="))
        #expect(html.contains("Remove this filter"))
        #expect(html.contains("api/v1/stats?") && html.contains("format=csv"), "each panel downloads as CSV")
        #expect(html.contains("<nav aria-label=\"Sites\">"))
    }

    @Test func theHeadlineComparesWithThePreviousPeriod() {
        let html = Self.page()
        #expect(html.contains("<dt>Visitors</dt><dd>4 "), "alice, bob, carol and mallory")
        // Yesterday had one visitor (erin): 4 is 300% more.
        #expect(html.contains("▲ 300%"))
    }
}

/// Links, emails and money: what the activity aggregator counts and how the page shows it.
@Suite struct ActivityReportTests {
    static func activity(includeBots: Bool = false) -> ActivityReport {
        typealias T = VisitAggregatorTests
        var events = [
            T.event(.linkClick, at: 10, visitor: "alice", session: "a1", referrerHost: "news.example", country: "DE", name: "spring-sale"),
            T.event(.linkClick, at: 11, visitor: "alice", session: "a1", name: "spring-sale"),
            T.event(.linkClick, at: 12, visitor: "slack", session: "", bot: "link_preview", name: "spring-sale"),
            T.event(.pixelOpen, at: 13, visitor: "bob", session: "", name: "<newsletter>"),
            T.event(.pixelOpen, at: 14, visitor: "gmail", session: "", bot: "mail_proxy", name: "<newsletter>"),
            T.event(.track, at: 15, visitor: "carol", session: "c1", name: "signup"),
            T.event(.track, at: 16, visitor: "robot", session: "", bot: "crawler", name: "signup"),
        ]
        events[5].revenue = 12.5
        events[5].currency = "eur"
        events[5].eventType = "conversion"
        var aggregator = ActivityAggregator(site: "shop", range: VisitAggregatorTests.range, includeBots: includeBots)
        for event in events { aggregator.add(event) }
        return aggregator.report()
    }

    @Test func peopleAndMachinesAreCountedApart() {
        let report = Self.activity()
        #expect(report[.links] == [ActivityReport.Row(key: "spring-sale", count: 2, people: 1, machines: 1, previews: 1)])
        #expect(report[.linkCountries].map(\.key) == ["DE", "FR"])
        #expect(report[.pixels] == [ActivityReport.Row(key: "<newsletter>", count: 1, people: 1, machines: 1)])
        #expect(report[.events] == [ActivityReport.Row(key: "signup", count: 1, people: 1, amount: 12.5)])
        #expect(report[.revenue] == [ActivityReport.Row(key: "EUR", count: 1, people: 1, amount: 12.5)])
        #expect(report[.eventTypes].first?.key == "conversion")
        #expect(Self.activity(includeBots: true)[.events].first?.count == 2, "custom events of machines when asked for")
    }

    @Test func theSectionEscapesAndDownloadsEachTable() {
        var query = InsightsQuery(site: "shop", range: VisitAggregatorTests.range)
        query.interval = .hour
        var dashboard = Dashboard.gather(query) { _, _ in }
        dashboard.activity = Self.activity()
        var page = DashboardPage(dashboard: dashboard, sites: ["shop"], parameters: ["period": "today"])
        page.endedLinks = [("shop.test/old", "expired 2026-11-30", 42)]
        let html = page.html
        #expect(html.contains("<th scope=\"row\">&lt;newsletter&gt;</th><td>1</td><td>1</td><td>1</td>"))
        #expect(html.contains("api/v1/activity?format=csv&amp;period=today&amp;table=revenue"))
        #expect(html.contains("<td>12.50</td>"))
        #expect(html.contains("<th scope=\"row\">shop.test/old</th><td>expired 2026-11-30</td><td>42</td>"))
        #expect(ActivityRendering.csv(dashboard.activity, table: .links) == "link,clicks,visitors,machines,previews\r\nspring-sale,2,1,1,1\r\n")
    }
}
