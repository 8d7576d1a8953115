extension InsightsSQL {
    /// The edge's counts for a site and range, as ``EdgeAggregator`` makes them: rows of (tag, key, count) for
    /// tags `status` (classes), `404` and `5xx` (paths), `machine` (reasons), `refused`; ten keys a tag at most.
    /// Refusals before routing belong to no site and count for every site's report.
    public func edgeCounts(site: String, range: TimeRange) -> String {
        let page = Self.page
        let tags = [
            "('status', concat(toString(intDiv(status, 100)), 'xx'))", "(if(status = 404, '404', ''), \(page))",
            "(if(status >= 500, '5xx', ''), \(page))", "(if(bot_reason != '', 'machine', ''), bot_reason)",
            "(if(kind = 'refused', 'refused', ''), '')",
            "(if(etyp IN ('\(EdgeAggregator.rateLimitedType)', '\(EdgeAggregator.rateLimitDryRunType)'), 'limit', ''), etyp)",
        ]
        let conditions = (["(site = \(Self.literal(site)) OR kind = 'refused')"] + timeConditions(range)).joined(separator: " AND ")
        return "SELECT pair.1 AS tag, pair.2 AS key, count() AS requests FROM \(table) "
            + "ARRAY JOIN arrayFilter(x -> x.1 != '', [\(tags.joined(separator: ", "))]) AS pair WHERE \(conditions) "
            + "GROUP BY tag, key ORDER BY tag, requests DESC, key LIMIT 10 BY tag"
    }

    /// The ten busiest upstreams of a site and range: upstream, requests, median and 95th percentile latency in
    /// microseconds.
    public func edgeUpstreams(site: String, range: TimeRange) -> String {
        let conditions = (["site = \(Self.literal(site))", "upstream != ''"] + timeConditions(range)).joined(separator: " AND ")
        return "SELECT upstream, count() AS requests, quantileExact(0.5)(upstream_us), quantileExact(0.95)(upstream_us) "
            + "FROM \(table) WHERE \(conditions) GROUP BY upstream ORDER BY requests DESC, upstream LIMIT 10"
    }
}
