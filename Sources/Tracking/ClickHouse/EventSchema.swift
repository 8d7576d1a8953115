/// The events table and its migrations, in the dialect of the server at hand.
///
/// ClickHouse 18.16 (Debian's package) has no `DateTime64`, `LowCardinality` or `TTL`; current releases have all
/// three. The schema is one list of columns whose types depend on ``Dialect``; the time is `DateTime64(3)` where it
/// exists and `DateTime` plus a millisecond column where it does not. Rows are shipped as `RowBinary` in exactly
/// ``columns``' order; ``derivedColumns`` (the URL) are computed by ClickHouse when read.
public struct EventSchema: Sendable, Equatable {
    /// What the server supports.
    public enum Dialect: Sendable, Equatable {
        /// ClickHouse before 20.1: plain types only.
        case legacy
        /// ClickHouse 20.1 and later: DateTime64, LowCardinality, TTL.
        case modern

        /// The dialect for a `SELECT version()` answer such as `18.16.1` or `24.8.4.13`.
        public init(version: String) {
            let major = Int(version.split(separator: ".").first ?? "") ?? 0
            self = major >= 20 ? .modern : .legacy
        }
    }

    /// One column: its name and type.
    public struct Column: Sendable, Equatable {
        public var name: String
        public var type: String
    }

    public let dialect: Dialect
    public let database: String
    public let table: String
    public let cluster: String?
    public let retentionDays: Int?

    public init(dialect: Dialect, database: String, table: String, cluster: String? = nil, retentionDays: Int? = nil) {
        self.dialect = dialect
        self.database = database
        self.table = table
        self.cluster = cluster
        self.retentionDays = retentionDays
    }

    /// The newest schema version this build knows.
    public static let latestVersion = 5

    public var columns: [Column] {
        let modern = dialect == .modern
        let short = modern ? "LowCardinality(String)" : "String"
        var columns = [Column(name: "id", type: "UUID")]
        if modern {
            columns.append(Column(name: "ts", type: "DateTime64(3, 'UTC')"))
        } else {
            columns.append(Column(name: "ts", type: "DateTime('UTC')"))
            columns.append(Column(name: "ts_ms", type: "UInt16"))
        }
        columns += [
            Column(name: "site", type: short), Column(name: "host", type: short), Column(name: "kind", type: short),
            Column(name: "method", type: short), Column(name: "scheme", type: short), Column(name: "path", type: "String"),
            Column(name: "query", type: "String"),
            Column(name: "status", type: "UInt16"), Column(name: "bytes_in", type: "UInt64"),
            Column(name: "bytes_out", type: "UInt64"), Column(name: "duration_us", type: "UInt64"),
            Column(name: "upstream", type: short), Column(name: "upstream_us", type: "UInt64"),
            Column(name: "referrer", type: "String"), Column(name: "user_agent", type: "String"),
            Column(name: "http_version", type: short), Column(name: "tls_version", type: short),
            Column(name: "request_id", type: "String"), Column(name: "client_ip", type: "String"),
        ]
        return columns + enrichmentColumns + channelColumns + tenancyColumns
    }

    /// Version 5: the older tracker's tenancy and experiment fields (`oid`, `org`, `xid`, `split`, `tid`).
    public var tenancyColumns: [Column] {
        let short = dialect == .modern ? "LowCardinality(String)" : "String"
        return [
            Column(name: "oid", type: short), Column(name: "org", type: short), Column(name: "xid", type: short),
            Column(name: "split", type: short), Column(name: "tid", type: "String"),
        ]
    }

    /// Version 3: the channel grouping, of the event and of its session's first touch.
    public var channelColumns: [Column] {
        let short = dialect == .modern ? "LowCardinality(String)" : "String"
        return [Column(name: "channel", type: short), Column(name: "session_channel", type: short)]
    }

    /// Version 2: enrichment, visitors and sessions, and the tracking API's fields.
    public var enrichmentColumns: [Column] {
        let short = dialect == .modern ? "LowCardinality(String)" : "String"
        return [
            Column(name: "ename", type: "String"), Column(name: "etyp", type: short),
            Column(name: "vid", type: "String"), Column(name: "sid", type: "String"),
            Column(name: "session_start", type: "UInt8"), Column(name: "uid", type: "String"),
            Column(name: "browser", type: short), Column(name: "browser_version", type: short),
            Column(name: "os", type: short), Column(name: "os_version", type: short),
            Column(name: "device", type: short), Column(name: "bot_reason", type: short),
            Column(name: "country", type: short), Column(name: "region", type: short),
            Column(name: "city", type: short),
            Column(name: "lat", type: "Nullable(Float64)"), Column(name: "lon", type: "Nullable(Float64)"),
            Column(name: "referrer_host", type: short), Column(name: "source", type: short),
            Column(name: "utm_source", type: short), Column(name: "utm_medium", type: short),
            Column(name: "utm_campaign", type: short), Column(name: "utm_term", type: "String"),
            Column(name: "utm_content", type: "String"), Column(name: "click_id", type: "String"),
            Column(name: "cflags", type: "Int64"), Column(name: "revenue", type: "Float64"),
            Column(name: "currency", type: short), Column(name: "props", type: "String"),
        ]
    }

    /// Columns ClickHouse computes on read, so they cost nothing to ship or store.
    public var derivedColumns: [String] {
        ["url String ALIAS concat(scheme, '://', host, path)", "bot UInt8 ALIAS bot_reason != ''"]
    }

    /// `db.table` where rows are inserted (the Distributed table in cluster mode).
    public var qualifiedTable: String { "\(database).\(table)" }

    private var onCluster: String { cluster.map { " ON CLUSTER \($0)" } ?? "" }

    /// The table that holds the data: the events table itself, or its `_local` replicas in cluster mode.
    private var storageTable: String { cluster == nil ? table : table + "_local" }

    /// The database the tables live in (the migrations table too, so it is made first).
    public var createDatabase: String { "CREATE DATABASE IF NOT EXISTS \(database)\(onCluster)" }

    /// Statements that bring an empty server to version 1 (all idempotent).
    public func createStatements() -> [String] {
        let columnList = (columns.map { "    \($0.name) \($0.type)" } + derivedColumns.map { "    " + $0 })
            .joined(separator: ",\n")
        let engine: String
        if cluster != nil {
            engine = "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/\(database)/\(storageTable)', '{replica}')"
        } else {
            engine = "ReplacingMergeTree()"
        }
        var storage = """
            CREATE TABLE IF NOT EXISTS \(database).\(storageTable)\(onCluster)
            (
            \(columnList)
            )
            ENGINE = \(engine)
            PARTITION BY toYYYYMM(ts)
            ORDER BY (site, kind, ts, id)
            """
        if let retentionDays, dialect == .modern {
            storage += "\nTTL toDateTime(ts) + INTERVAL \(retentionDays) DAY"
        }
        var statements = [createDatabase, storage]
        if let cluster {
            // Sharded by event id, so a duplicate lands on the shard holding the original and merges away with it.
            statements.append(
                "CREATE TABLE IF NOT EXISTS \(database).\(table)\(onCluster) AS \(database).\(storageTable) "
                    + "ENGINE = Distributed(\(cluster), \(database), \(storageTable), cityHash64(id))")
        }
        return statements
    }

    /// The table that records applied schema versions.
    public var migrationsTable: String { "\(database).vantage_schema_migrations" }

    public func createMigrationsTable() -> String {
        "CREATE TABLE IF NOT EXISTS \(migrationsTable)\(onCluster) (version UInt32, applied_at DateTime, "
            + "description String) ENGINE = MergeTree() ORDER BY version"
    }

    /// One schema version: its statements, given the columns the events table has when it runs (ClickHouse 18.16
    /// has no `ADD COLUMN IF NOT EXISTS`, so a rerun after a crash between a statement and the version's record
    /// must skip what exists).
    public struct Migration: Sendable {
        public var version: Int
        public var description: String
        public var statements: @Sendable (_ existingColumns: Set<String>) -> [String]
    }

    /// The versions after `version`, in order.
    public func migrations(after version: Int) -> [Migration] {
        var all: [Migration] = []
        let create = createStatements()
        if version < 1 { all.append(Migration(version: 1, description: "events table") { _ in create }) }
        if version < 2 {
            // A table made by version 1 gets the new columns after `client_ip`, in row order (on a table made just
            // now they exist already).
            let tables = cluster == nil ? [storageTable] : [storageTable, table]
            all.append(Migration(version: 2, description: "enrichment, visitors, sessions, tracking API") { existing in
                var statements = addColumns(enrichmentColumns, after: "client_ip", existing: existing)
                // ClickHouse 18.16 cannot place an ALIAS column AFTER an ordinary one: it goes last.
                if !existing.contains("bot") {
                    for name in tables {
                        statements.append("ALTER TABLE \(database).\(name)\(onCluster) ADD COLUMN bot UInt8 ALIAS bot_reason != ''")
                    }
                }
                return statements
            })
        }
        if version < 3 {
            all.append(Migration(version: 3, description: "channel grouping") { existing in
                addColumns(channelColumns, after: "props", existing: existing)
            })
        }
        if version < 4 {
            // The visits of the events already stored are written once, as the shipper would have.
            let statements = createVisitsStatements() + backfillVisitsStatements()
            all.append(Migration(version: 4, description: "visits table") { _ in statements })
        }
        if version < 5 {
            all.append(Migration(version: 5, description: "tenancy and experiment fields") { existing in
                addColumns(tenancyColumns, after: "session_channel", existing: existing)
            })
        }
        return all
    }

    /// `ADD COLUMN` statements for those of `columns` the table lacks, in row order after `first` (on every table
    /// of a cluster).
    private func addColumns(_ columns: [Column], after first: String, existing: Set<String>) -> [String] {
        let tables = cluster == nil ? [storageTable] : [storageTable, table]
        var statements: [String] = []
        var previous = first
        for column in columns {
            if !existing.contains(column.name) {
                for name in tables {
                    statements.append(
                        "ALTER TABLE \(database).\(name)\(onCluster) ADD COLUMN \(column.name) \(column.type) AFTER \(previous)")
                }
            }
            previous = column.name
        }
        return statements
    }

    /// A mutation deleting the rows that match `condition` (on every replica's `_local` table in cluster mode).
    public func deleteStatement(where condition: String) -> String {
        "ALTER TABLE \(database).\(storageTable)\(onCluster) DELETE WHERE \(condition)"
    }

    /// The INSERT that `RowBinary` batches go to.
    public var insertQuery: String {
        "INSERT INTO \(qualifiedTable) (\(columns.map(\.name).joined(separator: ", "))) FORMAT RowBinary"
    }
}
