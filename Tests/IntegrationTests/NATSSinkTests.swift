import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The NATS sink against a real `nats-server` with JetStream, beside a real ClickHouse: every event published once
/// (counted in the stream, by id) across a NATS server restart and a Vantage kill -9, and neither sink held back by
/// the other being down.
@Suite(.serialized)
struct NATSSinkTests {
    static func config(nats: String, clickHouse: String) -> String {
        """
        listen: { http: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        access_log: off
        sites:
          - routes:
              - { path: /, respond: ok }
        tracking:
          spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
          clickhouse: { endpoints: ["\(clickHouse)"], flush_interval: 200ms, retry: { min: 50ms, max: 500ms } }
          nats: { url: "\(nats)", subject: vantage.events, batch: 100 }
        """
    }

    func send(_ count: Int, from start: Int, to vantage: VantageProcess) throws {
        let urls = (start..<start + count).map { vantage.url("/page/\($0)") }
        for chunk in stride(from: 0, to: urls.count, by: 50) {
            _ = try run(["curl", "-s", "-o", "/dev/null"] + Array(urls[chunk..<min(urls.count, chunk + 50)]))
        }
    }

    /// `(messages, distinct ids)` in the stream.
    func stream(_ nats: NATSServer) throws -> (Int, Int) {
        let parts = try nats.tool(["count", "EVENTS"]).split(separator: " ").compactMap { Int($0) }
        return (parts.first ?? -1, parts.last ?? -1)
    }

    @Test func everyEventOnceAcrossANATSRestartAndAKill9AndNeitherSinkWaitsForTheOther() throws {
        let nats = try NATSServer()
        _ = try nats.tool(["create", "EVENTS", "vantage.events"])
        let clickHouse = try ClickHouseServer()
        let vantage = try VantageProcess(config: Self.config(nats: nats.url, clickHouse: clickHouse.endpoint), expect: ["http", "admin"])
        try send(100, from: 0, to: vantage)
        try waitUntil(timeout: 30) { try stream(nats).0 >= 100 }
        #expect(try stream(nats) == (100, 100))
        #expect(vantage.log.contains("a JetStream stream takes vantage.events"))

        // NATS down: ClickHouse goes on receiving; the events wait in the spool for NATS and go when it is back.
        nats.kill()
        try send(100, from: 100, to: vantage)
        try waitUntil(timeout: 60) { try clickHouse.count("SELECT count() FROM vantage.events WHERE path LIKE '/page/%'") >= 200 }
        try nats.start()
        try waitUntil(timeout: 60) { try stream(nats).0 >= 200 }
        #expect(try stream(nats) == (200, 200))

        // ClickHouse down: NATS goes on.
        clickHouse.stop()
        try send(50, from: 200, to: vantage)
        try waitUntil(timeout: 30) { try stream(nats).0 >= 250 }
        try clickHouse.start()

        // kill -9 with events in flight; the restarted Vantage sends what was not taken, and only that.
        try send(100, from: 250, to: vantage)
        vantage.keepsDirectory = true
        vantage.signal(SIGKILL)
        _ = vantage.stop()
        let second = try VantageProcess(
            config: Self.config(nats: nats.url, clickHouse: clickHouse.endpoint), expect: ["http", "admin"], reusing: vantage.directory)
        try waitUntil(timeout: 60) { try stream(nats).0 >= 350 }
        try waitUntil(timeout: 90) { try clickHouse.count("SELECT uniqExact(id) FROM vantage.events WHERE path LIKE '/page/%'") >= 350 }
        Thread.sleep(forTimeInterval: 2)
        let (messages, ids) = try stream(nats)
        #expect(ids == 350, "every event once by id (\(messages) messages)")
        #expect(messages == 350, "the stream's duplicate window dropped any repeat")
        // Both sinks took everything: the spool is empty of sealed segments.
        let metrics = try run(["curl", "-s", second.url("/metrics", kind: "admin")]).stdout
        #expect(metrics.contains("vantage_nats_pending_segments 0"), "\(metrics)")
        try waitUntil(timeout: 30) {
            (try? run(["curl", "-s", second.url("/metrics", kind: "admin")]).stdout)?.contains("vantage_spool_segments 0") == true
        }
        #expect(second.stop() == 0)
    }

    @Test func withoutAStreamEventsGoToTheSubscribersPresent() throws {
        let nats = try NATSServer()
        let clickHouse = "http://127.0.0.1:\(try freePort())"  // never answers: the spool keeps the events
        let vantage = try VantageProcess(config: Self.config(nats: nats.url, clickHouse: clickHouse), expect: ["http", "admin"])
        try waitUntil(timeout: 10) { vantage.log.contains("no JetStream stream takes vantage.events") }
        let listener = Process()
        listener.executableURL = URL(fileURLWithPath: BackendProcess.python)
        listener.arguments = [BackendProcess.backendsFolder.appendingPathComponent("nats_tool.py").path, nats.url, "listen", "vantage.events", "4"]
        let out = Pipe()
        listener.standardOutput = out
        try listener.run()
        Thread.sleep(forTimeInterval: 1)
        try send(20, from: 0, to: vantage)
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        listener.waitUntilExit()
        #expect(lines.count == 20, "\(lines.count) messages")
        let first = try json(String(lines.first ?? "{}"))
        #expect((first["path"] as? String)?.hasPrefix("/page/") == true && first["kind"] as? String == "request")

        // `vantage events tail --nats` follows the subject from anywhere.
        let tail = Process()
        let tailOutput = vantage.directory.appendingPathComponent("tail.out").path
        try launchLogged(tail, VantageProcess.binary, ["events", "tail", "--nats", nats.url], output: tailOutput)
        Thread.sleep(forTimeInterval: 1)
        try send(5, from: 100, to: vantage)
        try waitUntil(timeout: 10) {
            ((try? String(contentsOfFile: tailOutput, encoding: .utf8)) ?? "").components(separatedBy: "\"path\":\"/page/10").count == 6
        }
        kill(tail.processIdentifier, SIGKILL)
        tail.waitUntilExit()
        #expect(((try? String(contentsOfFile: tailOutput, encoding: .utf8)) ?? "").contains("following vantage.events"))
    }
}
