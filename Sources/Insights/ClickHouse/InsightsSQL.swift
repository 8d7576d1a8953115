import Tracking

/// The SQL that answers an ``InsightsQuery`` from ClickHouse, with the definitions of ``VisitAggregator``
/// (docs/INSIGHTS.md): visits are read from the visits table the shipper keeps (``VisitRows/table``), or, for page
/// and event filters and machines, gathered from their events at query time (`sid`, or the visitor for an event
/// without one; a visit's dimensions are its earliest event's); page views and custom events are counted from the
/// events. Every statement returns the raw numbers of ``VisitCounts`` so both evaluators divide and round in one
/// place; distinct visitors and visits are counted approximately, by ``distinct(_:)``.
///
/// Written for both dialects (ClickHouse 18.16 and current releases: only the time's expression differs) and for
/// the `Distributed` table of cluster mode (subqueries over it use `GLOBAL IN`, which a local table accepts too).
/// Rows are read without `FINAL`: a batch delivered twice after a crash counts its page views twice until
/// ClickHouse merges the copies away; visits and visitors are distinct counts either way.
public struct InsightsSQL: Sendable {
    /// `database.table`: the events table (the `Distributed` one in cluster mode).
    public let table: String
    public let dialect: EventSchema.Dialect
    /// `database.table_visits`, the visits the shipper keeps (``EventSchema/visitsTable``).
    public let visitsTable: String
    /// Whether the visits table exists (from schema version 4 on).
    public let hasVisitsTable: Bool

    public init(table: String, dialect: EventSchema.Dialect, visitsTable: String? = nil) {
        self.table = table
        self.dialect = dialect
        self.visitsTable = visitsTable ?? table + "_visits"
        hasVisitsTable = visitsTable != nil
    }

    /// An event's time in Unix milliseconds.
    var time: String { dialect == .modern ? "toUnixTimestamp64Milli(ts)" : "(toUInt64(ts) * 1000 + ts_ms)" }

    /// The visit an event belongs to, as ``VisitAggregator`` keys it.
    static let visitKey = "cityHash64(if(sid = '', concat('visitor:', vid), sid))"
    static let counted = "kind IN ('pageview', 'track', 'server_track', 'ltv')"
    static let page = "if(empty(path), '/', path)"
    /// People's events only (`empty` reads the string's length alone: cheaper than comparing with '').
    static let people = "empty(bot_reason)"

    /// The distinct count of `expression`: HyperLogLog with 2^14 cells once past a few thousand values, exact below
    /// (`uniqCombined(14)`): within about 0.8%, Google Analytics' precision for users. ClickHouse's default `uniq`
    /// costs twice the time on the page panel (10M events: 690 ms against 320 ms), and `uniqCombined`'s default 2^17
    /// cells a state outgrow the caches when each of many rows holds one.
    static func distinct(_ expression: String, if condition: String? = nil) -> String {
        guard let condition else { return "uniqCombined(14)(\(expression))" }
        return "uniqCombinedIf(14)(\(expression), \(condition))"
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
        if !query.includeBots { conditions.append(Self.people) }
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
        var matches: [(events: String, positive: Bool)] = []
        let pageFilters = query.filters.filter { $0.dimension == .page }
        if !pageFilters.isEmpty {
            let matched = "kind = 'pageview' AND " + pageFilters.map { Self.condition($0, on: Self.page) }.joined(separator: " AND ")
            columns.append("countIf(\(matched)) AS matched_pageviews")
            matches.append((matched, pageFilters.allSatisfy { $0.operation != .isNot }))
        }
        let eventFilters = query.filters.filter { $0.dimension == .event }
        if !eventFilters.isEmpty {
            let name = Self.labeled("ename", .event)
            let matched = "kind != 'pageview' AND " + eventFilters.map { Self.condition($0, on: name) }.joined(separator: " AND ")
            columns.append("countIf(\(matched)) AS matched_events")
            matches.append((matched, eventFilters.allSatisfy { $0.operation != .isNot }))
        }
        var conditions = eventConditions(query)
        // A page or event that few visits have: gather only those visits (10M events, one page of forty: 0.9 s
        // instead of 1.4 s). Not for `isNot`, which most visits pass: the lookup would cost more than it saves.
        if let narrowing = matches.first(where: \.positive) {
            conditions += " AND \(Self.visitKey) GLOBAL IN (SELECT \(Self.visitKey) FROM \(table) WHERE \(eventConditions(query)) "
                + "AND \(narrowing.events))"
        }
        return "SELECT \(columns.joined(separator: ", ")) FROM \(table) WHERE \(conditions) GROUP BY visit"
    }

    /// Where a statement's visits come from: the visits table the shipper keeps (``VisitRows/table``: rows of
    /// whole visits, summed with their signs), or the events themselves, gathered by visit at query time (page and
    /// event filters, machines, and tables made before the visits table).
    enum VisitRows {
        case table
        case events

        /// What each of ``VisitCounts``' numbers is over these rows.
        func counting(_ query: InsightsQuery) -> Counting {
            switch self {
            case .table:
                return Counting(
                    visitors: InsightsSQL.distinct("visitor_hash"), visits: "sum(sign)", pageviews: "sum(sign * pageviews)",
                    events: "sum(sign * events)", viewed: "sum(sign * (pageviews > 0))",
                    bounces: "sum(sign * (pageviews = 1 AND events = 0))", outcomes: "sum(sign)",
                    duration: "sum(sign * (end_ms - start_ms))")
            case .events:
                let pageviews = query.filters.contains { $0.dimension == .page } ? "matched_pageviews" : "pageviews"
                let events = query.filters.contains { $0.dimension == .event } ? "matched_events" : "events"
                return Counting(
                    visitors: InsightsSQL.distinct("visitor"), visits: "count()", pageviews: "sum(\(pageviews))", events: "sum(\(events))",
                    viewed: "countIf(pageviews > 0)", bounces: "countIf(pageviews = 1 AND events = 0)", outcomes: "count()",
                    duration: "sum(end - start)")
            }
        }

        /// A visit-level dimension's labeled value in these rows.
        func column(_ dimension: Dimension) -> String {
            switch (self, dimension) {
            case (_, .entryPage): InsightsSQL.labeled("entry_page", .entryPage)
            case (_, .exitPage): InsightsSQL.labeled("exit_page", .exitPage)
            // The table stores the session's channel and the landing's source as `channel` and `source`.
            case (.table, .channel): InsightsSQL.labeled("channel", .channel)
            case (.table, .source): InsightsSQL.labeled("source", .source)
            case (.table, _): InsightsSQL.labeled(InsightsSQL.raw(dimension), dimension)
            case (.events, _): "d_\(dimension.rawValue)"
            }
        }

        /// A visit's start in Unix milliseconds.
        var start: String { self == .table ? "start_ms" : "start" }

        /// Groups of no visit (every row of them cancelled) are not rows of a report.
        var having: String { self == .table ? " HAVING sum(sign) > 0" : "" }
    }

    /// The numbers of ``VisitCounts`` as SQL over some visit rows.
    struct Counting {
        var visitors, visits, pageviews, events, viewed, bounces, outcomes, duration: String

        /// Only what `metrics` are computed from (the rest are 0: a panel of visitors need not count bounces).
        func keeping(_ metrics: [Metric]) -> Counting {
            var kept = Counting(visitors: "0", visits: "0", pageviews: "0", events: "0", viewed: "0", bounces: "0", outcomes: "0", duration: "0")
            for metric in metrics {
                switch metric {
                case .visitors: kept.visitors = visitors
                case .visits: kept.visits = visits
                case .pageviews: kept.pageviews = pageviews
                case .events: kept.events = events
                case .viewsPerVisit: (kept.pageviews, kept.visits) = (pageviews, visits)
                case .bounceRate: (kept.viewed, kept.bounces) = (viewed, bounces)
                case .visitDuration: (kept.duration, kept.outcomes) = (duration, outcomes)
                }
            }
            return kept
        }

        /// The eight columns, in ``VisitCounts``' order.
        var columns: String { [visitors, visits, pageviews, events, viewed, bounces, outcomes, duration].joined(separator: ", ") }

        /// The ORDER BY expression of a metric (as ``VisitCounts/value(_:)`` computes and rounds it: halves away
        /// from zero, a meaningless value as 0), so the rows SQL keeps are the rows the report shows.
        func order(_ metric: Metric) -> String {
            switch metric {
            case .visitors: visitors
            case .visits: visits
            case .pageviews: pageviews
            case .events: events
            case .viewsPerVisit: "floor(\(pageviews) / \(visits) * 100 + 0.5)"
            case .bounceRate: "if(\(viewed) = 0, 0, floor(\(bounces) * 100 / \(viewed) + 0.5))"
            case .visitDuration: "floor(\(duration) / 1000 / \(outcomes) + 0.5)"
            }
        }
    }

    /// Which rows answer a query's visit counts: the visits table unless the query needs single events (page or
    /// event filters, machines) or the table does not exist yet.
    func rows(for query: InsightsQuery) -> VisitRows {
        guard hasVisitsTable, !query.includeBots, query.filters.allSatisfy(\.dimension.isVisitLevel) else { return .events }
        return .table
    }

    /// `FROM ... WHERE ...` over the visits the query keeps.
    func visitSource(_ query: InsightsQuery, rows: VisitRows, by dimension: Dimension?) -> String {
        let filters = query.filters.filter(\.dimension.isVisitLevel).map { Self.condition($0, on: rows.column($0.dimension)) }
        switch rows {
        case .table:
            let start = query.range.start.floorDivided(by: 1000), end = (query.range.end + 999).floorDivided(by: 1000)
            var conditions = [
                "site = \(Self.literal(query.site))", "start >= toDateTime(\(max(0, start)), 'UTC')",
                "start < toDateTime(\(max(0, end)), 'UTC')",
            ]
            // Milliseconds only when a bound falls inside a second (as timeConditions).
            if query.range.start % 1000 != 0 { conditions.append("start_ms >= \(max(0, query.range.start))") }
            if query.range.end % 1000 != 0 { conditions.append("start_ms < \(max(0, query.range.end))") }
            conditions += filters
            return "FROM \(visitsTable) WHERE \(conditions.joined(separator: " AND "))"
        case .events:
            var conditions = filters
            if query.filters.contains(where: { $0.dimension == .page }) { conditions.append("matched_pageviews > 0") }
            if query.filters.contains(where: { $0.dimension == .event }) { conditions.append("matched_events > 0") }
            let dimensions = Set(query.filters.map(\.dimension) + (dimension.map { [$0] } ?? []))
            return "FROM (\(visits(query, dimensions: dimensions))) WHERE \(conditions.isEmpty ? "1" : conditions.joined(separator: " AND "))"
        }
    }

    /// The totals of the visits the query keeps: one row, `''` then the counts.
    public func totals(_ query: InsightsQuery) -> String {
        let rows = rows(for: query)
        return "SELECT '', \(rows.counting(query).keeping(query.metrics).columns) \(visitSource(query, rows: rows, by: nil))"
    }

    /// The time series: per step where visits start, the counts (steps without visits are absent). With `totals`,
    /// ClickHouse adds the totals of ``totals(_:)`` after an empty line (`WITH TOTALS`): one pass over the visits
    /// instead of two.
    public func series(_ query: InsightsQuery, interval: Interval, totals: Bool = false) -> String {
        let rows = rows(for: query)
        let start = rows.start
        let step: String
        switch interval {
        case .hour: step = "intDiv(\(start), 3600000) * 3600000"
        case .day: step = "intDiv(\(start), 86400000) * 86400000"
        // 1970-01-01 was a Thursday; weeks start on Monday (as Interval.start(of:)).
        case .week: step = "(intDiv(\(start), 86400000) - (intDiv(\(start), 86400000) + 3) % 7) * 86400000"
        case .month: step = "toUInt64(toStartOfMonth(toDateTime(intDiv(\(start), 1000), 'UTC'))) * 86400000"
        }
        return "SELECT \(step) AS step, \(rows.counting(query).keeping(query.metrics).columns) \(visitSource(query, rows: rows, by: nil)) "
            + "GROUP BY step\(totals ? " WITH TOTALS" : "")\(rows.having) ORDER BY step"
    }

    /// Rows by a visit-level dimension, in the report's order, at most `query.limit`.
    public func byVisit(_ query: InsightsQuery, dimension: Dimension, metrics: [Metric]) -> String {
        let rows = rows(for: query)
        let counting = rows.counting(query).keeping(metrics)
        return "SELECT \(rows.column(dimension)) AS key, \(counting.columns) \(visitSource(query, rows: rows, by: dimension)) "
            + "GROUP BY key\(rows.having) ORDER BY \(counting.order(metrics.first ?? .visitors)) DESC, key LIMIT \(query.limit)"
    }

    /// The visits the query keeps, by the key events carry (for `GLOBAL IN`); nil when every visit with a matching
    /// event is kept anyway (no filter on other dimensions than `own`).
    func keptVisits(_ query: InsightsQuery, besides own: Dimension) -> (key: String, visits: String)? {
        var others = query
        others.filters = query.filters.filter { $0.dimension != own }
        guard !others.filters.isEmpty else { return nil }
        let rows = rows(for: others)
        switch rows {
        case .table:
            return ("if(sid = '', concat('visitor:', vid), sid)",
                    "SELECT visit \(visitSource(others, rows: rows, by: nil)) GROUP BY visit HAVING sum(sign) > 0")
        case .events:
            // The page's (or event's) own filters narrow which of its occurrences count, not which visits.
            return (Self.visitKey, "SELECT visit \(visitSource(query, rows: rows, by: nil))")
        }
    }

    /// Rows by an event-level dimension (`page`: page views; `event`: custom events): the key, visitors, visits,
    /// occurrences (the rest of ``VisitCounts`` comes from ``outcomes(_:dimension:)``). At most 10,000 rows, by
    /// visitors (or by occurrences when those come first).
    public func byEvent(_ query: InsightsQuery, dimension: Dimension, metrics: [Metric]) -> String {
        let isPage = dimension == .page
        let key = isPage ? Self.page : Self.labeled("ename", .event)
        var conditions = isPage
            ? eventConditions(query, kinds: "kind = 'pageview'") : eventConditions(query) + " AND kind != 'pageview'"
        for filter in query.filters where filter.dimension == dimension { conditions += " AND " + Self.condition(filter, on: key) }
        if let kept = keptVisits(query, besides: dimension) { conditions += " AND \(kept.key) GLOBAL IN (\(kept.visits))" }
        let first = metrics.first ?? .visitors
        let visitors = Self.distinct("vid"), visits = Self.distinct(Self.visitKey)
        let order = first == .pageviews || first == .events ? "count()" : first == .visits ? visits : visitors
        // Visits by page cost a distinct count of their own: only when asked for.
        let counted = metrics.contains { $0 == .visits || $0 == .viewsPerVisit } ? visits : "0"
        return "SELECT \(key) AS key, \(visitors), \(counted), count() FROM \(table) "
            + "WHERE \(conditions) GROUP BY key ORDER BY \(order) DESC, key LIMIT 10000"
    }

    /// The bounce and duration columns of ``VisitCounts`` by an event-level dimension: for `page`, the visits
    /// that entered on it; for `event`, the visits with one. Rows: key, viewed visits, bounces, outcomes, duration.
    public func outcomes(_ query: InsightsQuery, dimension: Dimension) -> String {
        if dimension == .page {
            var others = query
            others.filters = query.filters.filter { $0.dimension != .page }
            let pageFilters = query.filters.filter { $0.dimension == .page }
            // Without page filters a page's entering visits are the visits table's (with them: only the visits
            // that also viewed a matching page, so from the events).
            let rows = pageFilters.isEmpty ? rows(for: others) : .events
            let counting = rows.counting(query)
            let columns = [counting.viewed, counting.bounces, counting.outcomes, counting.duration].joined(separator: ", ")
            return "SELECT entry_page AS key, \(columns) \(visitSource(pageFilters.isEmpty ? others : query, rows: rows, by: nil)) "
                + "AND entry_page != '' GROUP BY key"
        }
        let kept = "SELECT * " + visitSource(query, rows: .events, by: nil)
        let columns = "countIf(pageviews > 0), countIf(pageviews = 1 AND events = 0), count(), sum(end - start)"
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
