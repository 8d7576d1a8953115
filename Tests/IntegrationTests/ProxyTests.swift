import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The reverse proxy against real backends: Node's http module and an ASGI app under uvicorn, driven by curl and
/// a WebSocket client, through the real binary.
@Suite(.serialized) struct ProxyTests {
    static func config(_ routes: String, extra: String = "") -> String {
        """
        listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        access_log: { output: "{{DIR}}/access.log" }
        tls: { certificates: [{ cert: "{{DIR}}/site.pem", key: "{{DIR}}/site.key" }] }
        \(extra)
        sites:
          - routes:
        \(routes)
              - { path: /, respond: "edge" }
        """
    }

    static func start(_ routes: String, extra: String = "") throws -> VantageProcess {
        try VantageProcess(config: config(routes, extra: extra), expect: ["http", "https", "admin"]) { directory in
            _ = try makeCertificate(in: directory, name: "site", names: ["localhost", "127.0.0.1"])
        }
    }

    func metrics(_ vantage: VantageProcess) throws -> String {
        try run(["curl", "-s", vantage.url("/metrics", kind: "admin")]).stdout
    }

    @Test func echoesThroughHTTP1AndHTTP2WithForwardingHeaders() throws {
        let node = try BackendProcess.node("n1")
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("uv-\(UUID().uuidString.prefix(8)).sock").path
        let python = try BackendProcess.uvicorn("py", socketPath: socket)
        let vantage = try Self.start("""
                  - { path: /api/, proxy: { upstreams: ["\(node.address)"] } }
                  - { path: /py/, proxy: { upstreams: ["\(python.address)"], strip_prefix: true } }
            """)

        // HTTP/1.1 with a body; hop-by-hop headers do not reach the backend.
        let h1 = try curl([
            vantage.url("/api/echo?q=1"), "-X", "POST", "--data-binary", "hello upstream",
            "-H", "Connection: keep-alive, X-Secret", "-H", "X-Secret: 1", "-H", "Proxy-Authorization: Basic eA==",
            "-H", "Keep-Alive: timeout=5", "-H", "X-Custom: kept",
        ])
        #expect(h1.status == 200, "\(h1.body)\n\(vantage.log.suffix(2000))")
        let echo = try json(h1.body)
        let headers = echo["headers"] as? [String: String] ?? [:]
        #expect(echo["method"] as? String == "POST")
        #expect(echo["url"] as? String == "/api/echo?q=1")
        #expect(echo["bodyBytes"] as? Int == 14)
        #expect(headers["x-custom"] == "kept")
        #expect(headers["x-secret"] == nil && headers["proxy-authorization"] == nil && headers["keep-alive"] == nil)
        #expect(headers["x-forwarded-for"] == "127.0.0.1")
        #expect(headers["x-forwarded-proto"] == "http")
        #expect(headers["x-forwarded-host"] == "127.0.0.1:\(vantage.ports["http"]!)")
        #expect(headers["forwarded"] == "for=127.0.0.1;proto=http;host=\"127.0.0.1:\(vantage.ports["http"]!)\"")
        let requestID = try #require(h1.headers["x-request-id"])
        #expect(headers["x-request-id"] == requestID && requestID.count == 32)
        #expect(h1.headers["x-backend"] == "n1")
        #expect(h1.headers["keep-alive"] == nil)

        // HTTP/2 over TLS to the same HTTP/1.1 backend, with a body of unknown length.
        let h2 = try curl(["-k", "--http2", vantage.url("/api/echo", kind: "https"), "--data-binary", "@-", "-H",
                           "Content-Type: text/plain"])
        #expect(h2.version == "2")
        #expect(h2.status == 200, "\(h2.body)\n\(vantage.log.suffix(2000))")
        let h2Echo = try json(h2.body)
        let h2Headers = h2Echo["headers"] as? [String: String] ?? [:]
        #expect(h2Headers["x-forwarded-proto"] == "https")
        #expect(h2Echo["httpVersion"] as? String == "1.1")
        let upload = try run(["sh", "-c", "head -c 300000 /dev/zero | curl -sk --http2 -T - \(vantage.url("/api/upload", kind: "https"))"])
        #expect(try json(upload.stdout)["bytes"] as? Int == 300_000)

        // uvicorn on a unix socket, prefix stripped; trailers and chunked bodies pass.
        let py = try curl([vantage.url("/py/echo?x=1")])
        let pyEcho = try json(py.body)
        #expect(pyEcho["path"] as? String == "/echo")
        #expect(pyEcho["query"] as? String == "x=1")
        #expect(py.headers["x-backend"] == "py")
        let trailers = try run(["curl", "-s", "--raw", vantage.url("/api/trailers")])
        #expect(trailers.stdout.contains("part one\n"))
        #expect(trailers.stdout.contains("X-Checksum: abc123"))

        // The access log names the upstream, its latency and the request ID.
        try waitUntil(timeout: 5) {
            (try? String(contentsOfFile: vantage.directory.appendingPathComponent("access.log").path, encoding: .utf8))?
                .contains("\"request_id\":\"\(requestID)\"") ?? false
        }
        let log = try String(contentsOfFile: vantage.directory.appendingPathComponent("access.log").path, encoding: .utf8)
        let line = try #require(log.split(separator: "\n").first { $0.contains(requestID) })
        #expect(line.contains("\"upstream\":\"\(node.address)\""))
        #expect(line.contains("\"upstream_us\":"))
    }

    /// A connection goes back to its loop's pool after each request and is reused; one idle past the pool's
    /// `idle_timeout` is closed by the sweep, and the next request opens a fresh one.
    @Test func pooledConnectionsAreReusedAndClosedOnceIdle() throws {
        let node = try BackendProcess.node("n1")
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            threads: 1
            tracking: { enabled: false }
            sites:
              - routes:
                  - { path: /api/, proxy: { upstreams: ["\(node.address)"], pool: { idle_timeout: 1s } } }
            """)
        let open = "vantage_upstream_open_connections{upstream=\"\(node.address)\"}"
        let reused = "vantage_upstream_connections_total{upstream=\"\(node.address)\",kind=\"reused\"}"
        for _ in 0..<3 { #expect(try curl([vantage.url("/api/echo")]).status == 200) }
        var text = try metrics(vantage)
        #expect(metric(text, open) == 1, "one connection served all three: \(text)")
        #expect(metric(text, reused) == 2)
        Thread.sleep(forTimeInterval: 2.6)
        text = try metrics(vantage)
        #expect(metric(text, open) == 0, "closed after idle_timeout: \(text)")
        #expect(try curl([vantage.url("/api/echo")]).status == 200)
        #expect(metric(try metrics(vantage), open) == 1)
        #expect(vantage.stop() == 0)
    }

    @Test func forwardedHeadersAreTrustedOnlyFromTrustedProxies() throws {
        let node = try BackendProcess.node("n1")
        let route = "      - { path: /api/, proxy: { upstreams: [\"\(node.address)\"] } }"
        let spoof = ["-H", "X-Forwarded-For: 203.0.113.9", "-H", "X-Forwarded-Proto: https", "-H",
                     "Forwarded: for=203.0.113.9", "-H", "X-Request-Id: bad id with spaces"]

        let untrusted = try Self.start(route)
        let plain = try json(try curl([untrusted.url("/api/echo")] + spoof).body)["headers"] as? [String: String] ?? [:]
        #expect(plain["x-forwarded-for"] == "127.0.0.1")
        #expect(plain["x-forwarded-proto"] == "http")
        #expect(plain["forwarded"]?.hasPrefix("for=127.0.0.1;") == true)
        #expect(plain["x-request-id"] != "bad id with spaces")

        let trusted = try Self.start(route, extra: "trusted_proxies: [127.0.0.1/32]")
        let kept = try curl([trusted.url("/api/echo"), "-H", "X-Request-Id: req-42"] + spoof.dropLast(2))
        let keptHeaders = try json(kept.body)["headers"] as? [String: String] ?? [:]
        #expect(keptHeaders["x-forwarded-for"] == "203.0.113.9, 127.0.0.1")
        #expect(keptHeaders["x-forwarded-proto"] == "https")
        #expect(keptHeaders["forwarded"]?.hasPrefix("for=203.0.113.9, for=127.0.0.1;") == true)
        #expect(keptHeaders["x-request-id"] == "req-42")
        #expect(kept.headers["x-request-id"] == "req-42")
    }

    @Test func killedBackendIsRetriedTakenOutAndAnswered502Then503() throws {
        let first = try BackendProcess.node("first")
        let second = try BackendProcess.node("second")
        let vantage = try Self.start("""
                  - { path: /api/, proxy: { upstreams: ["\(first.address)", "\(second.address)"], passive_health: { max_fails: 2, cooldown: 30s } } }
            """)
        // Warm both pools, then kill one backend.
        for _ in 0..<4 { #expect(try curl([vantage.url("/api/echo")]).status == 200) }
        first.kill()
        var backends: [String] = []
        for _ in 0..<10 {
            let answer = try curl([vantage.url("/api/echo")])
            #expect(answer.status == 200, "a GET is retried on the healthy upstream")
            backends.append(answer.headers["x-backend"] ?? "?")
        }
        #expect(Set(backends) == ["second"])
        let text = try metrics(vantage)
        #expect(metric(text, "vantage_upstream_healthy{upstream=\"\(first.address)\"}") == 0)
        #expect((metric(text, "vantage_upstream_retries_total{upstream=\"\(first.address)\"}") ?? 0) >= 1)
        #expect(metric(text, "vantage_upstream_healthy{upstream=\"\(second.address)\"}") == 1)

        // The last upstream dies too: its refusal is the answer, 502 with the request ID.
        second.kill()
        let broken = try curl([vantage.url("/api/echo"), "-d", "x"])
        #expect(broken.status == 502)
        let requestID = try #require(broken.headers["x-request-id"])
        #expect(broken.body.contains(requestID))
        // Both out for their cool-down: 503 with Retry-After, without touching the network.
        _ = try curl([vantage.url("/api/echo")])
        let unavailable = try curl([vantage.url("/api/echo")])
        #expect(unavailable.status == 503)
        #expect(Int(unavailable.headers["retry-after"] ?? "") ?? 0 >= 1)
        let health = try run(["curl", "-s", vantage.url("/health", kind: "admin")]).stdout
        #expect(health.contains("\"healthy\":false"))
    }

    @Test func slowBackendGets504AndClientNeverHangs() throws {
        let node = try BackendProcess.node("slow")
        let vantage = try Self.start("""
                  - { path: /api/, proxy: { upstreams: ["\(node.address)"], timeouts: { response_header: 300ms } } }
                  - { path: /dead/, proxy: { upstreams: ["127.0.0.1:1"], retries: 0 } }
            """)
        let started = Date()
        let slow = try curl([vantage.url("/api/slow?ms=3000")])
        #expect(slow.status == 504)
        #expect(Date().timeIntervalSince(started) < 2.5)
        #expect(slow.headers["x-request-id"] != nil)
        #expect(try curl([vantage.url("/api/slow?ms=10")]).status == 200)
        let refused = try curl([vantage.url("/dead/x")])
        #expect(refused.status == 502)
        #expect(refused.body.contains("refused"))
        // A response cut short by the upstream is cut short for the client too (never a complete-looking body).
        let cut = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", vantage.url("/api/break")])
        #expect(cut.status != 0)
    }

    @Test func streams200MegabytesBothWaysWithBoundedMemory() throws {
        let node = try BackendProcess.node("bulk")
        let vantage = try Self.start("""
                  - { path: /api/, max_body_size: 1GB, proxy: { upstreams: ["\(node.address)"] } }
            """)
        let size = 200_000_000
        let file = vantage.directory.appendingPathComponent("upload.bin").path
        try run(["sh", "-c", "head -c \(size) /dev/urandom > \(file)"])
        let expected = try run(["sha256sum", file]).stdout.prefix(64)
        let upload = try run(["curl", "-s", "-T", file, vantage.url("/api/upload")])
        let result = try json(upload.stdout)
        #expect(result["bytes"] as? Int == size)
        #expect(result["sha256"] as? String == String(expected))
        // The same upload over HTTP/2: the stream's flow-control credit is what holds the client back.
        let h2Upload = try run(["curl", "-sk", "--http2", "-T", file, vantage.url("/api/upload", kind: "https")])
        #expect(try json(h2Upload.stdout)["sha256"] as? String == String(expected))
        let download = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", vantage.url("/api/stream?bytes=\(size)")])
        #expect(Int(download.stdout) == size)
        let h2Download = try run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{size_download}",
                                  vantage.url("/api/stream?bytes=\(size)", kind: "https")])
        #expect(Int(h2Download.stdout) == size)
        let peak = try #require(peakResidentKiB(of: vantage.process.processIdentifier))
        #expect(peak < 150_000, "peak RSS \(peak) KiB while streaming \(size) bytes each way")
        print("proxy streaming: peak RSS \(peak) KiB after 2 × 200 MB up and 2 × 200 MB down (HTTP/1.1 and HTTP/2)")
    }

    @Test func webSocketEchoesAndOutlivesAReload() throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("uv-\(UUID().uuidString.prefix(8)).sock").path
        let python = try BackendProcess.uvicorn("py", socketPath: socket)
        let vantage = try Self.start("""
                  - { path: /ws/, proxy: { upstreams: ["\(python.address)"], strip_prefix: true } }
            """)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: BackendProcess.python)
        client.arguments = [BackendProcess.backendsFolder.appendingPathComponent("ws_client.py").path,
                            "ws://127.0.0.1:\(vantage.ports["http"]!)/ws/ws", "hello", "@sleep:1.5", "after reload"]
        let out = Pipe()
        client.standardOutput = out
        try client.run()
        Thread.sleep(forTimeInterval: 0.7)
        vantage.signal(SIGHUP)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        #expect(output == "echo: hello\necho: after reload\n")
        #expect(vantage.log.contains("configuration reloaded"))
    }

    @Test func balancingFollowsWeightsHashesAndHealthChecks() throws {
        let a = try BackendProcess.node("a")
        let b = try BackendProcess.node("b")
        let vantage = try Self.start("""
                  - { path: /rr/, proxy: { upstreams: [{ address: "\(a.address)", weight: 3 }, "\(b.address)"] } }
                  - { path: /ip/, proxy: { upstreams: ["\(a.address)", "\(b.address)"], balance: ip_hash } }
                  - { path: /user/, proxy: { upstreams: ["\(a.address)", "\(b.address)"], balance: header, hash_header: X-User } }
                  - { path: /checked/, proxy: { upstreams: ["\(a.address)", "\(b.address)"], health_check: { path: /health, interval: 200ms, fails: 1 } } }
            """)
        // One keep-alive connection, so one event loop and its round-robin position: exactly 3 to 1.
        func backends(_ path: String, _ count: Int, _ extra: [String] = []) throws -> [String: Int] {
            let urls = Array(repeating: vantage.url(path), count: count)
            let result = try run(["curl", "-s"] + extra + urls)
            var counts: [String: Int] = [:]
            for match in result.stdout.components(separatedBy: "\"backend\":\"").dropFirst() {
                counts[String(match.prefix { $0 != "\"" }), default: 0] += 1
            }
            return counts
        }
        #expect(try backends("/rr/echo", 40) == ["a": 30, "b": 10])
        #expect(try backends("/ip/echo", 20).count == 1)
        let users = try (0..<12).map { user in try backends("/user/echo", 3, ["-H", "X-User: user-\(user)"]) }
        #expect(users.allSatisfy { $0.count == 1 }, "one user always lands on one upstream")
        #expect(Set(users.flatMap(\.keys)).count == 2, "users spread over both upstreams")

        // Active checks: a backend reporting unhealthy is taken out, and comes back.
        _ = try run(["curl", "-s", "http://\(a.address)/health/fail"])
        try waitUntil(timeout: 5) {
            metric((try? metrics(vantage)) ?? "", "vantage_upstream_healthy{upstream=\"\(a.address)\"}") == 0
        }
        #expect(try backends("/checked/echo", 10) == ["b": 10])
        _ = try run(["curl", "-s", "http://\(a.address)/health/pass"])
        try waitUntil(timeout: 5) {
            metric((try? metrics(vantage)) ?? "", "vantage_upstream_healthy{upstream=\"\(a.address)\"}") == 1
        }
        #expect(try backends("/checked/echo", 10).count == 2)
        let reuse = metric(try metrics(vantage), "vantage_upstream_connection_reuse_ratio{upstream=\"\(a.address)\"}") ?? 0
        #expect(reuse > 0.5)
    }
}
