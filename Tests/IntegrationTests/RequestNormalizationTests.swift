import Foundation
import Testing

/// Routing on the normalized path, over HTTP/1.1 (raw sockets) and HTTP/2 (the `h2` package), through the real
/// binary in front of a real Node backend: no spelling of a denied path reaches the backend, and what does reach it
/// is the normal form the route was chosen on.
@Suite(.serialized) struct RequestNormalizationTests {
    /// How a raw target must be answered.
    enum Expected: Sendable {
        /// The deny route answered (403 "denied").
        case denied
        /// The backend's echo answered, and it was sent this target.
        case backend(String)
        /// Refused before routing.
        case refused(Int)
    }

    /// The table both protocols go through. The deny route is `/proxy/admin/`; `/proxy/` goes to the backend.
    static let table: [(String, Expected)] = [
        ("/proxy/admin/secret", .denied),
        ("/proxy/x/../admin/secret", .denied),
        ("/proxy//admin/secret", .denied),
        ("/proxy/%61dmin/secret", .denied),
        ("/proxy/%61%64%6d%69%6e/secret", .denied),
        ("/proxy/./admin/secret", .denied),
        ("/proxy/%2e/admin/secret", .denied),
        ("/proxy/x/%2e%2e/admin/secret", .denied),
        ("//proxy/admin/secret", .denied),
        ("/proxy///admin//secret", .denied),
        ("/proxy/admin/x/../secret", .denied),
        ("/proxy/admin%2Fsecret", .refused(400)),
        ("/proxy%2fadmin/secret", .refused(400)),
        ("/proxy/admin%5csecret", .refused(400)),
        ("/proxy/../../etc/passwd", .refused(400)),
        ("/proxy/admin/%00", .refused(400)),
        ("/proxy/%zz", .refused(400)),
        ("/proxy/echo", .backend("/proxy/echo")),
        ("/proxy/x/../echo?q=1&r=/../", .backend("/proxy/echo?q=1&r=/../")),
        ("/proxy//echo", .backend("/proxy/echo")),
        ("/proxy/%65cho", .backend("/proxy/echo")),
        ("/proxy/echo/%c3%a9", .backend("/proxy/echo/%C3%A9")),
        ("/proxy/echo/%2561", .backend("/proxy/echo/%2561")),
    ]

    static func start(extraLimits: String = "") throws -> (VantageProcess, BackendProcess) {
        let backend = try BackendProcess.node("norm")
        let vantage = try VantageProcess(
            config: """
                listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
                admin: { listen: off }
                access_log: "{{DIR}}/access.log"
                tls: { certificates: [{ cert: "{{DIR}}/a.pem", key: "{{DIR}}/a.key" }] }
                limits: { header_timeout: 2s\(extraLimits) }
                tracking: { spool: { dir: "{{DIR}}/spool", sync_interval: 50ms } }
                sites:
                  - routes:
                      - { path: /proxy/admin/, respond: { status: 403, body: "denied" } }
                      - { path: /proxy/, proxy: { upstreams: ["\(backend.address)"] } }
                      - { respond: "root" }
                """,
            expect: ["http", "https"]
        ) { directory in _ = try makeCertificate(in: directory, name: "a", names: ["localhost"]) }
        return (vantage, backend)
    }

    func check(_ raw: String, _ expected: Expected, status: Int?, body: String, protocolName: String) {
        let label = "\(protocolName) \(raw)"
        switch expected {
        case .denied:
            #expect(status == 403 && body == "denied", "\(label): \(status ?? 0) \(body.prefix(200))")
        case .refused(let code):
            #expect(status == code, "\(label): \(status ?? 0) \(body.prefix(200))")
            #expect(!body.contains("\"backend\""), "\(label) reached the backend")
        case .backend(let target):
            let url = (try? json(body))?["url"] as? String
            #expect(status == 200 && url == target, "\(label): \(status ?? 0) \(body.prefix(300))")
        }
    }

    @Test func http1RoutesOnTheNormalPath() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        for (raw, expected) in Self.table {
            let answer = try rawExchange(
                port: vantage.ports["http"]!, send: ["GET \(raw) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"])
            let (status, body) = split(answer)
            check(raw, expected, status: status, body: body, protocolName: "HTTP/1.1")
        }
    }

    @Test func http2RoutesOnTheNormalPath() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let result = try h2Probe(port: vantage.ports["https"]!, spec: [
            "requests": Self.table.map { ["method": "GET", "path": $0.0, "authority": "localhost"] },
        ])
        let streams = try #require(result["streams"] as? [[String: Any]])
        #expect(streams.count == Self.table.count)
        for ((raw, expected), stream) in zip(Self.table, streams) {
            check(raw, expected, status: stream["status"] as? Int, body: stream["body"] as? String ?? "",
                  protocolName: "HTTP/2")
        }
    }

    @Test func theAccessLogKeepsWhatWasSentAndRefusalsAreEvents() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["http"]!
        _ = try rawExchange(port: port, send: ["GET /proxy/x/../echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"])
        _ = try rawExchange(port: port, send: ["GET /proxy%2Fadmin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"])
        _ = try rawExchange(port: port, send: ["\u{1}\u{2} nonsense\r\n\r\n"])
        Thread.sleep(forTimeInterval: 1.5)
        let log = try String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)
        #expect(log.contains("\"uri\":\"/proxy/x/../echo\""))
        #expect(log.contains("\"uri\":\"/proxy%2Fadmin\",") && log.contains("\"status\":400"))
        #expect(log.split(separator: "\n").count == 3, "\(log)")
        let export = try run([VantageProcess.binary, "events", "export", "--config", vantage.configPath])
        let events = export.stdout.split(separator: "\n").compactMap { try? json(String($0)) }
        #expect(events.count == 3, "\(export.stdout)")
        #expect(events.contains { $0["kind"] as? String == "request" && $0["path"] as? String == "/proxy/echo" })
        #expect(events.filter { $0["kind"] as? String == "refused" && $0["status"] as? Int == 400 }.count == 2)
    }

    @Test func forwardedHeadsAreNormalized() throws {
        let (vantage, backend) = try Self.start()
        defer { _ = vantage.stop(); backend.kill() }
        let port = vantage.ports["http"]!
        // Forged forwarding fields and underscore names do not reach the backend; absolute-form sets the host.
        let forged = split(try rawExchange(port: port, send: [
            "GET http://Example.COM:8080/proxy/x/../echo?a=1 HTTP/1.1\r\nHost: other\r\nX-Real-IP: 10.9.9.9\r\n"
                + "X_Real_IP: 10.8.8.8\r\nX-Forwarded-For: 10.7.7.7\r\nConnection: close\r\n\r\n",
        ]))
        let echoed = try json(forged.body)
        let headers = try #require(echoed["headers"] as? [String: String])
        #expect(echoed["url"] as? String == "/proxy/echo?a=1")
        #expect(headers["host"] == "Example.COM:8080")
        #expect(headers["x-real-ip"] == "127.0.0.1" && headers["x-forwarded-for"] == "127.0.0.1")
        #expect(headers["x_real_ip"] == nil)
        // Hosts a backend could read another way are refused.
        for host in ["evil@localhost", "local host", "localhost/evil"] {
            let answer = split(try rawExchange(port: port, send: ["GET /proxy/echo HTTP/1.1\r\nHost: \(host)\r\n\r\n"]))
            #expect(answer.status == 400, "\(host): \(answer.body)")
        }
        let connect = split(try rawExchange(port: port, send: ["CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n"]))
        #expect(connect.status == 405 || connect.status == 400)
        let coding = split(try rawExchange(port: port, send: [
            "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n\r\n",
        ]))
        #expect(coding.status == 501 || coding.status == 400)

        // HTTP/2: cookies joined for the HTTP/1.1 backend, lowercase methods, fragments and bad authorities refused,
        // routing fields sent as trailers not forwarded.
        let result = try h2Probe(port: vantage.ports["https"]!, spec: [
            "requests": [
                ["method": "GET", "path": "/proxy/echo", "headers": [["cookie", "a=1"], ["cookie", "b=2"], ["x_api", "1"]]],
                ["method": "get", "path": "/proxy/echo"],
                ["method": "GET", "path": "/proxy/echo#x"],
                ["method": "GET", "path": "/proxy/echo", "authority": "evil@localhost"],
                ["method": "POST", "path": "/proxy/echo", "body": "hi", "trailers": [["x-checksum", "1"], ["host", "evil"], ["authorization", "x"]]],
            ],
        ])
        let streams = try #require(result["streams"] as? [[String: Any]])
        let joined = try json(streams[0]["body"] as? String ?? "")
        let joinedHeaders = try #require(joined["headers"] as? [String: String])
        #expect(joinedHeaders["cookie"] == "a=1; b=2" && joinedHeaders["x_api"] == nil, "\(joined)")
        #expect(streams[1]["status"] as? Int == 400 && streams[2]["status"] as? Int == 400 && streams[3]["status"] as? Int == 400,
                "\(streams.map { $0["status"] ?? "-" })")
        let trailed = try json(streams[4]["body"] as? String ?? "")
        #expect((trailed["trailers"] as? [String: String]) == ["x-checksum": "1"], "\(trailed)")
    }

    @Test func encodedSlashPoliciesAreConfigurable() throws {
        let (keep, backend) = try Self.start(extraLimits: ", encoded_slashes: keep")
        defer { _ = keep.stop(); backend.kill() }
        let kept = split(try rawExchange(
            port: keep.ports["http"]!, send: ["GET /proxy/echo/a%2fb HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"]))
        #expect((try? json(kept.body))?["url"] as? String == "/proxy/echo/a%2Fb")
        // An encoded slash kept encoded is no separator: `/proxy/admin%2Fx` is not under `/proxy/admin/`.
        let notDenied = split(try rawExchange(
            port: keep.ports["http"]!, send: ["GET /proxy/admin%2Fx HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"]))
        #expect(notDenied.status != 403)

        let (decode, backend2) = try Self.start(extraLimits: ", encoded_slashes: decode")
        defer { _ = decode.stop(); backend2.kill() }
        let decoded = split(try rawExchange(
            port: decode.ports["http"]!, send: ["GET /proxy%2Fadmin%2Fsecret HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"]))
        #expect(decoded.status == 403)
    }
}

/// How many HTTP/1.1 answers a raw exchange got: status lines (`HTTP/1.1 200 OK`), wherever a body before them
/// ended.
func answerCount(_ answer: String) -> Int {
    let statusLine = try! NSRegularExpression(pattern: "HTTP/1\\.1 [1-5][0-9][0-9] [A-Z]")
    return statusLine.numberOfMatches(in: answer, range: NSRange(answer.startIndex..., in: answer))
}

/// Status and body of a raw HTTP/1.1 answer (the first one, when several came back).
func split(_ answer: String) -> (status: Int?, body: String) {
    guard answer.hasPrefix("HTTP/1.1 ") else { return (nil, answer) }
    let status = Int(answer.dropFirst(9).prefix(3))
    guard let blank = answer.range(of: "\r\n\r\n") else { return (status, "") }
    return (status, String(answer[blank.upperBound...]))
}

/// Runs `h2_probe.py` (the `h2` package in the test venv) against Vantage's HTTPS port and returns its JSON answer.
func h2Probe(port: Int, spec: [String: Any]) throws -> [String: Any] {
    let specFile = FileManager.default.temporaryDirectory.appendingPathComponent("h2spec-\(UUID().uuidString).json")
    try JSONSerialization.data(withJSONObject: spec).write(to: specFile)
    defer { try? FileManager.default.removeItem(at: specFile) }
    let script = BackendProcess.backendsFolder.appendingPathComponent("h2_probe.py").path
    let result = try run(["/bin/sh", "-c", "\"$0\" \"$1\" \"$2\" < \"$3\"", BackendProcess.python, script, String(port), specFile.path])
    guard result.status == 0 else { throw Failure("h2_probe failed: \(result.stderr)") }
    return try json(result.stdout)
}
