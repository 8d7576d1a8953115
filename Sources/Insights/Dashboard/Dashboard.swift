/// Everything the dashboard page shows for one query, from one pass over the events: the headline and its time
/// series, the same for the previous period (the comparison), and a panel per breakdown.
public struct Dashboard: Sendable {
    /// A panel: its title, dimension and metrics.
    public typealias Panel = (title: String, dimension: Dimension, metrics: [Metric])

    /// A card of the page: panels shown one at a time, as tabs (Plausible's layout), so a page computes five
    /// breakdowns, not fifteen. `parameter` names the tab in the URL (`sources=source`).
    public struct Card: Sendable {
        public var title: String
        public var parameter: String
        public var tabs: [Panel]
    }

    /// The cards, in the page's order; each shows its first tab unless the URL names another.
    public static let cards: [Card] = [
        Card(title: "Sources", parameter: "sources", tabs: [
            ("Channels", .channel, [.visitors, .bounceRate]), ("Sources", .source, [.visitors, .bounceRate]),
            ("Campaigns", .utmCampaign, [.visitors, .visits]),
        ]),
        Card(title: "Pages", parameter: "pages", tabs: [
            ("Top pages", .page, [.visitors, .pageviews]), ("Entry pages", .entryPage, [.visits, .bounceRate]),
            ("Exit pages", .exitPage, [.visits]),
        ]),
        Card(title: "Locations", parameter: "locations", tabs: [
            ("Countries", .country, [.visitors]), ("Regions", .region, [.visitors]), ("Cities", .city, [.visitors]),
        ]),
        Card(title: "Devices", parameter: "devices", tabs: [
            ("Devices", .device, [.visitors]), ("Browsers", .browser, [.visitors]), ("Operating systems", .os, [.visitors]),
        ]),
        Card(title: "Events", parameter: "events", tabs: [("Events", .event, [.visitors, .events])]),
    ]

    /// Every panel the cards hold.
    public static let panels: [Panel] = cards.flatMap(\.tabs)

    /// The panels a page shows: each card's tab the parameters choose (by dimension, `sources=utm_campaign`; the
    /// first when none or an unknown one), browsers and systems by version when asked for (`versions=browser,os`).
    public static func panels(choosing parameters: [String: String]) -> [Panel] {
        let versioned = Set((parameters["versions"] ?? "").split(separator: ",").compactMap { Dimension(rawValue: String($0)) })
        return cards.map { card in
            let chosen = card.tabs.first { $0.dimension.rawValue == parameters[card.parameter] } ?? card.tabs[0]
            switch chosen.dimension {
            case .browser where versioned.contains(.browser): return (title(of: .browserVersion), .browserVersion, chosen.metrics)
            case .os where versioned.contains(.os): return (title(of: .osVersion), .osVersion, chosen.metrics)
            default: return chosen
            }
        }
    }

    /// A panel's title by its dimension.
    public static func title(of dimension: Dimension) -> String {
        switch dimension {
        case .browserVersion: "Browser versions"
        case .osVersion: "OS versions"
        default: panels.first { $0.dimension == dimension }?.title ?? dimension.title
        }
    }

    public var current: InsightsResult
    public var previous: InsightsResult
    public var panels: [InsightsResult]
    /// The edge's own facts for the period (every request, not only page views).
    public var edge: EdgeReport
    /// Short links, email opens, custom events and money in the period.
    public var activity: ActivityReport

    /// Gathers the dashboard of `query` (its range, filters and site) from `events`, which calls its argument with
    /// every event once.
    /// `events` is given a filter (whether an event of a kind at a time can count) and the sink.
    public static func gather(
        _ query: InsightsQuery, panels: [Panel] = Dashboard.panels(choosing: [:]), maximumVisits: Int = 2_000_000,
        events: ((_ wants: (TrackingEvent.Kind, Int64) -> Bool, _ sink: TrackingEventSink) throws -> Void)
    ) rethrows -> Dashboard {
        var query = query
        query.interval = query.interval ?? Interval.suited(to: query.range)
        var before = query
        before.range = query.range.previous
        var now = VisitAggregator(query: query, breakdowns: panels.map(\.dimension), maximumVisits: maximumVisits)
        var then = VisitAggregator(query: before, maximumVisits: maximumVisits)
        var edge = EdgeAggregator(site: query.site, range: query.range)
        var activity = ActivityAggregator(site: query.site, range: query.range, includeBots: query.includeBots)
        let (current, earlier, requests, others) = (now, then, edge, activity)
        try events({ kind, time in
            current.wants(kind, at: time) || earlier.wants(kind, at: time) || requests.wants(kind, at: time)
                || others.wants(kind, at: time)
        }) { event in
            now.add(event)
            then.add(event)
            edge.add(event)
            activity.add(event)
        }
        return Dashboard(
            current: now.result(by: nil, metrics: Metric.headline), previous: then.result(by: nil, metrics: Metric.headline),
            panels: panels.map { panel in
                var result = now.result(by: panel.dimension, metrics: panel.metrics)
                result.rows = Array(result.rows.prefix(10))
                return result
            }, edge: edge.report(), activity: activity.report())
    }
}

import Tracking

/// What ``Dashboard/gather(_:maximumVisits:events:)`` hands each event it wants to.
public typealias TrackingEventSink = (TrackingEvent) -> Void

extension SpoolInsights {
    /// The dashboard of `query`, from one read of the spool.
    public func dashboard(_ query: InsightsQuery, panels: [Dashboard.Panel] = Dashboard.panels(choosing: [:])) throws -> Dashboard {
        try Dashboard.gather(query, panels: panels, maximumVisits: maximumVisits) { wants, sink in
            var reader = SpoolReader(directory: directory)
            try reader.readNew { record in
                if let event = try? EventRecord.decodeForReports(record, keep: wants) { sink(event) }
            }
        }
    }
}
