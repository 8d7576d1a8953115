extension InsightsSQL {
    /// The edge's counts for a site and range, as ``EdgeAggregator`` makes them: rows of (tag, key, count) for
    /// tags `status` (classes), `404` and `5xx` (paths), `machine` (reasons), `refused`; ten keys a tag at most.
    /// Refusals before routing belong to no site and count for every site's report.
    public func edgeCounts(site: String, range: TimeRange) -> String {
        let conditions = (["(site = \(Self.literal(site)) OR kind = 'refused')"] + timeConditions(range)).joined(separator: " AND ")
        // One simple part a tag (each reads only its columns, most of them a small share of the rows), run side
        // by side as one statement.
        let parts: [(tag: String, key: String, only: String)] = [
            ("status", "concat(toString(intDiv(status, 100)), 'xx')", "1"),
            ("404", Self.page, "status = 404"),
            ("5xx", Self.page, "status >= 500"),
            ("machine", "bot_reason", "bot_reason != ''"),
            ("refused", "''", "kind = 'refused'"),
            ("limit", "etyp", "etyp IN ('\(EdgeAggregator.rateLimitedType)', '\(EdgeAggregator.rateLimitDryRunType)')"),
        ]
        return parts.map { part in
            "SELECT * FROM (SELECT '\(part.tag)' AS tag, \(part.key) AS key, count() AS requests FROM \(table) "
                + "WHERE \(conditions) AND \(part.only) GROUP BY key ORDER BY requests DESC, key LIMIT 10)"
        }.joined(separator: " UNION ALL ")
    }

    /// The ten busiest upstreams of a site and range: upstream, requests, median and 95th percentile latency in
    /// microseconds.
    public func edgeUpstreams(site: String, range: TimeRange) -> String {
        let conditions = (["site = \(Self.literal(site))", "upstream != ''"] + timeConditions(range)).joined(separator: " AND ")
        return "SELECT upstream, count() AS requests, quantileExact(0.5)(upstream_us), quantileExact(0.95)(upstream_us) "
            + "FROM \(table) WHERE \(conditions) GROUP BY upstream ORDER BY requests DESC, upstream LIMIT 10"
    }
}
