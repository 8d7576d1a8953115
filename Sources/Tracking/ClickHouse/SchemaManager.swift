import Logging

/// Brings the ClickHouse side to the schema this build writes: creates the database, the events table and the
/// migrations table, applies the versions not yet recorded, and works out the row layout of the table that exists
/// (a table made on ClickHouse 18.16 keeps its layout after a server upgrade).
public struct SchemaManager: Sendable {
    let client: ClickHouseClient
    let configuration: ClickHouseConfiguration

    public init(client: ClickHouseClient, configuration: ClickHouseConfiguration) {
        self.client = client
        self.configuration = configuration
    }

    /// Runs the migrations; returns the schema rows must follow.
    public func prepare(logger: Logger) async throws -> EventSchema {
        let version = try await client.query("SELECT version()", logger: logger).trimmingCharacters(in: .whitespacesAndNewlines)
        let serverDialect = EventSchema.Dialect(version: version)
        var schema = EventSchema(
            dialect: serverDialect, database: configuration.database, table: configuration.table,
            cluster: configuration.cluster, retentionDays: configuration.retentionDays)
        if configuration.retentionDays != nil && serverDialect == .legacy {
            logger.warning("clickhouse \(version) has no TTL: tracking.clickhouse.retention is ignored")
        }
        try await client.query(schema.createDatabase, logger: logger)
        try await client.query(schema.createMigrationsTable(), logger: logger)
        let applied = Int(
            try await client.query("SELECT max(version) FROM \(schema.migrationsTable)", logger: logger)
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        for migration in schema.migrations(after: applied) {
            let existing = try await client.query(
                "SELECT name FROM system.columns WHERE database = '\(schema.database)' AND table = '\(schema.table)'",
                logger: logger)
            let columns = Set(existing.split(separator: "\n").map(String.init))
            for statement in migration.statements(columns) { _ = try await client.query(statement, logger: logger) }
            _ = try await client.query(
                "INSERT INTO \(schema.migrationsTable) (version, applied_at, description) VALUES "
                    + "(\(migration.version), now(), '\(migration.description)')", logger: logger)
            logger.info("clickhouse: schema version \(migration.version) applied (\(migration.description))")
        }
        // The layout follows the table as it is, whatever the server is today.
        let tsType = try await client.query(
            "SELECT type FROM system.columns WHERE database = '\(schema.database)' AND table = '\(schema.table)' "
                + "AND name = 'ts'", logger: logger
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let tableDialect: EventSchema.Dialect = tsType.hasPrefix("DateTime64") ? .modern : .legacy
        if tableDialect != serverDialect {
            schema = EventSchema(
                dialect: tableDialect, database: schema.database, table: schema.table, cluster: schema.cluster,
                retentionDays: schema.retentionDays)
        }
        logger.info(
            "clickhouse \(version) at \(client.endpoint): writing to \(schema.qualifiedTable) (\(tableDialect == .modern ? "DateTime64" : "DateTime + ts_ms") layout)")
        return schema
    }
}
