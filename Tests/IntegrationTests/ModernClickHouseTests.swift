import Foundation
import Testing

/// The modern schema dialect against a current ClickHouse: chdb (ClickHouse embedded, from PyPI) behind a small
/// stand-in for the HTTP interface (`Backends/chdb_server.py`). Debian only packages 18.16, which the other suite
/// covers.
@Suite(.serialized) struct ModernClickHouseTests {
    @Test func eventsLandInADateTime64TableWithLowCardinalityAndTTL() throws {
        let chdb = try ChdbServer()
        let endpoint = chdb.endpoint
        func query(_ sql: String) throws -> String { try chdb.query(sql) }

        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, respond: "ok" }
            access_log: off
            admin: { listen: "127.0.0.1:0" }
            tracking:
              spool: { dir: "{{DIR}}/spool" }
              clickhouse:
                endpoints: ["\(endpoint)"]
                database: modern
                flush_interval: 200ms
                retention: 30d
            """, expect: ["http", "admin"])
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        for index in 0..<50 {
            _ = try curl(["-s", vantage.url("/page?n=\(index)"), "-H", "X-Request-Id: modern-\(index)", "-A", "TestAgent/1"])
        }
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (try? query("SELECT count() FROM modern.events")) != "50" {
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(try query("SELECT count() FROM modern.events") == "50", "\(vantage.log)")
        let create = try query("SHOW CREATE TABLE modern.events")
        #expect(create.contains("DateTime64(3, \\'UTC\\')"), "\(create)")
        #expect(create.contains("LowCardinality(String)"))
        #expect(create.contains("TTL toDateTime(ts) + toIntervalDay(30)"))
        #expect(create.contains("ReplacingMergeTree"))
        let times = try query("SELECT min(toUnixTimestamp64Milli(ts)), max(toUnixTimestamp64Milli(ts)) FROM modern.events")
            .split(separator: "\t").compactMap { Int64($0) }
        #expect(times.count == 2 && times[0] >= before - 1000 && times[1] <= after + 1000, "times \(times) within [\(before), \(after)]")
        #expect(try query("SELECT path, query, url, status, user_agent, client_ip, kind FROM modern.events WHERE request_id = 'modern-7'")
            == "/page\tn=7\thttp://\(vantage.url("").dropFirst(7))/page\t200\tTestAgent/1\t127.0.0.0\trequest")
        #expect(try query("SELECT countIf(substring(toString(id), 15, 1) = '7') FROM modern.events") == "50", "UUIDv7 ids")
        #expect(try query("SELECT max(version) FROM modern.vantage_schema_migrations") == "5")
        #expect(create.range(of: #"browser`? LowCardinality\(String\)"#, options: .regularExpression) != nil && create.contains("Nullable(Float64)"), "\(create)")
        #expect(try query("SELECT device, bot, bot_reason, length(vid), length(sid), session_start FROM modern.events WHERE request_id = 'modern-7'")
            == "other\t0\t\t13\t13\t0")
        #expect(vantage.log.contains("DateTime64 layout"))
        #expect(vantage.stop() == 0)
    }
}

extension FileHandle {
    /// The first line the process wrote (blocking until it comes).
    func availableDataOrLine() -> Data {
        var line = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { return line }
            line.append(byte)
        }
    }
}
