extension InsightsSQL {
    /// The ``ActivityReport`` of a site and period in one statement (as ``ActivityAggregator`` counts): rows of
    /// tag (a ``ActivityReport/Table``), key, people's count, distinct visitors, machines, previews, revenue; ten
    /// rows a table.
    public func activity(site: String, range: TimeRange, includeBots: Bool) -> String {
        func label(_ expression: String, _ table: ActivityReport.Table) -> String {
            "if(\(expression) = '', \(Self.literal(table.emptyLabel)), \(expression))"
        }
        let custom = "kind IN ('track', 'server_track', 'ltv')" + (includeBots ? "" : " AND \(Self.people)")
        let tags = [
            "(if(kind = 'link_click', 'links', ''), \(label("ename", .links)))",
            "(if(kind = 'link_click' AND \(Self.people), 'link_referrers', ''), \(label("referrer_host", .linkReferrers)))",
            "(if(kind = 'link_click' AND \(Self.people), 'link_countries', ''), \(label("country", .linkCountries)))",
            "(if(kind = 'pixel_open', 'pixels', ''), \(label("ename", .pixels)))",
            "(if(\(custom), 'events', ''), \(label("ename", .events)))",
            "(if(\(custom), 'event_types', ''), \(label("etyp", .eventTypes)))",
            "(if(\(custom) AND revenue != 0, 'revenue', ''), \(label("upper(currency)", .revenue)))",
        ]
        // Custom events are people's unless machines were asked for; clicks and opens keep machines apart.
        let people = "(\(Self.people) OR pair.1 IN ('events', 'event_types', 'revenue'))"
        let conditions = (["site = \(Self.literal(site))", "kind IN ('link_click', 'pixel_open', 'track', 'server_track', 'ltv')"]
            + timeConditions(range)).joined(separator: " AND ")
        return "SELECT pair.1 AS tag, pair.2 AS key, countIf(\(people)) AS people_count, \(Self.distinct("vid", if: people)), "
            + "countIf(NOT \(people)) AS machines, countIf(NOT \(people) AND bot_reason = 'link_preview'), "
            + "sumIf(revenue, \(people)) FROM \(table) "
            + "ARRAY JOIN arrayFilter(x -> x.1 != '', [\(tags.joined(separator: ", "))]) AS pair WHERE \(conditions) "
            + "GROUP BY tag, key ORDER BY tag, people_count DESC, machines DESC, key LIMIT 10 BY tag"
    }
}

extension ClickHouseInsights {
    /// The ``ActivityReport`` of a site and period.
    public func activity(site: String, range: TimeRange, includeBots: Bool) async throws -> ActivityReport {
        guard let sql = try await statements() else { return ActivityReport() }
        return try await activity(site: site, range: range, includeBots: includeBots, sql: sql)
    }

    func activity(site: String, range: TimeRange, includeBots: Bool, sql: InsightsSQL) async throws -> ActivityReport {
        var report = ActivityReport()
        for row in Self.table(try await run(sql.activity(site: site, range: range, includeBots: includeBots))) where row.count == 7 {
            guard let table = ActivityReport.Table(rawValue: row[0]) else { continue }
            let numbers = row[2...5].map { Int($0) ?? 0 }
            report.tables[table, default: []].append(
                ActivityReport.Row(
                    key: row[1], count: numbers[0], people: numbers[1], machines: numbers[2], previews: numbers[3],
                    amount: Double(row[6]) ?? 0))
        }
        for (table, rows) in report.tables { report.tables[table] = ActivityReport.ordered(rows, limit: 10) }
        return report
    }
}
