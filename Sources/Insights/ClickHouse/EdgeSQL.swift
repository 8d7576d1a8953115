extension InsightsSQL {
    /// The edge's counts for a site and range, as ``EdgeAggregator`` makes them, in one scan of small columns: per
    /// status class, the requests, those refused before routing, and those a rate limit refused or would have.
    /// Refusals before routing belong to no site and count for every site's report.
    public func edgeCounts(site: String, range: TimeRange) -> String {
        "SELECT intDiv(status, 100) AS class, count(), countIf(kind = 'refused'), "
            + "countIf(etyp = '\(EdgeAggregator.rateLimitedType)'), countIf(etyp = '\(EdgeAggregator.rateLimitDryRunType)') "
            + "FROM \(table) WHERE \(edgeConditions(site: site, range: range)) GROUP BY class"
    }

    /// The paths most often answered 404 and 5xx, and machines by reason: rows of tag (`404`, `5xx`, `machine`),
    /// key, count; ten a tag.
    public func edgeTops(site: String, range: TimeRange) -> String {
        let conditions = edgeConditions(site: site, range: range)
        return "SELECT * FROM (SELECT if(status >= 500, '5xx', '404') AS tag, \(Self.page) AS key, count() AS requests "
            + "FROM \(table) WHERE \(conditions) AND (status = 404 OR status >= 500) GROUP BY tag, key "
            + "ORDER BY tag, requests DESC, key LIMIT 10 BY tag) UNION ALL SELECT * FROM (SELECT 'machine' AS tag, "
            + "bot_reason AS key, count() AS requests FROM \(table) WHERE \(conditions) AND notEmpty(bot_reason) "
            + "GROUP BY key ORDER BY requests DESC, key LIMIT 10)"
    }

    private func edgeConditions(site: String, range: TimeRange) -> String {
        (["(site = \(Self.literal(site)) OR kind = 'refused')"] + timeConditions(range)).joined(separator: " AND ")
    }

    /// The ten busiest upstreams of a site and range: upstream, requests, median and 95th percentile latency in
    /// microseconds.
    public func edgeUpstreams(site: String, range: TimeRange) -> String {
        let conditions = (["site = \(Self.literal(site))", "upstream != ''"] + timeConditions(range)).joined(separator: " AND ")
        return "SELECT upstream, count() AS requests, quantileExact(0.5)(upstream_us), quantileExact(0.95)(upstream_us) "
            + "FROM \(table) WHERE \(conditions) GROUP BY upstream ORDER BY requests DESC, upstream LIMIT 10"
    }
}
