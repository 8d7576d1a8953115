import Logging
import Tracking

/// Answers ``InsightsQuery``s from ClickHouse (with `tracking.clickhouse` set, where shipped events live), with the
/// same definitions and the same answers as the spool's ``VisitAggregator``: ClickHouse counts, this rounds.
public struct ClickHouseInsights: Sendable {
    /// Runs one read query and returns ClickHouse's answer in `TabSeparated`.
    public typealias Run = @Sendable (_ sql: String) async throws -> String

    public let database: String
    public let table: String
    let run: Run

    /// `concurrency`: statements of one report sent at once (a dashboard has about twenty; more at once only
    /// queue in ClickHouse and in the client's connection pool).
    public init(database: String, table: String, concurrency: Int = 4, run: @escaping Run) {
        self.database = database
        self.table = table
        let permits = StatementPermits(count: concurrency)
        self.run = { sql in
            await permits.acquire()
            defer { Task { await permits.release() } }
            return try await run(sql)
        }
    }

    /// The statements for the tables as they are (the time layout; whether the visits table exists yet); nil
    /// while the events table does not exist (nothing shipped yet).
    func statements() async throws -> InsightsSQL? {
        let visits = table + "_visits"
        let names = Set(
            try await run(
                "SELECT name FROM system.columns WHERE database = \(InsightsSQL.literal(database)) "
                    + "AND table = \(InsightsSQL.literal(table)) AND name IN ('ts', 'ts_ms') UNION ALL "
                    + "SELECT 'visits' FROM system.tables WHERE database = \(InsightsSQL.literal(database)) "
                    + "AND name = \(InsightsSQL.literal(visits))"
            ).split(separator: "\n").map(String.init))
        guard names.contains("ts") else { return nil }
        return InsightsSQL(
            table: "\(database).\(table)", dialect: names.contains("ts_ms") ? .legacy : .modern,
            visitsTable: names.contains("visits") ? "\(database).\(visits)" : nil)
    }

    /// The answer to `query`.
    public func evaluate(_ query: InsightsQuery) async throws -> InsightsResult {
        guard let sql = try await statements() else { return VisitAggregator(query: query).result() }
        return try await evaluate(query, by: query.dimension, metrics: query.metrics, sql: sql)
    }

    /// The dashboard of `query`: its panels' queries run side by side.
    public func dashboard(_ query: InsightsQuery, panels: [Dashboard.Panel] = Dashboard.panels(choosing: [:])) async throws -> Dashboard {
        var query = query
        query.interval = query.interval ?? Interval.suited(to: query.range)
        guard let sql = try await statements() else { return Dashboard.gather(query, panels: panels) { _, _ in } }
        var before = query
        before.range = query.range.previous
        before.interval = nil
        var panelQuery = query
        (panelQuery.interval, panelQuery.limit) = (nil, 10)
        let (current, previous, panelsAsked) = (query, before, panelQuery)
        // The panels first, pages (counted from the events, the slowest) ahead: statements take their turns in the
        // order they ask, so the longest starts early.
        async let panelResults = withThrowingTaskGroup(of: (Int, InsightsResult).self) { group in
            for (index, panel) in panels.enumerated().sorted(by: { ($0.element.dimension == .page ? 0 : 1) < ($1.element.dimension == .page ? 0 : 1) }) {
                group.addTask {
                    // A panel shows its rows; the totals are the headline's.
                    (index, try await evaluate(panelsAsked, by: panel.dimension, metrics: panel.metrics, sql: sql, totals: false))
                }
            }
            var results = [InsightsResult?](repeating: nil, count: panels.count)
            for try await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
        async let headline = evaluate(current, by: nil, metrics: Metric.headline, sql: sql)
        async let comparison = evaluate(previous, by: nil, metrics: Metric.headline, sql: sql)
        async let edge = edgeReport(site: current.site, range: current.range, sql: sql)
        async let activity = activity(site: current.site, range: current.range, includeBots: current.includeBots, sql: sql)
        let panels = try await panelResults
        return Dashboard(
            current: try await headline, previous: try await comparison, panels: panels, edge: try await edge,
            activity: try await activity)
    }

    func evaluate(_ query: InsightsQuery, by dimension: Dimension?, metrics: [Metric], sql: InsightsSQL, totals wanted: Bool = true)
        async throws -> InsightsResult
    {
        var query = query
        (query.dimension, query.metrics) = (dimension, metrics)
        let asked = query
        // With a series, its statement brings the totals too.
        let totalsApart = wanted && asked.interval == nil
        async let totals: String = totalsApart ? run(sql.totals(asked)) : ""
        async let series: String? = {
            guard let interval = asked.interval else { return nil }
            return try await run(sql.series(asked, interval: interval, totals: wanted))
        }()
        var rows: [InsightsResult.Row] = []
        if let dimension {
            var counts: [(key: String, counts: VisitCounts)] = []
            if dimension.isVisitLevel {
                counts = Self.counts(try await run(sql.byVisit(asked, dimension: dimension, metrics: metrics)))
            } else {
                counts = try await eventRows(asked, dimension: dimension, sql: sql)
            }
            rows = counts.map { InsightsResult.Row(key: $0.key, values: metrics.map($0.counts.value)) }
        }
        var totalText = try await totals
        var points: [InsightsResult.Point] = []
        if let interval = query.interval, var text = try await series {
            if wanted { (text, totalText) = Self.splittingTotals(text) }
            let steps = Dictionary(Self.counts(text).map { (Int64($0.key) ?? 0, $0.counts) }) { first, _ in first }
            var step = interval.start(of: query.range.start)
            while step < query.range.end && points.count < 10_000 {
                points.append(InsightsResult.Point(start: step, values: metrics.map { (steps[step] ?? VisitCounts()).value($0) }))
                step = interval.next(after: step)
            }
        }
        return InsightsResult(
            query: query, rows: Array(InsightsResult.ordered(rows).prefix(query.limit)),
            totals: wanted ? metrics.map((Self.counts(totalText).first?.counts ?? VisitCounts()).value) : metrics.map { _ in nil },
            series: points, truncated: false)
    }

    /// Rows by `page` or `event`: visitors, visits and occurrences, with the outcomes of the visits that entered
    /// on the page (or had the event) when the metrics need them.
    private func eventRows(_ query: InsightsQuery, dimension: Dimension, sql: InsightsSQL) async throws
        -> [(key: String, counts: VisitCounts)]
    {
        let needsOutcomes = query.metrics.contains { $0 == .bounceRate || $0 == .visitDuration }
        async let outcomeText = needsOutcomes ? run(sql.outcomes(query, dimension: dimension)) : ""
        let occurrences = Self.table(try await run(sql.byEvent(query, dimension: dimension, metrics: query.metrics)))
        var outcomes: [String: [Int64]] = [:]
        for row in Self.table(try await outcomeText) where row.count == 5 { outcomes[row[0]] = row.dropFirst().map { Int64($0) ?? 0 } }
        return occurrences.compactMap { row in
            guard row.count == 4 else { return nil }
            let numbers = row.dropFirst().map { Int($0) ?? 0 }
            let outcome = outcomes[row[0]] ?? [0, 0, 0, 0]
            return (
                row[0],
                VisitCounts(
                    visitors: numbers[0], visits: numbers[1], pageviews: dimension == .page ? numbers[2] : 0,
                    events: dimension == .page ? 0 : numbers[2], viewedVisits: Int(outcome[0]), bounces: Int(outcome[1]),
                    outcomes: Int(outcome[2]), durationMilliseconds: outcome[3])
            )
        }
    }

    private func edgeReport(site: String, range: TimeRange, sql: InsightsSQL) async throws -> EdgeReport {
        async let upstreamText = run(sql.edgeUpstreams(site: site, range: range))
        async let topText = run(sql.edgeTops(site: site, range: range))
        var report = EdgeReport()
        var classes: [(key: String, count: Int)] = []
        for row in Self.table(try await run(sql.edgeCounts(site: site, range: range))) where row.count == 5 {
            let numbers = row.dropFirst().map { Int($0) ?? 0 }
            report.requests += numbers[0]
            classes.append((key: "\(row[0])xx", count: numbers[0]))
            report.refused += numbers[1]
            report.rateLimited += numbers[2]
            report.rateLimitDryRun += numbers[3]
        }
        report.statusClasses = EdgeReport.largest(classes)
        for row in Self.table(try await topText) where row.count == 3 {
            let entry = (key: row[1], count: Int(row[2]) ?? 0)
            switch row[0] {
            case "404": report.notFound.append(entry)
            case "5xx": report.serverErrors.append(entry)
            default: report.machines.append(entry)
            }
        }
        for row in Self.table(try await upstreamText) where row.count == 4 {
            func milliseconds(_ text: String) -> Double { ((Double(text) ?? 0) / 100).rounded() / 10 }
            report.upstreams.append((row[0], Int(row[1]) ?? 0, milliseconds(row[2]), milliseconds(row[3])))
        }
        return report
    }

    /// Rows of a counting statement: the key, then ``VisitCounts``' eight numbers.
    static func counts(_ text: String) -> [(key: String, counts: VisitCounts)] {
        table(text).compactMap { row in
            guard row.count == 9 else { return nil }
            let numbers = row.dropFirst().map { Int64($0) ?? Int64(Double($0) ?? 0) }
            return (
                row[0],
                VisitCounts(
                    visitors: Int(numbers[0]), visits: Int(numbers[1]), pageviews: Int(numbers[2]), events: Int(numbers[3]),
                    viewedVisits: Int(numbers[4]), bounces: Int(numbers[5]), outcomes: Int(numbers[6]),
                    durationMilliseconds: numbers[7])
            )
        }
    }

    /// The rows and the totals' row of a `WITH TOTALS` answer, which `TabSeparated` parts with an empty line (the
    /// first line when there is no row).
    static func splittingTotals(_ text: String) -> (rows: String, totals: String) {
        if text.hasPrefix("\n") { return ("", String(text.dropFirst())) }
        guard let blank = text.range(of: "\n\n") else { return (text, "") }
        return (String(text[..<blank.lowerBound]), String(text[blank.upperBound...]))
    }

    /// `TabSeparated` text as rows of unescaped fields.
    static func table(_ text: String) -> [[String]] {
        text.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            line.split(separator: "\t", omittingEmptySubsequences: false).map(unescape)
        }
    }

    /// A `TabSeparated` field's text (ClickHouse escapes tabs, newlines and backslashes).
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var text = ""
        var escaping = false
        for character in field {
            if escaping {
                switch character {
                case "n": text.append("\n")
                case "t": text.append("\t")
                case "r": text.append("\r")
                case "0": text.append("\0")
                case "b": text.append("\u{8}")
                case "f": text.append("\u{c}")
                default: text.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                text.append(character)
            }
        }
        return text
    }
}

extension ClickHouseInsights {
    /// Reports from the events table of `configuration` (the `Distributed` table in cluster mode), through `client`.
    public init(client: ClickHouseClient, configuration: ClickHouseConfiguration, logger: Logger) {
        self.init(database: configuration.database, table: configuration.table) { sql in
            // Read-only, and bounded: a report never writes, and a runaway one stops at ClickHouse's own limits.
            let started = ContinuousClock.now
            let answer = try await client.query(sql + " SETTINGS readonly = 2", logger: logger)
            logger.debug("insights: \(ContinuousClock.now - started) for \(sql.prefix(200))")
            return answer
        }
    }
}

/// At most a number of statements in flight; the others wait their turn, first come first served.
actor StatementPermits {
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { available = max(1, count) }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            available += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
