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
