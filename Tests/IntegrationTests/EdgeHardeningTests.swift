import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Refusals that end a connection's requests, and deadlines on every connection and stream (issue 15), through the
/// real binary in front of a real Node backend, with raw sockets (HTTP/1.1) and the `h2` package (HTTP/2).
@Suite(.serialized) struct EdgeHardeningTests {
    static func start(limits: String = "", sendTimeout: String = "1s") throws -> (VantageProcess, BackendProcess) {
        let backend = try BackendProcess.node("hard")
        let vantage = try VantageProcess(
            config: """
                threads: 1
                listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
                admin: { listen: "127.0.0.1:0" }
                access_log: "{{DIR}}/access.log"
                tls: { certificates: [{ cert: "{{DIR}}/a.pem", key: "{{DIR}}/a.key" }] }
                limits: { header_timeout: 2s, body_timeout: 1s, send_timeout: \(sendTimeout), max_body_size: 1KB, max_header_size: 4KB, max_uri_length: 1KB\(limits) }
                tracking: { spool: { dir: "{{DIR}}/spool", sync_interval: 50ms } }
                sites:
                  - routes:
                      - path: /proxy/
                        max_body_size: 1MB
                        proxy: { upstreams: ["\(backend.address)"], pool: { max_connections: 1 } }
                      - { path: /files/, static: { root: "{{DIR}}/www", strip_prefix: true } }
                      - { respond: "ok" }
                """,
            expect: ["http", "https", "admin"]
        ) { directory in
            _ = try makeCertificate(in: directory, name: "a", names: ["localhost"])
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            try Data(repeating: 0x61, count: 4 << 20).write(to: www.appendingPathComponent("big.bin"))
        }
        return (vantage, backend)
    }

    func responses(_ answer: String) -> Int { answerCount(answer) }

    func accessLogLines(_ vantage: VantageProcess) -> [String] {
        Thread.sleep(forTimeInterval: 1.3)  // the access log is written at least once a second
        let text = (try? String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    @Test func aRefusedRequestEndsTheConnectionsRequests() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["http"]!
        let next = "GET /proxy/echo HTTP/1.1\r\nHost: localhost\r\n\r\n"
        let refused: [(String, Int)] = [
            ("GET /proxy%2Fx HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
            ("GET /proxy/echo HTTP/1.1\r\nHost: evil@localhost\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n", 413),
            ("GET /\(String(repeating: "a", count: 2000)) HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
            ("POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
            ("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: \(String(repeating: "b", count: 5000))\r\n\r\n", 431),
        ]
        for (request, status) in refused {
            let answer = try rawExchange(port: port, send: [request + next + next])
            #expect(answer.hasPrefix("HTTP/1.1 \(status) "), "\(answer.prefix(120))")
            #expect(responses(answer) == 1, "a request after a \(status) was served: \(answer)")
            #expect(!answer.contains("\"backend\""))
        }
        // Each refusal is one access-log line, and nothing else reached a handler.
        let lines = accessLogLines(vantage)
        #expect(lines.count == refused.count, "\(lines.joined(separator: "\n"))")
        #expect(!backend.output.contains("/proxy/echo"))
        // And each is counted once, by kind.
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        let counted = metrics.split(separator: "\n").filter { $0.hasPrefix("vantage_refusals_total{") }
            .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
        #expect(counted == Double(refused.count), "\(metrics.split(separator: "\n").filter { $0.contains("refusals") })")
        #expect(metric(metrics, "vantage_refusals_total{kind=\"body_too_large\"}") == 1)
        #expect((metric(metrics, "vantage_refusals_total{kind=\"malformed\"}") ?? 0) >= 1, "the 501 comes from the parser")
    }

    @Test func aRequestThatAsksToCloseIsAnsweredWhateverFollows() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["http"]!
        let closing = try rawExchange(port: port, send: [
            "GET /proxy/echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\nX",
        ])
        #expect(closing.hasPrefix("HTTP/1.1 200 ") && responses(closing) == 1, "\(closing.prefix(200))")
        // Garbage after a keep-alive request: the request is answered, then the garbage gets a 400 and the close.
        let garbage = try rawExchange(port: port, send: ["GET /proxy/echo HTTP/1.1\r\nHost: localhost\r\n\r\n\u{1}\u{2}junk\r\n\r\n"])
        #expect(garbage.hasPrefix("HTTP/1.1 200 ") && garbage.contains("HTTP/1.1 400 "), "\(garbage.prefix(400))")
        #expect(responses(garbage) == 2)
    }

    @Test func stalledUploadsGet408AndGiveBackTheirUpstreamConnection() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["http"]!
        for path in ["/", "/proxy/upload", "/files/big.bin"] {
            let started = Date()
            let answer = try rawExchange(port: port, send: [
                "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789",
            ])
            let waited = Date().timeIntervalSince(started)
            #expect(answer.hasPrefix("HTTP/1.1 408 ") && answer.contains("the request body stalled"), "\(path): \(answer.prefix(200))")
            #expect(waited > 0.9 && waited < 4, "\(path): \(waited) s")
        }
        // The proxy pool has one connection (and one event loop, so one pool): a stalled upload must not keep it.
        let stalled = Thread { _ = try? rawExchange(port: port, send: ["POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc"]) }
        stalled.start()
        Thread.sleep(forTimeInterval: 0.2)
        let after = try curl(["-s", "-m", "8", vantage.url("/proxy/echo")])
        #expect(after.status == 200, "\(after.body.prefix(200))")
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect((metric(metrics, "vantage_request_timeouts_total{kind=\"body\"}") ?? 0) >= 4)
        #expect((metric(metrics, "vantage_refusals_total{kind=\"body_timeout\"}") ?? 0) >= 3)
    }

    @Test func aTrickledUploadIsRefused() throws {
        let (vantage, backend) = try Self.start(limits: ", body_min_rate: 1KB")
        defer { _ = vantage.stop(); backend.kill() }
        // 20 bytes every 0.3 s: never a stall, but far below 1 KB/s once body_timeout (1 s) has passed.
        var chunks = ["POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"]
        chunks += Array(repeating: String(repeating: "t", count: 20), count: 15)
        let answer = try rawExchange(port: vantage.ports["http"]!, send: chunks, pauseBetween: 0.3)
        #expect(answer.hasPrefix("HTTP/1.1 408 ") && answer.contains("too slowly"), "\(answer.prefix(200))")
    }

    @Test func aSpoolWhoseLockFileIsRemovedIsNotSharedAndSaysSo() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        #expect(try curl(["-s", vantage.url("/")]).status == 200)
        unlink(vantage.directory.appendingPathComponent("spool/spool.lock").path)
        // A second process cannot take the folder over: the folder itself is locked too.
        let second = try run([VantageProcess.binary, "run", "--config", vantage.configPath])
        #expect(second.status != 0 && second.stderr.contains("in use by another Vantage process"), "\(second.stderr)")
        // The running one notices within a sync interval, says so, and writes no more events there.
        var health = ""
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            health = try curl(["-s", vantage.url("/health", kind: "admin")]).body
            // The test certificate (2 days) makes health "degraded" from the start: wait for the spool's reason.
            if health.contains("spool.lock was removed or replaced") { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(health.contains("\"status\":\"degraded\"") && health.contains("spool.lock was removed or replaced"), "\(health)")
        _ = try curl(["-s", vantage.url("/")])
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect(metric(metrics, "vantage_events_dropped_total{reason=\"spool_lost\"}") == 1)
        #expect(vantage.log.contains("spool.lock was removed or replaced"))
    }

    /// Reads `path` over HTTP/1.1 with a small receive buffer, `bytes` at a time with `pause` seconds between reads,
    /// for at most `limit` seconds; returns how many bytes arrived before the server closed (or the limit).
    func slowRead(port: Int, path: String, bytes: Int, pause: TimeInterval, limit: TimeInterval) throws -> Int {
        try Self.slowRead(port: port, path: path, bytes: bytes, pause: pause, limit: limit)
    }

    static func slowRead(port: Int, path: String, bytes: Int, pause: TimeInterval, limit: TimeInterval) throws -> Int {
        let socket = try openConnection(port: port, receiveBuffer: 8192)
        defer { close(socket) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var total = 0
        var buffer = [UInt8](repeating: 0, count: bytes)
        let started = Date()
        while Date().timeIntervalSince(started) < limit {
            let count = recv(socket, &buffer, bytes, 0)
            if count == 0 { break }
            if count > 0 { total += count }
            if count < 0 && errno != EAGAIN && errno != EWOULDBLOCK { break }
            Thread.sleep(forTimeInterval: pause)
        }
        return total
    }

    @Test func aSlowDownloadOutlivesTheIdleTimeoutAndAStoppedReaderIsCutOff() throws {
        // Idle 1 s, send timeout 10 s: a client reading the 4 MB file at about 400 KB/s for 10 s keeps it all.
        let (vantage, backend) = try Self.start(limits: ", idle_timeout: 1s", sendTimeout: "10s")
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["http"]!
        let slow = try slowRead(port: port, path: "/files/big.bin", bytes: 4096, pause: 0.01, limit: 30)
        #expect(slow > 4 << 20, "a slow download was cut at \(slow) bytes")
        // A client that all but stops reading (4 KB every 3 s) is closed once no piece of the file left for
        // send_timeout (1 s in the suite's configuration), well before it could have read the file.
        let (strict, backend2) = try Self.start()
        defer { _ = strict.stop(); backend2.kill() }
        let strictPort = strict.ports["http"]!
        let reader = Thread { _ = try? Self.slowRead(port: strictPort, path: "/files/big.bin", bytes: 4096, pause: 3, limit: 12) }
        reader.start()
        var timeouts = 0.0
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline && timeouts < 1 {
            Thread.sleep(forTimeInterval: 0.25)
            timeouts = metric(try curl(["-s", strict.url("/metrics", kind: "admin")]).body,
                              "vantage_request_timeouts_total{kind=\"send\"}") ?? 0
        }
        #expect(timeouts >= 1, "the stopped reader was not cut off")
    }

    @Test func http2StalledBodiesAndClosedWindowsAreCutOff() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["https"]!
        // A body that stops: 408 on its stream, with its body.
        let stalled = try h2Probe(port: port, spec: [
            "requests": [["method": "POST", "path": "/proxy/upload", "headers": [["content-length", "100"]], "body": "abc", "end_stream": false]],
            "wait": 5,
        ])
        let stream = try #require((stalled["streams"] as? [[String: Any]])?.first)
        #expect(stream["status"] as? Int == 408, "\(stalled)")
        // Stalled, or (as 3 bytes in a second is also far below body_min_rate) too slow.
        #expect((stream["body"] as? String)?.hasPrefix("408 Request Timeout: the request body") == true, "\(stalled)")
        // A 413 keeps its body too.
        let large = try h2Probe(port: port, spec: [
            "requests": [["method": "POST", "path": "/", "headers": [["content-length", "5000"]], "body": "abc", "end_stream": false]],
            "wait": 3,
        ])
        let refused = try #require((large["streams"] as? [[String: Any]])?.first)
        #expect(refused["status"] as? Int == 413 && (refused["body"] as? String)?.contains("413") == true, "\(large)")
        // A reader that never opens its window: every stream is reset after send_timeout, and nothing is held.
        let started = Date()
        let closed = try h2Probe(port: port, spec: [
            "initial_window": 0, "read_body": false, "wait": 6,
            "requests": Array(repeating: ["method": "GET", "path": "/files/big.bin"], count: 8)
                + [["method": "GET", "path": "/proxy/stream?bytes=4000000"]],
        ])
        let resets = (closed["streams"] as? [[String: Any]] ?? []).compactMap { $0["reset"] as? Int }
        #expect(resets.count == 9 && Date().timeIntervalSince(started) < 5, "\(closed)")
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect((metric(metrics, "vantage_request_timeouts_total{kind=\"send\"}") ?? 0) >= 9)
        // The upstream connection the proxied stream held is free again.
        #expect(try curl(["-s", "-m", "5", vantage.url("/proxy/echo")]).status == 200)
    }

    /// An HTTP/2 head over h2_max_header_list_size gets 431 with its reason, as an oversized HTTP/1.1 head does, and
    /// the connection goes on serving.
    @Test func anOversizedHTTP2HeadGets431() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let result = try h2Probe(port: vantage.ports["https"]!, spec: [
            "requests": [
                ["method": "GET", "path": "/", "headers": [["x-big", String(repeating: "b", count: 20_000)]]],
                ["method": "GET", "path": "/"],
            ],
        ])
        let streams = try #require(result["streams"] as? [[String: Any]])
        #expect(streams.first?["status"] as? Int == 431, "\(result)")
        #expect((streams.first?["body"] as? String)?.contains("h2_max_header_list_size") == true, "\(result)")
        #expect(streams.last?["status"] as? Int == 200, "\(result)")
    }

    /// A client that asks for files through a closed window and leaves before send_timeout: the files it held open
    /// are closed with its connection (their pending writes fail), not kept for the life of the process.
    @Test func anHTTP2ClientThatLeavesReleasesItsFiles() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let pid = vantage.process.processIdentifier
        let before = openDescriptors(of: pid)
        _ = try h2Probe(port: vantage.ports["https"]!, spec: [
            "initial_window": 0, "read_body": false, "wait": 0.5,
            "requests": Array(repeating: ["method": "GET", "path": "/files/big.bin"], count: 20),
        ])
        let deadline = Date().addingTimeInterval(3)
        var after = openDescriptors(of: pid)
        while after > before && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            after = openDescriptors(of: pid)
        }
        #expect(after <= before, "\(after) descriptors open after the client left, \(before) before")
    }
}
