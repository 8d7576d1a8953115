import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Route rate limits through the real binary: the accepted rate under wrk, the 429 answer and its headers, keys,
/// allow lists, dry runs, and the events of limited requests.
@Suite(.serialized)
struct RateLimitIntegrationTests {
    @Test func theAcceptedRateMatchesTheConfiguredOne() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, respond: "ok", rate_limit: { rate: 200/s, burst: 20 } }
            access_log: off
            admin: { listen: "off" }
            tracking: { enabled: false }
            """)
        let result = try run(["wrk", "-t1", "-c16", "-d10s", vantage.url("/")])
        let total = Double(result.stdout.firstMatch(of: /(\d+) requests in ([\d.]+)s/)?.1 ?? "0") ?? 0
        let seconds = Double(result.stdout.firstMatch(of: /(\d+) requests in ([\d.]+)s/)?.2 ?? "0") ?? 0
        let refused = Double(result.stdout.firstMatch(of: /Non-2xx or 3xx responses: (\d+)/)?.1 ?? "0") ?? 0
        let accepted = total - refused
        let expected = 200 * seconds + 20
        #expect(abs(accepted - expected) / expected < 0.05, "accepted \(accepted) in \(seconds) s, expected \(expected)\n\(result.stdout)")
        #expect(refused > 0)
        #expect(vantage.stop() == 0)
    }

    @Test func refusalsAnswer429WithHeadersAndStillBecomeEvents() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /api/, respond: "api", rate_limit: { key: "header:X-Api-Key", rate: [2/m, 1000/d] } }
                  - { path: /trusted/, respond: "ok", rate_limit: { rate: 1/m, allow: [127.0.0.0/8] } }
                  - { path: /observed/, respond: "ok", rate_limit: { rate: 1/m, dry_run: true } }
                  - { path: /counted/, respond: "ok", rate_limit: { rate: 5/m, headers: true } }
            access_log: off
            admin: { listen: "127.0.0.1:0" }
            tracking: { spool: { dir: "{{DIR}}/spool" } }
            """, expect: ["http", "admin"])
        for _ in 0..<2 { #expect(try curl(["-H", "X-Api-Key: alpha", vantage.url("/api/x")]).status == 200) }
        let refused = try curl(["-H", "X-Api-Key: alpha", vantage.url("/api/x")])
        #expect(refused.status == 429 && refused.body.contains("too many requests"))
        #expect(Int(refused.headers["retry-after"] ?? "") ?? 0 >= 29, "one request per 30 s at 2/m: \(refused.headers)")
        #expect(refused.headers["ratelimit-policy"] == "\"r0\";q=2;w=60, \"r1\";q=1000;w=86400, \"day\";q=1000;w=86400"
            || refused.headers["ratelimit-policy"]?.contains("\"r0\";q=2;w=60") == true)
        #expect(refused.headers["ratelimit"]?.hasPrefix("\"r0\";r=0;t=") == true)
        #expect(try curl(["-H", "X-Api-Key: beta", vantage.url("/api/x")]).status == 200, "another key has its own budget")
        for _ in 0..<3 { #expect(try curl([vantage.url("/trusted/")]).status == 200, "allow-listed") }
        for _ in 0..<3 { #expect(try curl([vantage.url("/observed/")]).status == 200, "dry run only counts") }
        // With headers: true, answers that pass say what is left.
        let counted = try curl([vantage.url("/counted/")])
        #expect(counted.status == 200 && counted.headers["ratelimit-policy"] == "\"r0\";q=5;w=60")
        #expect(counted.headers["ratelimit"]?.hasPrefix("\"r0\";r=4;t=") == true, "\(counted.headers)")
        #expect(try curl([vantage.url("/trusted/")]).headers["ratelimit"] == nil, "only where asked for")
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect(metric(metrics, "vantage_ratelimit_limited_total{route=\"default /api/\"}") == 1)
        #expect(metric(metrics, "vantage_ratelimit_dry_run_total{route=\"default /observed/\"}") == 2)
        #expect(vantage.stop() == 0)
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        let events = try export.stdout.split(separator: "\n").map { try json(String($0)) }
        #expect(events.filter { $0["status"] as? Int == 429 && $0["etyp"] as? String == "rate_limited" }.count == 1)
        #expect(events.filter { $0["etyp"] as? String == "rate_limited_dry_run" }.count == 2)
    }

    @Test func aReloadKeepsTheStateOfUnchangedLimits() throws {
        func config(_ message: String) -> String {
            """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /kept/, respond: "ok", rate_limit: { rate: 1/m } }
                  - { path: /, respond: "\(message)" }
            access_log: off
            admin: { listen: "off" }
            tracking: { enabled: false }
            """
        }
        let vantage = try VantageProcess(config: config("first"))
        #expect(try curl([vantage.url("/kept/")]).status == 200)
        #expect(try curl([vantage.url("/kept/")]).status == 429)
        try config("second").replacingOccurrences(of: "{{DIR}}", with: vantage.directory.path)
            .write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        vantage.signal(SIGHUP)
        try waitUntil { try curl([vantage.url("/")]).body == "second" }
        #expect(try curl([vantage.url("/kept/")]).status == 429, "the key's spent budget survives the reload")
        #expect(vantage.stop() == 0)
    }

    @Test func concurrencyIsLimitedPerKeyAndReleasedWhenAClientGoesAway() throws {
        let node = try BackendProcess.node("slow")
        defer { node.kill() }
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, proxy: { upstreams: ["\(node.address)"] }, rate_limit: { concurrency: 2 } }
            access_log: off
            admin: { listen: "127.0.0.1:0" }
            tracking: { enabled: false }
            """, expect: ["http", "admin"])
        /// A request the upstream answers in 20 s, on a socket of its own (closing it is the client giving up).
        func slowRequest() throws -> Int32 {
            let socket = try openConnection(port: vantage.ports["http"]!)
            let request = Array("GET /slow?ms=20000 HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            return socket
        }
        func inFlight() throws -> Double? {
            metric(try curl(["-s", vantage.url("/metrics", kind: "admin")]).body, "vantage_ratelimit_in_flight{route=\"default /\"}")
        }
        func waitForInFlight(_ expected: Double) throws {
            let deadline = Date().addingTimeInterval(10)
            while try inFlight() != expected && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        }
        let first = try slowRequest()
        let second = try slowRequest()

        try waitForInFlight(2)
        #expect(try inFlight() == 2)
        let refused = try curl([vantage.url("/hello")])
        #expect(refused.status == 429 && refused.headers["retry-after"] == "1", "a third request of the same client")
        // A client that gives up frees its place at once, though its upstream is still working.
        close(first)
        try waitForInFlight(1)
        #expect(try curl([vantage.url("/hello")]).status == 200)
        close(second)
        try waitForInFlight(0)
        #expect(try inFlight() == 0, "every place is given back")
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect(metric(metrics, "vantage_ratelimit_concurrency_limited_total{route=\"default /\"}") == 1)
        #expect(vantage.stop() == 0)
    }

    @Test func overTheConnectionCapClientsGet503WithRetryAfter() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            limits: { max_connections: 2 }
            sites:
              - routes:
                  - { path: /, respond: "ok" }
            access_log: off
            admin: { listen: "127.0.0.1:0" }
            tracking: { enabled: false }
            """, expect: ["http", "admin"])
        let port = vantage.ports["http"]!
        let held = try (0..<2).map { _ in try openConnection(port: port) }
        let full = try curl([vantage.url("/")])
        #expect(full.status == 503 && full.headers["retry-after"] == "1" && full.body.contains("connection limit"))
        #expect(full.headers["connection"] == "close")
        // Past the hard ceiling (2 + 16) connections are closed without an answer.
        let flood = try (0..<20).map { _ in try openConnection(port: port) }
        Thread.sleep(forTimeInterval: 0.3)
        let closedAtOnce = flood.filter { isClosedByPeer($0) }.count
        #expect(closedAtOnce >= 2, "connections over the hard ceiling are closed: \(closedAtOnce)")
        for socket in held + flood { close(socket) }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try curl([vantage.url("/")]).status == 200, "room again once connections close")
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect((metric(metrics, "vantage_connections_over_capacity_total") ?? 0) >= 1)
        #expect((metric(metrics, "vantage_connections_refused_total") ?? 0) >= 2)
        #expect(vantage.log.components(separatedBy: "over limits.max_connections").count == 2, "logged once")
        #expect(vantage.stop() == 0)
    }
}

/// Whether the peer has closed `socket` (a non-blocking read sees end of stream or a reset).
private func isClosedByPeer(_ socket: Int32) -> Bool {
    var byte: UInt8 = 0
    let count = recv(socket, &byte, 1, Int32(MSG_DONTWAIT))
    return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
}
