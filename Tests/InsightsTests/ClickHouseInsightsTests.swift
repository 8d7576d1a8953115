import Testing

@testable import Insights

/// The statements' pieces and the reading of ClickHouse's answers; the statements themselves run against real
/// servers in the integration suite (InsightsKnownTruthTests).
struct ClickHouseInsightsTests {
    @Test func literalsAndTSVFieldsRoundTripAwkwardText() {
        #expect(InsightsSQL.literal("it's a \\ path\twith\nlines") == #"'it\'s a \\ path\twith\nlines'"#)
        #expect(ClickHouseInsights.unescape(#"a\tb\\c\nd"#) == "a\tb\\c\nd")
        #expect(ClickHouseInsights.table("x\t1\n\\N\t2\n") == [["x", "1"], ["N", "2"]])
    }

    @Test func filtersBecomeConditionsOnTheLabeledValue() {
        #expect(InsightsSQL.condition(Filter(.country, .is, ["FR", "DE"]), on: "c") == "c IN ('FR', 'DE')")
        #expect(InsightsSQL.condition(Filter(.country, .isNot, ["FR"]), on: "c") == "c NOT IN ('FR')")
        #expect(InsightsSQL.condition(Filter(.page, .contains, ["/blog", "/news"]), on: "p") == "(position(p, '/blog') > 0 OR position(p, '/news') > 0)")
        #expect(InsightsSQL.labeled("utm_source", .utmSource) == "if(utm_source = '', '(none)', utm_source)")
    }

    @Test func timeBoundsUseWholeSecondsAndMillisecondsOnlyWhenNeeded() {
        let sql = InsightsSQL(table: "db.events", dialect: .legacy)
        #expect(sql.timeConditions(TimeRange(start: 1_000_000, end: 2_000_000)) == [
            "ts >= toDateTime(1000, 'UTC')", "ts < toDateTime(2000, 'UTC')",
        ])
        let odd = sql.timeConditions(TimeRange(start: 1_000_500, end: 2_000_001))
        #expect(odd.contains("ts >= toDateTime(1000, 'UTC')") && odd.contains("ts < toDateTime(2001, 'UTC')"))
        #expect(odd.contains("(toUInt64(ts) * 1000 + ts_ms) >= 1000500") && odd.contains("(toUInt64(ts) * 1000 + ts_ms) < 2000001"))
        #expect(InsightsSQL(table: "db.events", dialect: .modern).time == "toUnixTimestamp64Milli(ts)")
    }

    /// Answers as ClickHouse gives them become the same metrics (rounded, ordered, limited) the spool's give.
    @Test func answersAreRoundedAndOrderedAsTheSpoolsAre() async throws {
        let insights = ClickHouseInsights(database: "db", table: "events") { sql in
            if sql.hasPrefix("SELECT name FROM system.columns") { return "ts\nts_ms\n" }
            if sql.hasPrefix("SELECT '',") { return "\t10\t12\t30\t2\t11\t5\t12\t600000\n" }
            // key, visitors, visits, pageviews, events, viewed, bounces, outcomes, duration
            return "google.com\t4\t5\t9\t0\t5\t2\t5\t100000\nt.co\t4\t4\t4\t0\t4\t4\t4\t0\nbing.com\t1\t1\t1\t0\t1\t1\t1\t0\n"
        }
        var query = InsightsQuery(site: "s", range: TimeRange(start: 0, end: 86_400_000), dimension: .source,
                                  metrics: [.visitors, .bounceRate, .visitDuration, .viewsPerVisit], limit: 2)
        var result = try await insights.evaluate(query)
        #expect(result.rows.map(\.key) == ["google.com", "t.co"], "ties by key, then the limit")
        #expect(result.rows[0].values == [4, 40, 20, 1.8])
        #expect(result.totals == [10, 45, 50, 2.5])
        query.dimension = nil
        query.interval = .day
        result = try await insights.evaluate(query)
        #expect(result.series.count == 1 && result.rows.isEmpty)
    }

    /// A series brings the totals in the same statement (`WITH TOTALS`), with steps or without any.
    @Test func aSeriesCarriesItsTotals() async throws {
        let day: Int64 = 86_400_000
        let insights = ClickHouseInsights(database: "db", table: "events") { sql in
            if sql.hasPrefix("SELECT name FROM system.columns") { return "ts\nts_ms\nvisits\n" }
            #expect(sql.contains("WITH TOTALS"), "no statement of the totals apart: \(sql)")
            if sql.contains("site = 'quiet'") { return "\n0\t0\t0\t0\t0\t0\t0\t0\t0\n" }
            return "0\t3\t4\t6\t0\t4\t2\t4\t0\n\(day)\t2\t2\t2\t0\t2\t2\t2\t0\n\n0\t4\t6\t8\t0\t6\t4\t6\t0\n"
        }
        var query = InsightsQuery(site: "s", range: TimeRange(start: 0, end: 2 * day), metrics: [.visitors, .visits])
        query.interval = .day
        var result = try await insights.evaluate(query)
        #expect(result.totals == [4, 6], "visitors are not the sum of the days'")
        #expect(result.series.map(\.values) == [[3, 4], [2, 2]])
        query.site = "quiet"
        result = try await insights.evaluate(query)
        #expect(result.totals == [0, 0] && result.series.map(\.values) == [[0, 0], [0, 0]])
        #expect(ClickHouseInsights.splittingTotals("1\t2\n\n3\t4\n") == ("1\t2", "3\t4\n"))
    }

    @Test func aTableNotYetMadeAnswersNothingRatherThanFailing() async throws {
        let insights = ClickHouseInsights(database: "db", table: "events") { _ in "" }
        let result = try await insights.evaluate(InsightsQuery(site: "s", range: TimeRange(start: 0, end: 1000)))
        #expect(result.totals.first == 0)
    }
}
