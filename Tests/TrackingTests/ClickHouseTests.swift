import NIOCore
import Testing

@testable import Tracking

@Suite struct ClickHouseTests {
    /// The expected RowBinary bytes, built field by field the slow way.
    func expectedRow(_ event: TrackingEvent, dialect: EventSchema.Dialect) -> [UInt8] {
        var out = ByteBuffer()
        func string(_ text: String) {
            out.writeVarint(UInt64(text.utf8.count))
            out.writeString(text)
        }
        out.writeInteger(event.id.high, endianness: .little)
        out.writeInteger(event.id.low, endianness: .little)
        if dialect == .modern {
            out.writeInteger(event.timeMilliseconds, endianness: .little)
        } else {
            out.writeInteger(UInt32(event.timeMilliseconds / 1000), endianness: .little)
            out.writeInteger(UInt16(event.timeMilliseconds % 1000), endianness: .little)
        }
        for text in [event.site, event.host, event.kind.name, event.method, event.scheme, String(event.path),
                     String(event.query)] { string(text) }
        out.writeInteger(UInt16(event.status), endianness: .little)
        for value in [event.bytesIn, event.bytesOut, event.durationMicroseconds] {
            out.writeInteger(UInt64(value), endianness: .little)
        }
        string(event.upstream)
        out.writeInteger(UInt64(event.upstreamMicroseconds), endianness: .little)
        for text in [event.referrer, event.userAgent, event.httpVersion, event.tlsVersion, event.requestID.description,
                     event.clientAddress, event.eventName, event.eventType, event.visitorID, event.sessionID] { string(text) }
        out.writeInteger(UInt8(event.sessionStart ? 1 : 0))
        for text in [event.userID, event.browser, event.browserVersion, event.os, event.osVersion, event.device,
                     event.botReason, event.country, event.region, event.city] { string(text) }
        for value in [event.latitude, event.longitude] {
            if let value {
                out.writeInteger(UInt8(0))
                out.writeInteger(value.bitPattern, endianness: .little)
            } else {
                out.writeInteger(UInt8(1))
            }
        }
        for text in [event.referrerHost, event.sourceCategory, event.utmSource, event.utmMedium, event.utmCampaign,
                     event.utmTerm, event.utmContent, event.clickID] { string(text) }
        out.writeInteger(event.consentFlags, endianness: .little)
        out.writeInteger(event.revenue.bitPattern, endianness: .little)
        string(event.currency)
        string(event.properties)
        string(event.channel)
        string(event.sessionChannel)
        for value in [event.orgID, event.org, event.experimentID, event.variant, event.threadID] { string(value) }
        return Array(out.readableBytesView)
    }

    /// A version 1 record (before enrichment) still ships, with its whole address truncated on the way.
    @Test(arguments: [EventSchema.Dialect.legacy, .modern])
    func versionOneRecordsStillShip(dialect: EventSchema.Dialect) throws {
        var v1 = EventTests.versionOneRecord(EventTests.plainEvent)
        var row = ByteBuffer()
        try RowBinaryWriter(dialect: dialect).writeRow(record: v1, into: &row)
        var expected = EventTests.plainEvent
        expected.clientAddress = "203.0.113.0"
        #expect(Array(row.readableBytesView) == expectedRow(expected, dialect: dialect))
        let decoded = try EventRecord.decode(v1)
        #expect(decoded == expected)
        v1.setInteger(UInt8(3), at: v1.readerIndex)
        #expect(throws: EventRecord.DecodingError.self) { try EventRecord.decode(v1) }
    }

    @Test(arguments: [EventSchema.Dialect.legacy, .modern])
    func recordsBecomeRowsInTheTablesColumnOrder(dialect: EventSchema.Dialect) throws {
        for event in [EventTests.event, { var e = EventTests.event; e.target = "/no-query"; e.clientAddress = "2001:db8:1::"; e.latitude = nil; e.longitude = nil; return e }()] {
            var record = ByteBuffer()
            EventRecord.encode(event, into: &record)
            var row = ByteBuffer()
            try RowBinaryWriter(dialect: dialect).writeRow(record: record, into: &row)
            #expect(Array(row.readableBytesView) == expectedRow(event, dialect: dialect))
        }
        var truncated = ByteBuffer()
        EventRecord.encode(EventTests.event, into: &truncated)
        var row = ByteBuffer()
        #expect(throws: EventRecord.DecodingError.self) {
            try RowBinaryWriter(dialect: dialect).writeRow(record: truncated.getSlice(at: 0, length: 50)!, into: &row)
        }
    }

    @Test func theSchemaFollowsTheServer() {
        #expect(EventSchema.Dialect(version: "18.16.1") == .legacy)
        #expect(EventSchema.Dialect(version: "24.8.4.13") == .modern)
        let legacy = EventSchema(dialect: .legacy, database: "vantage", table: "events", retentionDays: 30)
        let modern = EventSchema(dialect: .modern, database: "vantage", table: "events", retentionDays: 30)
        #expect(legacy.columns.map(\.name).contains("ts_ms"))
        #expect(!modern.columns.map(\.name).contains("ts_ms"))
        #expect(!legacy.createStatements()[1].contains("LowCardinality") && !legacy.createStatements()[1].contains("TTL"))
        #expect(modern.createStatements()[1].contains("DateTime64(3, 'UTC')"))
        #expect(modern.createStatements()[1].contains("TTL toDateTime(ts) + INTERVAL 30 DAY"))
        #expect(modern.insertQuery.hasPrefix("INSERT INTO vantage.events (id, ts, site,"))
        #expect(!modern.insertQuery.contains("url"), "the URL is an ALIAS, computed on read")
        #expect(legacy.createStatements()[1].contains("url String ALIAS concat(scheme, '://', host, path)"))
        let cluster = EventSchema(dialect: .modern, database: "a", table: "e", cluster: "main")
        let statements = cluster.createStatements()
        #expect(statements.count == 3)
        #expect(statements[0] == "CREATE DATABASE IF NOT EXISTS a ON CLUSTER main")
        #expect(statements[1].contains("CREATE TABLE IF NOT EXISTS a.e_local ON CLUSTER main"))
        #expect(statements[1].contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/a/e_local', '{replica}')"))
        #expect(statements[2].contains("ENGINE = Distributed(main, a, e_local, cityHash64(id))"))

        // The visits table: signed rows of one visit meet on one shard, and are folded by version.
        let visits = cluster.createVisitsStatements()
        #expect(visits[0].contains("CREATE TABLE IF NOT EXISTS a.e_visits_local ON CLUSTER main"))
        #expect(visits[0].contains("ReplicatedVersionedCollapsingMergeTree('/clickhouse/tables/{shard}/a/e_visits_local', '{replica}', sign, version)"))
        #expect(visits[1].contains("ENGINE = Distributed(main, a, e_visits_local, cityHash64(visit))"))
        #expect(modern.createVisitsStatements()[0].contains("TTL start + INTERVAL 30 DAY"))
        #expect(!legacy.createVisitsStatements()[0].contains("LowCardinality"))
        #expect(legacy.backfillVisitsStatements(parts: 4).count == 4)
        #expect(legacy.backfillVisitsStatements(parts: 4)[3].contains("% 4 = 3"))
        #expect(modern.insertVisitsQuery.hasPrefix("INSERT INTO vantage.events_visits (site, visit, visitor, visitor_hash, start_ms,"))
        #expect(legacy.migrations(after: 3).map(\.version) == [4, 5])
        // Version 5 adds the tenancy columns after session_channel, only those missing (a rerun after a crash).
        let tenancy = legacy.migrations(after: 4)[0].statements(["oid", "org"])
        #expect(tenancy.count == 3 && tenancy[0].contains("ADD COLUMN xid String AFTER org"), "\(tenancy)")
    }

    @Test func endpointsAndBackoff() {
        #expect(ClickHouseEndpoint("http://127.0.0.1:8123")?.description == "http://127.0.0.1:8123")
        #expect(ClickHouseEndpoint("https://ch.example.com")?.port == 8443)
        #expect(ClickHouseEndpoint("http://[::1]:9000/")?.isLoopback == true)
        #expect(ClickHouseEndpoint("ftp://x") == nil && ClickHouseEndpoint("http://") == nil && ClickHouseEndpoint("http://h:0") == nil)
        var backoff = Backoff(minimum: .milliseconds(100), maximum: .seconds(1))
        let waits = (0..<8).map { _ in backoff.next().nanoseconds }
        #expect(waits[0] >= 50_000_000 && waits[0] <= 100_000_000)
        #expect(waits.allSatisfy { $0 <= 1_000_000_000 })
        #expect(waits[7] >= 500_000_000, "the window doubled up to the maximum")
        backoff.reset()
        #expect(backoff.next().nanoseconds <= 100_000_000)
    }
}

extension ByteBuffer {
    /// Unsigned LEB128, written the slow way for expected rows.
    mutating func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        writeInteger(UInt8(value))
    }
}
