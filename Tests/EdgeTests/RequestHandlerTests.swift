import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Proxy
import Static
import Testing

@testable import Edge

/// Runs the request handler on an embedded channel with a real route table.
final class HandlerHarness {
    let channel = EmbeddedChannel()
    let pool = NIOThreadPool(numberOfThreads: 1)
    let core: GatewayCore

    init(_ yaml: String, isTLS: Bool = false) throws {
        let configuration = try parseConfiguration(yaml)
        let metrics = RouteMetricsRegistry(loops: 1)
        let proxy = ProxyService(loops: [channel.embeddedEventLoop], logger: Logger(label: "test"))
        let snapshot = try Gateway.makeSnapshot(
            configuration, cache: FileCache(maxBytes: 1 << 20), threadPool: pool, proxy: proxy, metrics: metrics)
        core = GatewayCore(snapshot: snapshot, loops: [channel.embeddedEventLoop], accessLog: nil,
                               threadPool: pool, routeMetrics: metrics, proxy: proxy, logger: Logger(label: "test"))
        let handler = RequestHandler(
            core: core, loop: core.loopContext(for: channel.embeddedEventLoop),
            connection: ConnectionInfo(channel: channel, isTLS: isTLS, core: core), connectionGuard: nil, isHTTP2: false)
        try channel.pipeline.syncOperations.addHandler(HTTP1RequestDecoder(limits: snapshot.limits))
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    deinit { _ = try? channel.finish() }

    struct Answer {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String
    }

    func send(_ uri: String, method: HTTPMethod = .GET, headers: HTTPHeaders = ["Host": "example.com"],
              version: HTTPVersion = .http1_1) throws -> Answer
    {
        var request = "\(method.rawValue) \(uri) HTTP/\(version.major).\(version.minor)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        return try sendRaw(request + "\r\n")
    }

    /// Sends request bytes as a client would (through the HTTP/1.1 decoder) and reads the answer.
    func sendRaw(_ request: String) throws -> Answer {
        try channel.writeInbound(ByteBuffer(string: request))
        // The tick ends: its answers are flushed (FlushCoalescer).
        channel.embeddedEventLoop.run()
        // HTTP/1.1 answers leave the handler as bytes: parse them back.
        var bytes = ByteBuffer()
        while var chunk = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&chunk) }
        let text = String(buffer: bytes)
        guard let split = text.range(of: "\r\n\r\n") else { throw HarnessError.noHead }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = lines.first, let code = Int(statusLine.split(separator: " ")[1]) else {
            throw HarnessError.noHead
        }
        var parsed = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            parsed.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Answer(status: HTTPResponseStatus(statusCode: code), headers: parsed, body: String(text[split.upperBound...]))
    }

    enum HarnessError: Error { case noHead }
}

@Suite struct RequestHandlerTests {
    let yaml = """
        listen: { http: ":8080", }
        sites:
          - hosts: [example.com]
            redirect_https: false
            hsts: true
            routes:
              - { path: /, respond: { status: 200, body: "home", headers: { X-Site: one } } }
              - { path: /old/, redirect: { to: "https://example.com/new{path}", status: 301 } }
              - { path: /upload, respond: "ok", max_body_size: 10 }
        """

    @Test func respondsRedirectsAndAddsStandardHeaders() throws {
        let harness = try HandlerHarness(yaml)
        let home = try harness.send("/")
        #expect(home.status == .ok)
        #expect(home.body == "home")
        #expect(home.headers.first(name: "x-site") == "one")
        #expect(home.headers.first(name: "date") != nil)
        #expect(home.headers.first(name: "strict-transport-security") == nil)  // plain HTTP: no HSTS
        let moved = try harness.send("/old/page?q=1")
        #expect(moved.status == .movedPermanently)
        #expect(moved.headers.first(name: "location") == "https://example.com/new/old/page")
    }

    @Test func unknownHostsAndPathsGetClearAnswers() throws {
        let harness = try HandlerHarness(yaml)
        let unknown = try harness.send("/", headers: ["Host": "other.example"])
        #expect(unknown.status == .notFound)
        #expect(unknown.body.contains("no site is configured for this host"))
    }

    @Test func smugglingShapesAreRefused() throws {
        let harness = try HandlerHarness(yaml)
        let both = try harness.send("/", method: .POST, headers: [
            "Host": "example.com", "Content-Length": "5", "Transfer-Encoding": "chunked",
        ])
        #expect(both.status == .badRequest)
        #expect(both.headers.first(name: "connection") == "close")
        let harness2 = try HandlerHarness(yaml)
        let twice = try harness2.send("/", method: .POST, headers: ["Host": "example.com", "Content-Length": "1", "content-length": "2"])
        #expect(twice.status == .badRequest)
        let harness3 = try HandlerHarness(yaml)
        let noHost = try harness3.send("/", headers: [:])
        #expect(noHost.status == .badRequest)
    }

    @Test func bodyLimitsPerRoute() throws {
        let harness = try HandlerHarness(yaml)
        let tooBig = try harness.send("/upload", method: .POST, headers: ["Host": "example.com", "Content-Length": "11"])
        #expect(tooBig.status == .payloadTooLarge)
    }

    @Test func longTargetsGet414() throws {
        let harness = try HandlerHarness(yaml)
        let answer = try harness.send("/" + String(repeating: "a", count: 9000))
        #expect(answer.status == .uriTooLong)
    }

    @Test func httpsRedirectAndHSTS() throws {
        let config = """
            listen: { http: ":8080" }
            sites:
              - { hosts: [example.com], redirect_https: true, hsts: true, routes: [{ respond: "secure" }] }
            """
        let plain = try HandlerHarness(config)
        // No HTTPS listener in this config, so there is nowhere to redirect to: the site answers as usual.
        #expect(try plain.send("/a?b=c").status == .ok)
        let tls = try HandlerHarness(config, isTLS: true)
        let secure = try tls.send("/")
        #expect(secure.body == "secure")
        #expect(secure.headers.first(name: "strict-transport-security") == "max-age=31536000")
    }
}
