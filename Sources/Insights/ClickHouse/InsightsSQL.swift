import Tracking

/// The SQL that answers an ``InsightsQuery`` from the events table, with the definitions of ``VisitAggregator``
/// (docs/INSIGHTS.md): visits are gathered from their events (`sid`, or the visitor for an event without one), a
/// visit's dimensions are its earliest event's, and every statement returns the raw numbers of ``VisitCounts`` so
/// both evaluators divide and round in one place.
///
/// Written for both dialects (ClickHouse 18.16 and current releases: only the time's expression differs) and for
/// the `Distributed` table of cluster mode (subqueries over it use `GLOBAL IN`, which a local table accepts too).
/// Rows are read without `FINAL`: a batch delivered twice after a crash counts its page views twice until
/// ClickHouse merges the copies away; visits and visitors are distinct counts either way.
public struct InsightsSQL: Sendable {
    /// `database.table`: the events table (the `Distributed` one in cluster mode).
    public let table: String
    public let dialect: EventSchema.Dialect

    public init(table: String, dialect: EventSchema.Dialect) {
        self.table = table
        self.dialect = dialect
    }

    /// An event's time in Unix milliseconds.
    var time: String { dialect == .modern ? "toUnixTimestamp64Milli(ts)" : "(toUInt64(ts) * 1000 + ts_ms)" }

    /// The visit an event belongs to, as ``VisitAggregator`` keys it.
    static let visitKey = "cityHash64(if(sid = '', concat('visitor:', vid), sid))"
    static let counted = "kind IN ('pageview', 'track', 'server_track', 'ltv')"
    static let page = "if(path = '', '/', path)"

    /// The columns of every counting statement after its key, in ``VisitCounts``' order: visitors, visits,
    /// pageviews, events, viewed visits, bounces, outcomes, duration (ms), over a visits subquery.
    static func countColumns(pageviews: String, events: String) -> String {
        "uniqExact(visitor), count(), sum(\(pageviews)), sum(\(events)), countIf(pageviews > 0), "
            + "countIf(pageviews = 1 AND events = 0), count(), sum(end - start)"
    }

    /// A string literal (ClickHouse escapes with backslashes).
    static func literal(_ text: String) -> String {
        var escaped = "'"
        for character in text.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "'": escaped += "\\'"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            case "\r": escaped += "\\r"
            case "\0": escaped += "\\0"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped + "'"
    }

    /// A dimension's stored value of an event, before the empty label.
    static func raw(_ dimension: Dimension) -> String {
        switch dimension {
        case .page, .entryPage, .exitPage: page
        case .event: "ename"
        case .channel: "if(session_channel = '', channel, session_channel)"
        case .source: "if(source = 'internal', '', referrer_host)"
        case .utmSource, .utmMedium, .utmCampaign, .utmTerm, .utmContent, .country, .region, .city, .device, .browser, .os:
            dimension.rawValue
        case .browserVersion: "if(browser_version = '', '', concat(browser, ' ', browser_version))"
        case .osVersion: "if(os_version = '', '', concat(os, ' ', os_version))"
        }
    }

    /// `expression` with the dimension's label for an empty value (what reports show and filters test).
    static func labeled(_ expression: String, _ dimension: Dimension) -> String {
        "if(\(expression) = '', \(literal(dimension.emptyLabel)), \(expression))"
    }

    /// The SQL truth of `filter` on an expression of its dimension.
    static func condition(_ filter: Filter, on expression: String) -> String {
        let values = filter.values.map(literal).joined(separator: ", ")
        switch filter.operation {
        case .is: return "\(expression) IN (\(values))"
        case .isNot: return "\(expression) NOT IN (\(values))"
        case .contains: return "(" + filter.values.map { "position(\(expression), \(literal($0))) > 0" }.joined(separator: " OR ") + ")"
        }
    }

    /// The events a query looks at: its site, range, counted kinds, and no machines unless asked for.
    func eventConditions(_ query: InsightsQuery, kinds: String = InsightsSQL.counted) -> String {
        var conditions = ["site = \(Self.literal(query.site))", kinds] + timeConditions(query.range)
        if !query.includeBots { conditions.append("bot_reason = ''") }
        return conditions.joined(separator: " AND ")
    }

    /// Whole seconds on `ts` (the table's order, so ClickHouse skips what is out of range), and the milliseconds
    /// when a bound falls inside a second.
    func timeConditions(_ range: TimeRange) -> [String] {
        let start = range.start.floorDivided(by: 1000)
        let end = (range.end + 999).floorDivided(by: 1000)
        var conditions = ["ts >= toDateTime(\(max(0, start)), 'UTC')", "ts < toDateTime(\(max(0, end)), 'UTC')"]
        if range.start % 1000 != 0 { conditions.append("\(time) >= \(range.start)") }
        if range.end % 1000 != 0 { conditions.append("\(time) < \(range.end)") }
        return conditions
    }

    /// One row per visit of the query's events: `visit`, `visitor`, `start`, `end`, `pageviews`, `events`,
    /// `entry_page` and `exit_page` ('' without a page view), `d_<dimension>` (the earliest event's labeled value)
    /// for each of `dimensions`, and `matched_pageviews`/`matched_events` (those passing the query's page and event
    /// filters) when it has some.
    func visits(_ query: InsightsQuery, dimensions: Set<Dimension>) -> String {
        var columns = [
            "\(Self.visitKey) AS visit", "argMin(cityHash64(vid), \(time)) AS visitor", "min(\(time)) AS start",
            "max(\(time)) AS end", "countIf(kind = 'pageview') AS pageviews", "countIf(kind != 'pageview') AS events",
            "argMinIf(\(Self.page), \(time), kind = 'pageview') AS entry_page",
            "argMaxIf(\(Self.page), \(time), kind = 'pageview') AS exit_page",
        ]
        for dimension in dimensions.sorted(by: { $0.rawValue < $1.rawValue })
        where dimension.isVisitLevel && dimension != .entryPage && dimension != .exitPage {
            columns.append("argMin(\(Self.labeled(Self.raw(dimension), dimension)), \(time)) AS d_\(dimension.rawValue)")
        }
        let pageFilters = query.filters.filter { $0.dimension == .page }
        if !pageFilters.isEmpty {
            let matched = pageFilters.map { Self.condition($0, on: Self.page) }.joined(separator: " AND ")
            columns.append("countIf(kind = 'pageview' AND \(matched)) AS matched_pageviews")
        }
        let eventFilters = query.filters.filter { $0.dimension == .event }
        if !eventFilters.isEmpty {
            let name = Self.labeled("ename", .event)
            let matched = eventFilters.map { Self.condition($0, on: name) }.joined(separator: " AND ")
            columns.append("countIf(kind != 'pageview' AND \(matched)) AS matched_events")
        }
        return "SELECT \(columns.joined(separator: ", ")) FROM \(table) WHERE \(eventConditions(query)) GROUP BY visit"
    }

    /// A visits subquery's column for a visit-level dimension.
    static func visitColumn(_ dimension: Dimension) -> String {
        switch dimension {
        case .entryPage: labeled("entry_page", .entryPage)
        case .exitPage: labeled("exit_page", .exitPage)
        default: "d_\(dimension.rawValue)"
        }
    }

    /// The conditions a visit must meet: the visit filters on its landing, a matching page view and custom event
    /// for the page and event filters.
    static func visitConditions(_ query: InsightsQuery) -> String {
        var conditions = query.filters.filter(\.dimension.isVisitLevel).map { condition($0, on: visitColumn($0.dimension)) }
        if query.filters.contains(where: { $0.dimension == .page }) { conditions.append("matched_pageviews > 0") }
        if query.filters.contains(where: { $0.dimension == .event }) { conditions.append("matched_events > 0") }
        return conditions.isEmpty ? "1" : conditions.joined(separator: " AND ")
    }

    /// The dimensions a query's visits subquery needs, with `dimension` as the breakdown.
    static func neededDimensions(_ query: InsightsQuery, by dimension: Dimension?) -> Set<Dimension> {
        Set(query.filters.map(\.dimension) + (dimension.map { [$0] } ?? []))
    }

    /// The page views and custom events a visit counts: those passing the page and event filters, when some.
    static func countedColumns(_ query: InsightsQuery) -> (pageviews: String, events: String) {
        (query.filters.contains { $0.dimension == .page } ? "matched_pageviews" : "pageviews",
         query.filters.contains { $0.dimension == .event } ? "matched_events" : "events")
    }

    /// The ORDER BY expression of a metric over a visits subquery (as ``VisitCounts/value(_:)`` computes and
    /// rounds it: halves away from zero, a meaningless value as 0), so the rows SQL keeps are the rows the
    /// report shows.
    static func order(_ metric: Metric, pageviews: String, events: String) -> String {
        switch metric {
        case .visitors: "uniqExact(visitor)"
        case .visits: "count()"
        case .pageviews: "sum(\(pageviews))"
        case .events: "sum(\(events))"
        case .viewsPerVisit: "floor(sum(\(pageviews)) / count() * 100 + 0.5)"
        case .bounceRate:
            "if(countIf(pageviews > 0) = 0, 0, floor(countIf(pageviews = 1 AND events = 0) * 100 / countIf(pageviews > 0) + 0.5))"
        case .visitDuration: "floor(sum(end - start) / 1000 / count() + 0.5)"
        }
    }

    /// The totals of the visits the query keeps: one row, `''` then the counts.
    public func totals(_ query: InsightsQuery) -> String {
        let counted = Self.countedColumns(query)
        return "SELECT '', \(Self.countColumns(pageviews: counted.pageviews, events: counted.events)) FROM ("
            + visits(query, dimensions: Self.neededDimensions(query, by: nil)) + ") WHERE \(Self.visitConditions(query))"
    }

    /// The time series: per step where visits start, the counts (steps without visits are absent).
    public func series(_ query: InsightsQuery, interval: Interval) -> String {
        let counted = Self.countedColumns(query)
        let step: String
        switch interval {
        case .hour: step = "intDiv(start, 3600000) * 3600000"
        case .day: step = "intDiv(start, 86400000) * 86400000"
        // 1970-01-01 was a Thursday; weeks start on Monday (as Interval.start(of:)).
        case .week: step = "(intDiv(start, 86400000) - (intDiv(start, 86400000) + 3) % 7) * 86400000"
        case .month: step = "toUInt64(toStartOfMonth(toDateTime(intDiv(start, 1000), 'UTC'))) * 86400000"
        }
        return "SELECT \(step) AS step, \(Self.countColumns(pageviews: counted.pageviews, events: counted.events)) FROM ("
            + visits(query, dimensions: Self.neededDimensions(query, by: nil)) + ") WHERE \(Self.visitConditions(query)) "
            + "GROUP BY step ORDER BY step"
    }

    /// Rows by a visit-level dimension, in the report's order, at most `query.limit`.
    public func byVisit(_ query: InsightsQuery, dimension: Dimension, metrics: [Metric]) -> String {
        let counted = Self.countedColumns(query)
        let order = Self.order(metrics.first ?? .visitors, pageviews: counted.pageviews, events: counted.events)
        let conditions = Self.visitConditions(query)
        return "SELECT \(Self.visitColumn(dimension)) AS key, "
            + "\(Self.countColumns(pageviews: counted.pageviews, events: counted.events)) FROM ("
            + visits(query, dimensions: Self.neededDimensions(query, by: dimension)) + ") WHERE \(conditions) "
            + "GROUP BY key ORDER BY \(order) DESC, key LIMIT \(query.limit)"
    }

    /// The visits the query keeps, by key (for `GLOBAL IN`); nil when every visit with a matching event is kept
    /// anyway (no filter on other dimensions than `own`).
    func keptVisits(_ query: InsightsQuery, besides own: Dimension) -> String? {
        guard query.filters.contains(where: { $0.dimension != own }) else { return nil }
        return "SELECT visit FROM (" + visits(query, dimensions: Self.neededDimensions(query, by: nil))
            + ") WHERE \(Self.visitConditions(query))"
    }

    /// Rows by an event-level dimension (`page`: page views; `event`: custom events): the key, visitors, visits,
    /// occurrences (the rest of ``VisitCounts`` comes from ``outcomes(_:dimension:)``). At most 10,000 rows, by
    /// visitors (or by occurrences when those come first).
    public func byEvent(_ query: InsightsQuery, dimension: Dimension, metrics: [Metric]) -> String {
        let isPage = dimension == .page
        let key = isPage ? Self.page : Self.labeled("ename", .event)
        var conditions = eventConditions(query) + (isPage ? " AND kind = 'pageview'" : " AND kind != 'pageview'")
        for filter in query.filters where filter.dimension == dimension { conditions += " AND " + Self.condition(filter, on: key) }
        if let kept = keptVisits(query, besides: dimension) { conditions += " AND \(Self.visitKey) GLOBAL IN (\(kept))" }
        let first = metrics.first ?? .visitors
        let order = first == .pageviews || first == .events ? "count()" : first == .visits ? "uniqExact(\(Self.visitKey))" : "uniqExact(vid)"
        return "SELECT \(key) AS key, uniqExact(vid), uniqExact(\(Self.visitKey)), count() FROM \(table) "
            + "WHERE \(conditions) GROUP BY key ORDER BY \(order) DESC, key LIMIT 10000"
    }

    /// The bounce and duration columns of ``VisitCounts`` by an event-level dimension: for `page`, the visits
    /// that entered on it; for `event`, the visits with one. Rows: key, viewed visits, bounces, outcomes, duration.
    public func outcomes(_ query: InsightsQuery, dimension: Dimension) -> String {
        let kept = "SELECT * FROM (" + visits(query, dimensions: Self.neededDimensions(query, by: nil)) + ") WHERE "
            + Self.visitConditions(query)
        let columns = "countIf(pageviews > 0), countIf(pageviews = 1 AND events = 0), count(), sum(end - start)"
        if dimension == .page {
            return "SELECT entry_page AS key, \(columns) FROM (\(kept)) WHERE entry_page != '' GROUP BY key"
        }
        let name = Self.labeled("ename", .event)
        var conditions = eventConditions(query) + " AND kind != 'pageview'"
        for filter in query.filters where filter.dimension == .event { conditions += " AND " + Self.condition(filter, on: name) }
        return "SELECT key, \(columns) FROM (SELECT DISTINCT \(name) AS key, \(Self.visitKey) AS visit FROM \(table) "
            + "WHERE \(conditions)) ANY INNER JOIN (\(kept)) USING visit GROUP BY key"
    }
}

extension Int64 {
    /// Division rounding toward negative infinity.
    func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
