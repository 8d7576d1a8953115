import Foundation
import Testing

/// `access_log.format` through the real binary: a `combined` log that goaccess (Debian's) reads as nginx's, and a
/// JSON log with chosen fields whose `event_id` finds the request's event in the spool.
@Suite(.serialized) struct AccessLogOutputTests {
    @Test func goaccessReadsTheCombinedLog() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: { output: access.log, format: combined }
            sites:
              - routes:
                  - { path: /, respond: { body: "<!doctype html><title>x</title>", content_type: text/html } }
            """)
        for path in ["/", "/pricing?plan=pro", "/missing\"quote"] {
            _ = try curl([vantage.url(path), "-A", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", "-e", "https://news.example/"])
        }
        #expect(vantage.stop() == 0)
        let log = try String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)
        let lines = log.split(separator: "\n")
        #expect(lines.count == 3, "\(log)")
        // Loops write their own lines: any order.
        #expect(lines.contains { $0.firstMatch(of: /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/ HTTP\/1\.1" 200 \d+ "https:\/\/news\.example\/" "Mozilla\/5\.0 \(X11; Linux x86_64\) Firefox\/133\.0"$/) != nil }, "\(log)")
        let report = vantage.directory.appendingPathComponent("report.json").path
        let goaccess = try run(["goaccess", vantage.directory.appendingPathComponent("access.log").path, "--log-format=COMBINED",
                                "--no-global-config", "-o", report])
        #expect(goaccess.status == 0, "\(goaccess.stderr)")
        let general = try json(String(contentsOfFile: report, encoding: .utf8))["general"] as? [String: Any] ?? [:]
        #expect(general["total_requests"] as? Int == 3 && general["failed_requests"] as? Int == 0, "\(general)")
    }

    @Test func jsonLinesCarryTheChosenFieldsAndTheEventID() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: { output: access.log, fields: [time, method, uri, status, event_id, referer] }
            tracking: { spool: { dir: spool } }
            sites:
              - routes:
                  - { path: /, respond: { body: "<!doctype html><title>x</title>", content_type: text/html } }
            """)
        _ = try curl([vantage.url("/hello?x=1"), "-e", "https://ref.example/a"])
        #expect(vantage.stop() == 0)
        let log = try String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)
        let line = try json(String(log.split(separator: "\n").first ?? ""))
        #expect(Set(line.keys) == ["time", "method", "uri", "status", "event_id", "referer"], "\(log)")
        #expect(line["referer"] as? String == "https://ref.example/a")
        let eventID = try #require(line["event_id"] as? String)
        let events = try run([VantageProcess.binary, "events", "export", "--spool", vantage.directory.appendingPathComponent("spool").path])
        #expect(events.stdout.contains(eventID), "the log's event_id is the event's id: \(events.stdout.prefix(400))")
    }
}
