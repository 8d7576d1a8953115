/// The visits table: one row per visit (a session of a person), kept current by the shipper as the visit's events
/// arrive, so reports count visits, bounces and durations by summing rows instead of rebuilding every visit from its
/// events at each query (what makes a dashboard over millions of events answer in milliseconds).
///
/// Rows are versioned and signed (`VersionedCollapsingMergeTree(sign, version)`, as Plausible's sessions): a visit
/// that grows is written again as the old row with `sign = -1` and the new one with `sign = 1`, and ClickHouse folds
/// the pairs away as it merges; until then `sum(sign)`, `sum(sign * pageviews)` and the like are exact. Only people's
/// visits are here (machines have no sessions); values are stored as the events hold them (the reports' labels, such
/// as `Direct / None`, are applied on read).
extension EventSchema {
    /// The visit table's name.
    public var visitsTable: String { table + "_visits" }

    /// `db.table_visits`: where visit rows are inserted and read (the `Distributed` table in cluster mode).
    public var qualifiedVisitsTable: String { "\(database).\(visitsTable)" }

    /// The columns of a visit row, in `RowBinary` order.
    public var visitColumns: [Column] {
        let short = dialect == .modern ? "LowCardinality(String)" : "String"
        var columns = [
            Column(name: "site", type: short), Column(name: "visit", type: "String"), Column(name: "visitor", type: "String"),
            // SipHash-2-4 of the visitor id with a zero key, as ClickHouse's sipHash64: what reports count distinct
            // (a number is read and compared faster than a string).
            Column(name: "visitor_hash", type: "UInt64"),
            Column(name: "start_ms", type: "UInt64"), Column(name: "end_ms", type: "UInt64"),
            Column(name: "pageviews", type: "UInt32"), Column(name: "events", type: "UInt32"),
            Column(name: "entry_page", type: "String"), Column(name: "exit_page", type: "String"),
        ]
        for name in Self.visitDimensionColumns { columns.append(Column(name: name, type: short)) }
        columns += [Column(name: "sign", type: "Int8"), Column(name: "version", type: "UInt32")]
        return columns
    }

    /// The visit's landing values (its earliest event's), named as the events' columns; `channel` is the session's
    /// first touch and `source` the landing's referrer host ('' for internal navigation).
    public static let visitDimensionColumns = [
        "channel", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "country", "region",
        "city", "device", "browser", "browser_version", "os", "os_version",
    ]

    private var visitsStorageTable: String { cluster == nil ? visitsTable : visitsTable + "_local" }
    private var visitsOnCluster: String { cluster.map { " ON CLUSTER \($0)" } ?? "" }

    /// Statements that make the visits table (idempotent).
    public func createVisitsStatements() -> [String] {
        let columnList = visitColumns.map { "    \($0.name) \($0.type)" }.joined(separator: ",\n")
            + ",\n    start DateTime('UTC') MATERIALIZED toDateTime(intDiv(start_ms, 1000), 'UTC')"
        let engine: String
        if cluster != nil {
            engine = "ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/{shard}/\(database)/\(visitsStorageTable)', "
                + "'{replica}', sign, version)"
        } else {
            engine = "VersionedCollapsingMergeTree(sign, version)"
        }
        var storage = """
            CREATE TABLE IF NOT EXISTS \(database).\(visitsStorageTable)\(visitsOnCluster)
            (
            \(columnList)
            )
            ENGINE = \(engine)
            PARTITION BY toYYYYMM(start)
            ORDER BY (site, visit)
            """
        if let retentionDays, dialect == .modern { storage += "\nTTL start + INTERVAL \(retentionDays) DAY" }
        var statements = [storage]
        if let cluster {
            // Sharded by visit, so a row and the one that cancels it meet on one shard.
            statements.append(
                "CREATE TABLE IF NOT EXISTS \(qualifiedVisitsTable)\(visitsOnCluster) AS \(database).\(visitsStorageTable) "
                    + "ENGINE = Distributed(\(cluster), \(database), \(visitsStorageTable), cityHash64(visit))")
        }
        return statements
    }

    /// The visits of the events already in the table, as rows of version 1 (what the shipper would have written):
    /// run once, when the table is made, so reports cover the time before it. In `parts` statements, each for a
    /// share of the visits (by their key's hash): gathering every visit of a large table at once would need more
    /// memory than ClickHouse allows a query.
    public func backfillVisitsStatements(parts: Int = 32) -> [String] {
        (0..<parts).map { backfillVisitsStatement(part: $0, of: parts) }
    }

    private func backfillVisitsStatement(part: Int, of parts: Int) -> String {
        let time = dialect == .modern ? "toUnixTimestamp64Milli(ts)" : "(toUInt64(ts) * 1000 + ts_ms)"
        let page = "if(path = '', '/', path)"
        let landing: [String: String] = [
            "channel": "if(session_channel = '', channel, session_channel)",
            "source": "if(source = 'internal', '', referrer_host)",
        ]
        let dimensions = Self.visitDimensionColumns.map { "argMin(\(landing[$0] ?? $0), \(time))" }
        return "INSERT INTO \(qualifiedVisitsTable) (\(visitColumns.map(\.name).joined(separator: ", "))) "
            + "SELECT site, visit, argMin(vid, \(time)) AS visitor, sipHash64(visitor), min(\(time)), max(\(time)), "
            + "countIf(kind = 'pageview'), "
            + "countIf(kind != 'pageview'), argMinIf(\(page), \(time), kind = 'pageview'), "
            + "argMaxIf(\(page), \(time), kind = 'pageview'), \(dimensions.joined(separator: ", ")), 1, 1 "
            + "FROM \(qualifiedTable) WHERE kind IN ('pageview', 'track', 'server_track', 'ltv') AND bot_reason = '' "
            + "AND cityHash64(if(sid = '', concat('visitor:', vid), sid)) % \(parts) = \(part) "
            + "GROUP BY site, if(sid = '', concat('visitor:', vid), sid) AS visit"
    }

    /// The INSERT that visit rows go to.
    public var insertVisitsQuery: String {
        "INSERT INTO \(qualifiedVisitsTable) (\(visitColumns.map(\.name).joined(separator: ", "))) FORMAT RowBinary"
    }

    /// A mutation deleting a visitor's visits (erasure), on every replica's table in cluster mode.
    public func deleteVisitsStatement(visitor: String) -> String {
        "ALTER TABLE \(database).\(visitsStorageTable)\(visitsOnCluster) DELETE WHERE visitor = '\(visitor)'"
    }
}
