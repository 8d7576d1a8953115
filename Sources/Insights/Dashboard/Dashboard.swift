/// Everything the dashboard page shows for one query, from one pass over the events: the headline and its time
/// series, the same for the previous period (the comparison), and a panel per breakdown.
public struct Dashboard: Sendable {
    /// A panel: its title, dimension and metrics.
    public typealias Panel = (title: String, dimension: Dimension, metrics: [Metric])

    /// The panels, in the page's order.
    public static let panels: [Panel] = [
        ("Top pages", .page, [.visitors, .pageviews]),
        ("Entry pages", .entryPage, [.visits, .bounceRate]),
        ("Exit pages", .exitPage, [.visits]),
        ("Channels", .channel, [.visitors, .bounceRate]),
        ("Sources", .source, [.visitors, .bounceRate]),
        ("Campaigns", .utmCampaign, [.visitors, .visits]),
        ("Countries", .country, [.visitors]),
        ("Regions", .region, [.visitors]),
        ("Cities", .city, [.visitors]),
        ("Devices", .device, [.visitors]),
        ("Browsers", .browser, [.visitors]),
        ("Operating systems", .os, [.visitors]),
        ("Events", .event, [.visitors, .events]),
    ]

    /// The panels with browsers or systems broken down by version when asked for (`versions=browser,os`).
    public static func panels(showingVersionsOf versioned: Set<Dimension>) -> [Panel] {
        panels.map { panel in
            switch panel.dimension {
            case .browser where versioned.contains(.browser): ("Browser versions", .browserVersion, panel.metrics)
            case .os where versioned.contains(.os): ("OS versions", .osVersion, panel.metrics)
            default: panel
            }
        }
    }

    /// A panel's title by its dimension.
    public static func title(of dimension: Dimension) -> String {
        panels(showingVersionsOf: [.browser, .os]).first { $0.dimension == dimension }?.title
            ?? panels.first { $0.dimension == dimension }?.title ?? dimension.title
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
        _ query: InsightsQuery, panels: [Panel] = Dashboard.panels, maximumVisits: Int = 2_000_000,
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
    public func dashboard(_ query: InsightsQuery, panels: [Dashboard.Panel] = Dashboard.panels) throws -> Dashboard {
        try Dashboard.gather(query, panels: panels, maximumVisits: maximumVisits) { wants, sink in
            var reader = SpoolReader(directory: directory)
            try reader.readNew { record in
                if let event = try? EventRecord.decodeForReports(record, keep: wants) { sink(event) }
            }
        }
    }
}
