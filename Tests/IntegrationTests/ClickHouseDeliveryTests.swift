import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Events delivered into a real ClickHouse server (Debian's 18.16), counted exactly against requests answered.
@Suite(.serialized)
struct ClickHouseDeliveryTests {
    static func config(clickHouse: String, spool: String = "segment_size: 1MB", clickHouseExtra: String = "") -> String {
        """
        listen: { http: "127.0.0.1:0" }
        sites:
          - routes:
              - path: /
                respond: "ok"
              - path: /healthz
                respond: "ok"
                track: false
        access_log: off
        admin: { listen: "127.0.0.1:0" }
        tracking:
          spool: { dir: "{{DIR}}/spool", sync_interval: 50ms, \(spool) }
          clickhouse:
            endpoints: ["\(clickHouse)"]
            flush_interval: 200ms
            retry: { min: 50ms, max: 1s }\(clickHouseExtra)
        """
    }

    func metrics(_ vantage: VantageProcess) throws -> String {
        try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
    }

    /// `h2load` over HTTP/1.1; returns the number of 2xx answers.
    func load(_ url: String, requests: Int, clients: Int = 16) throws -> Int {
        let result = try run(["h2load", "--h1", "-n", String(requests), "-c", String(clients), "-t", "1", url])
        let pattern = try NSRegularExpression(pattern: "status codes: (\\d+) 2xx")
        let text = result.stdout
        guard let match = pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let count = Int(text[Range(match.range(at: 1), in: text)!])
        else { throw Failure("cannot read h2load's output:\n\(text)\(result.stderr)") }
        return count
    }

    @Test func everyRequestOf200kIsARowInClickHouse() throws {
        let clickHouse = try ClickHouseServer()
        let vantage = try VantageProcess(config: Self.config(clickHouse: clickHouse.endpoint), expect: ["http", "admin"])
        let answered = try load(vantage.url("/a?utm_source=load"), requests: 200_000)
        #expect(answered == 200_000)
        _ = try load(vantage.url("/healthz"), requests: 100, clients: 1)  // opted out: no rows
        try vantage.waitUntilShipped(timeout: 120)
        let rows = try clickHouse.count("SELECT count() FROM vantage.events")
        let distinct = try clickHouse.count("SELECT uniqExact(id) FROM vantage.events")
        #expect(rows == answered, "rows in ClickHouse vs requests answered")
        #expect(distinct == rows, "no duplicates")
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/a' AND query = 'utm_source=load' AND status = 200") == answered)
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE url = '\(vantage.url("/a"))'") == answered)
        let text = try metrics(vantage)
        #expect(metric(text, "vantage_events_shipped_total") == Double(answered))
        #expect(metric(text, "vantage_events_recorded_total") == Double(answered))
        #expect(vantage.stop() == 0)
    }

    @Test func rowsSurviveClickHouseBeingDownForThirtySeconds() throws {
        let clickHouse = try ClickHouseServer()
        let vantage = try VantageProcess(config: Self.config(clickHouse: clickHouse.endpoint), expect: ["http", "admin"])
        let url = vantage.url("/during-outage")
        // Load before, during and after the outage, in rounds, so the outage falls in the middle of it.
        var answered = try load(url, requests: 20_000)
        let outage = Date()
        clickHouse.stop()
        while Date().timeIntervalSince(outage) < 30 {
            answered += try load(url, requests: 5_000, clients: 4)
            Thread.sleep(forTimeInterval: 0.5)
        }
        let during = try metrics(vantage)
        #expect((metric(during, "vantage_clickhouse_failures_total") ?? 0) > 0, "the outage was noticed")
        #expect((metric(during, "vantage_events_queued") ?? 0) > 0, "events waited in the spool")
        let queuedAtRestart = metric(try metrics(vantage), "vantage_events_queued") ?? 0
        try clickHouse.start()
        // Retries keep their schedule (retry.max is 1 s here): the returning server is found within about that,
        // not after a connect timeout per attempt.
        let restarted = Date()
        while (metric(try metrics(vantage), "vantage_events_queued") ?? 0) >= queuedAtRestart,
            Date().timeIntervalSince(restarted) < 30
        {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let recovery = Date().timeIntervalSince(restarted)
        print("outage test: shipping resumed \(String(format: "%.2f", recovery)) s after ClickHouse was back")
        #expect(recovery < 2.5, "shipping resumed only \(recovery) s after ClickHouse came back")
        answered += try load(url, requests: 20_000)
        try vantage.waitUntilShipped(timeout: 120)
        let rows = try clickHouse.count("SELECT count() FROM vantage.events")
        let distinct = try clickHouse.count("SELECT uniqExact(id) FROM vantage.events")
        #expect(distinct == answered, "every answered request has its row")
        print("outage test: \(answered) requests, \(rows - distinct) duplicate row(s)")
        #expect(vantage.stop() == 0)
    }

    @Test func everyAnsweredRequestSurvivesKill9() throws {
        let clickHouse = try ClickHouseServer()
        let config = Self.config(clickHouse: clickHouse.endpoint)
        let first = try VantageProcess(config: config, expect: ["http", "admin"])
        first.keepsDirectory = true
        defer { try? FileManager.default.removeItem(at: first.directory) }
        let answeredFile = first.directory.appendingPathComponent("answered.txt").path
        let loader = Process()
        loader.executableURL = URL(fileURLWithPath: BackendProcess.python)
        loader.arguments = [
            BackendProcess.backendsFolder.appendingPathComponent("idload.py").path, "127.0.0.1", String(first.ports["http"]!),
            "/killed", "k", "8", "60", answeredFile,
        ]
        loader.standardOutput = FileHandle.nullDevice
        try loader.run()
        Thread.sleep(forTimeInterval: 3)
        first.signal(SIGKILL)
        first.process.waitUntilExit()
        loader.waitUntilExit()
        let answered = Set(try String(contentsOfFile: answeredFile, encoding: .utf8).split(separator: "\n").map(String.init))
        #expect(answered.count > 1000, "the load ran before the kill")

        let second = try VantageProcess(config: config, expect: ["http", "admin"], reusing: first.directory)
        try second.waitUntilShipped(timeout: 120)
        let stored = Set(try clickHouse.query("SELECT request_id FROM vantage.events WHERE path = '/killed'")
            .split(separator: "\n").map(String.init))
        let missing = answered.subtracting(stored)
        #expect(missing.isEmpty, "answered but not stored: \(missing.prefix(5))")
        let rows = try clickHouse.count("SELECT count() FROM vantage.events")
        let distinct = try clickHouse.count("SELECT uniqExact(id) FROM vantage.events")
        print("kill -9 test: \(answered.count) answered, \(distinct) events stored, \(rows - distinct) duplicate row(s)")
        #expect(second.log.contains("from an earlier run will be shipped"))
        #expect(second.stop() == 0)
    }

    @Test func aFullSpoolDropsExactlyWhatIsMissing() throws {
        let clickHouse = try ClickHouseServer()
        clickHouse.stop()  // absent at first: everything waits in the spool until it is full
        let vantage = try VantageProcess(
            config: Self.config(clickHouse: clickHouse.endpoint, spool: "max_size: 256KB, segment_size: 64KB"),
            expect: ["http", "admin"])
        let answered = try load(vantage.url("/quota"), requests: 5_000, clients: 4)
        let text = try metrics(vantage)
        let dropped = Int(metric(text, "vantage_events_dropped_total{reason=\"spool_full\"}") ?? -1)
        #expect(dropped > 0, "the quota was reached")
        #expect((metric(text, "vantage_spool_bytes") ?? .infinity) <= 256 * 1024)
        #expect(vantage.log.contains("dropping events: the spool is full"))
        try clickHouse.start()
        try vantage.waitUntilShipped(timeout: 120)
        let rows = try clickHouse.count("SELECT uniqExact(id) FROM vantage.events")
        #expect(rows + dropped == answered, "rows \(rows) + dropped \(dropped) vs answered \(answered)")
        print("quota test: \(answered) answered, \(rows) stored, \(dropped) dropped and counted")
        #expect(vantage.stop() == 0)
    }

    @Test func aCorruptSegmentTailIsCutAndTheRestDelivered() throws {
        let clickHouse = try ClickHouseServer()
        clickHouse.stop()
        let config = Self.config(clickHouse: clickHouse.endpoint)
        let first = try VantageProcess(config: config, expect: ["http", "admin"])
        first.keepsDirectory = true
        defer { try? FileManager.default.removeItem(at: first.directory) }
        let answered = try load(first.url("/torn"), requests: 500, clients: 2)
        #expect(first.stop() == 0)
        let spool = first.directory.appendingPathComponent("spool")
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: spool.path)
            .filter { $0.hasSuffix(".vspool") }.sorted().last)
        // A record whose header promises more than follows, as a crash mid-write would leave.
        let handle = try #require(FileHandle(forWritingAtPath: spool.appendingPathComponent(segment).path))
        handle.seekToEndOfFile()
        handle.write(Data([200, 0, 0, 0, 9, 9, 9, 9]) + Data("torn".utf8))
        try handle.close()
        try clickHouse.start()
        let second = try VantageProcess(config: config, expect: ["http", "admin"], reusing: first.directory)
        try second.waitUntilShipped(timeout: 120)
        #expect(second.log.contains("torn record"))
        #expect(second.log.contains("cutting 12 bytes"))
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/torn'") == answered)
        #expect(second.stop() == 0)
    }

    /// A table made by the first release (schema version 1, no enrichment or channel columns) gets the new
    /// columns; its rows stay and new rows carry the new fields.
    @Test func aVersionOneTableIsMigrated() throws {
        let clickHouse = try ClickHouseServer()
        try clickHouse.query("CREATE DATABASE vantage")
        try clickHouse.query(
            "CREATE TABLE vantage.vantage_schema_migrations (version UInt32, applied_at DateTime, description String) "
                + "ENGINE = MergeTree() ORDER BY version")
        try clickHouse.query("INSERT INTO vantage.vantage_schema_migrations VALUES (1, now(), 'events table')")
        try clickHouse.query("""
            CREATE TABLE vantage.events (id UUID, ts DateTime('UTC'), ts_ms UInt16, site String, host String,
            kind String, method String, scheme String, path String, query String, status UInt16, bytes_in UInt64,
            bytes_out UInt64, duration_us UInt64, upstream String, upstream_us UInt64, referrer String,
            user_agent String, http_version String, tls_version String, request_id String, client_ip String,
            url String ALIAS concat(scheme, '://', host, path))
            ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(ts) ORDER BY (site, kind, ts, id)
            """)
        try clickHouse.query(
            "INSERT INTO vantage.events (id, ts, site, kind, path, status, client_ip) VALUES "
                + "('01a214a1-f4a3-7587-9fd5-63005d0018e0', now(), 'old', 'request', '/old', 200, '10.0.0.0')")
        let vantage = try VantageProcess(config: Self.config(clickHouse: clickHouse.endpoint), expect: ["http", "admin"])
        _ = try curl(["-A", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", vantage.url("/new")])
        try vantage.waitUntilShipped(timeout: 120)
        #expect(try clickHouse.count("SELECT max(version) FROM vantage.vantage_schema_migrations") == 5)
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/old' AND vid = '' AND bot = 0 AND channel = '' AND xid = ''") == 1)
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/new' AND browser = 'Firefox' AND length(vid) = 13") == 1)
        #expect(vantage.log.contains("schema version 2 applied") && vantage.log.contains("schema version 3 applied"))
        #expect(vantage.log.contains("schema version 5 applied (tenancy and experiment fields)"))
        #expect(vantage.stop() == 0)
        // Started again: nothing left to migrate.
        let again = try VantageProcess(config: Self.config(clickHouse: clickHouse.endpoint), expect: ["http", "admin"], reusing: vantage.directory)
        _ = try curl([again.url("/again")])
        try again.waitUntilShipped(timeout: 120)
        #expect(!again.log.contains("schema version"))
        #expect(again.stop() == 0)
    }

    /// `retention` on a ClickHouse without TTL (18.16): Vantage deletes the old rows itself.
    @Test func retentionPrunesOldRowsWithoutTTL() throws {
        let clickHouse = try ClickHouseServer()
        let first = try VantageProcess(config: Self.config(clickHouse: clickHouse.endpoint), expect: ["http", "admin"])
        _ = try curl([first.url("/recent")])
        try first.waitUntilShipped(timeout: 120)
        #expect(first.stop() == 0)
        try clickHouse.query(
            "INSERT INTO vantage.events (id, ts, site, kind, path, status) "
                + "SELECT generateUUIDv4(), now() - INTERVAL 3 DAY, 'old', 'request', '/old', 200")
        let vantage = try VantageProcess(
            config: Self.config(clickHouse: clickHouse.endpoint, clickHouseExtra: "\n    retention: 1d"),
            expect: ["http", "admin"], reusing: first.directory)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/old'") > 0 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/old'") == 0)
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/recent'") == 1)
        #expect(vantage.log.contains("retention of 1 days: deleting 1 older row(s)"))
        #expect(vantage.stop() == 0)
    }

    @Test func aDeadEndpointFailsOverAndThePasswordComesFromTheEnvironment() throws {
        let clickHouse = try ClickHouseServer(password: "s3cret pass")
        let dead = "http://127.0.0.1:\(try freePort())"
        let vantage = try VantageProcess(
            config: Self.config(
                clickHouse: dead,
                clickHouseExtra: "\n    password_env: TEST_CLICKHOUSE_PASSWORD"
            ).replacingOccurrences(of: "endpoints: [\"\(dead)\"]", with: "endpoints: [\"\(dead)\", \"\(clickHouse.endpoint)\"]"),
            expect: ["http", "admin"], environment: ["TEST_CLICKHOUSE_PASSWORD": "s3cret pass"])
        let answered = try load(vantage.url("/failover"), requests: 2_000, clients: 4)
        try vantage.waitUntilShipped(timeout: 120)
        #expect(try clickHouse.count("SELECT count() FROM vantage.events WHERE path = '/failover'") == answered)
        #expect((metric(try metrics(vantage), "vantage_clickhouse_failures_total") ?? 0) >= 1, "the dead endpoint was tried")
        #expect(vantage.log.contains("unreachable"))
        // With everything shipped, `vantage events` says where the events went instead of printing nothing.
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath],
                             environment: ["TEST_CLICKHOUSE_PASSWORD": "s3cret pass"])
        #expect(export.stdout.isEmpty && export.stderr.contains("shipped events leave it; they are in vantage.events"),
                "\(export.stdout.prefix(300))\(export.stderr)")
        #expect(vantage.stop() == 0)
    }
}

/// The embedded default: no ClickHouse, events stay in the spool and `vantage events` reads them.
@Suite struct EventsCommandTests {
    @Test func exportAndTailReadTheSpool() throws {
        let vantage = try VantageProcess(config: VantageProcess.respondingConfig())
        for index in 0..<3 { _ = try curl(["-s", vantage.url("/page-\(index)?utm_source=cli"), "-A", "Agent/\(index)"]) }
        // Read while Vantage runs (the open segment), then after it sealed everything on the way out.
        let live = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        #expect(live.stdout.split(separator: "\n").count == 3, "\(live.stdout)\(live.stderr)")
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--format", "ndjson"])
        let lines = export.stdout.split(separator: "\n")
        #expect(lines.count == 3)
        let first = try json(String(lines[0]))
        #expect(first["path"] as? String == "/page-0")
        #expect(first["query"] as? String == "utm_source=cli")
        #expect(first["user_agent"] as? String == "Agent/0")
        #expect(first["client_ip"] as? String == "127.0.0.0")
        let future = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--since", "2100-01-01"])
        #expect(future.status == 0 && future.stdout.isEmpty)
        let recent = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--since", "1h"])
        #expect(recent.stdout.split(separator: "\n").count == 3)
        #expect(!recent.stdout.contains("\"client_ip\":\"127.0.0.1\""), "the whole address never reached the spool")
        let tail = try run([VantageProcess.binary, "events", "tail", "--config", vantage.configPath, "-n", "2", "--no-follow"])
        #expect(tail.stdout.split(separator: "\n").count == 2)
        let broken = try run([VantageProcess.binary, "events", "export", "--config", "/nonexistent.yaml"])
        #expect(broken.status == 2 && broken.stderr.contains("invalid configuration"))
        // Formats and fields for people and spreadsheets.
        let chosen = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--fields", "path,status"])
        #expect(chosen.stdout.split(separator: "\n").first == #"{"path":"/page-0","status":200}"#, "\(chosen.stdout)")
        let csv = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--format", "csv",
                           "--fields", "ts,path,user_agent,status"])
        let rows = csv.stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(rows.count == 4 && rows[0] == "ts,path,user_agent,status", "\(csv.stdout)")
        #expect(rows[1].hasSuffix(",/page-0,Agent/0,200") && rows[1].hasPrefix("20"), "\(rows[1])")
        let table = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--format", "table"])
        let tableLines = table.stdout.split(separator: "\n")
        #expect(tableLines.count == 4 && tableLines[0].hasPrefix("ts") && tableLines[0].contains("kind")
            && tableLines[1].contains("/page-0"), "\(table.stdout)")
        let unknown = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--format", "xml"])
        #expect(unknown.status == 64 && unknown.stderr.contains("expected ndjson, csv or table"))
    }

    /// Each loop writes its own segments; export and tail read them merged by time.
    @Test func exportAndTailMergeTheLoopsByTime() throws {
        let vantage = try VantageProcess(config: VantageProcess.respondingConfig(top: "threads: 2"))
        // One connection each: the loops take turns.
        for index in 0..<12 {
            _ = try curl(["-s", vantage.url("/seq-\(String(format: "%02d", index))")])
            Thread.sleep(forTimeInterval: 0.005)
        }
        #expect(vantage.stop() == 0)
        let segments = try FileManager.default.contentsOfDirectory(atPath: vantage.directory.appendingPathComponent("spool").path)
            .filter { $0.hasPrefix("segment-") }
        #expect(segments.count >= 2, "both loops wrote: \(segments)")
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath, "--format", "csv", "--fields", "path"])
        let paths = export.stdout.components(separatedBy: "\r\n").filter { $0.hasPrefix("/seq-") }
        #expect(paths == (0..<12).map { "/seq-" + String(format: "%02d", $0) }, "\(export.stdout)")
        let tail = try run([VantageProcess.binary, "events", "tail", "--config", vantage.configPath, "-n", "3", "--no-follow",
                            "--format", "table", "--fields", "path,status"])
        #expect(tail.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            == [["path", "status"], ["/seq-09", "200"], ["/seq-10", "200"], ["/seq-11", "200"]], "\(tail.stdout)")
    }
}
