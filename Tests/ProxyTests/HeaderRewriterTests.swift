import NIOCore
import HTTP1Parser
import NIOHTTP1
import Testing

@testable import Proxy

@Suite struct HeaderRewriterTests {
    let client = ClientInfo(address: "198.51.100.7", peerIsTrusted: false, scheme: "https")

    func rewrite(_ headers: HTTPHeaders, client: ClientInfo? = nil, webSocket: Bool = false, chunked: Bool = false)
        -> HTTPHeaders
    {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/x", headers: headers)
        return HeaderRewriter.upstreamRequest(
            RequestHead(head), path: "/x", hostValue: "example.com", client: client ?? self.client, requestID: "id-1",
            webSocket: webSocket, chunked: chunked
        ).headers
    }

    @Test func hopByHopHeadersAndTheOnesConnectionNamesAreDropped() {
        let out = rewrite([
            "Host": "example.com", "Connection": "keep-alive, X-Private", "X-Private": "1", "Keep-Alive": "timeout=5",
            "TE": "trailers", "Upgrade": "h2c", "Proxy-Authorization": "Basic eA==", "Proxy-Connection": "keep-alive",
            "Transfer-Encoding": "chunked", "Expect": "100-continue", "Accept": "text/html",
        ], chunked: true)
        for name in ["connection", "x-private", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection", "expect"] {
            #expect(!out.contains(name: name), "\(name) must not go upstream")
        }
        #expect(out["accept"] == ["text/html"])
        #expect(out["transfer-encoding"] == ["chunked"])
        #expect(out["host"] == ["example.com"])
    }

    @Test func contentLengthIsKeptOnce() {
        let out = rewrite(["Host": "a", "Content-Length": "5"])
        #expect(out["content-length"] == ["5"])
        #expect(!out.contains(name: "transfer-encoding"))
    }

    @Test func untrustedPeersCannotForgeForwardingHeaders() {
        let out = rewrite([
            "Host": "example.com", "X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "evil", "Forwarded": "for=10.0.0.1", "X-Request-Id": "forged",
        ])
        #expect(out["x-forwarded-for"] == ["198.51.100.7"])
        #expect(out["x-forwarded-proto"] == ["https"])
        #expect(out["x-forwarded-host"] == ["example.com"])
        #expect(out["forwarded"] == ["for=198.51.100.7;proto=https;host=\"example.com\""])
        #expect(out["x-request-id"] == ["id-1"])
    }

    @Test func realIPIsTheEdgesToSayAndUnderscoreNamesStayBehind() {
        let out = rewrite(["Host": "a", "X-Real-IP": "10.9.9.9", "X_Real_IP": "10.8.8.8", "X_Custom": "1", "X-Custom": "2"])
        #expect(out["x-real-ip"] == ["198.51.100.7"])
        #expect(!out.contains(name: "x_real_ip") && !out.contains(name: "x_custom"))
        #expect(out["x-custom"] == ["2"])
        let trusted = ClientInfo(address: "10.0.0.2", peerIsTrusted: true, scheme: "http")
        #expect(rewrite(["Host": "a", "X-Real-IP": "203.0.113.9"], client: trusted)["x-real-ip"] == ["203.0.113.9"])
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["X_Custom": "1"])
        let passed = HeaderRewriter.upstreamRequest(
            RequestHead(head), path: "/", hostValue: "a", client: client, requestID: "r", webSocket: false, chunked: false, underscores: true)
        #expect(passed.headers["x_custom"] == ["1"])
    }

    @Test func cookieFieldsAreJoinedIntoOne() {
        let out = rewrite(HTTPHeaders([("Host", "a"), ("cookie", "a=1"), ("Cookie", "b=2"), ("cookie", "c=3")]))
        #expect(out["cookie"] == ["a=1; b=2; c=3"])
    }

    @Test func trailersCannotCarryWhatTheHeadDecides() {
        for name in ["Host", "Content-Length", "Transfer-Encoding", "Authorization", "X-Forwarded-For", "Cookie",
                     "X-Real-IP", "Content-Type", "Connection", "X_Checksum", "Trailer"]
        {
            #expect(!HeaderRewriter.isForwardableTrailer(name), "\(name)")
        }
        #expect(HeaderRewriter.isForwardableTrailer("X-Checksum") && HeaderRewriter.isForwardableTrailer("grpc-status"))
    }

    @Test func trustedPeersAreExtended() {
        let trusted = ClientInfo(address: "2001:db8::1", peerIsTrusted: true, scheme: "http")
        let out = rewrite(["Host": "example.com", "X-Forwarded-For": "203.0.113.1", "X-Forwarded-Proto": "https",
                           "Forwarded": "for=203.0.113.1"], client: trusted)
        #expect(out["x-forwarded-for"] == ["203.0.113.1, 2001:db8::1"])
        #expect(out["x-forwarded-proto"] == ["https"])
        #expect(out["forwarded"] == ["for=203.0.113.1, for=\"[2001:db8::1]\";proto=http;host=\"example.com\""])
    }

    @Test func webSocketKeepsUpgrade() {
        let out = rewrite(["Host": "a", "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "k"], webSocket: true)
        #expect(out["upgrade"] == ["websocket"])
        #expect(out["connection"] == ["upgrade"])
        #expect(out["sec-websocket-key"] == ["k"])
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Connection": "keep-alive, Upgrade", "Upgrade": "WebSocket"])
        #expect(HeaderRewriter.isWebSocketUpgrade(RequestHead(head)))
        #expect(!HeaderRewriter.isWebSocketUpgrade(RequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Upgrade": "websocket"])))
    }

    func passed(_ response: String, status: inout Int) throws -> [(String, String)] {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHead: false)
        var buffer = ByteBuffer(string: response)
        guard case .head(let head) = try parser.next(&buffer) else { throw ParserTests.Unexpected() }
        status = Int(head.status.code)
        var headers: [(String, String)] = []
        _ = head.forEachHeader { headers.append((String(decoding: $0, as: UTF8.self), String(decoding: $1, as: UTF8.self))) }
        return headers
    }

    @Test func responseHeadersLoseHopByHopButKeepLength() throws {
        var status = 0
        let out = try passed(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
                + "Set-Cookie: a=1\r\nUpgrade: websocket\r\nProxy-Thing: 1\r\n\r\nabc", status: &status)
        #expect(out.map(\.0) == ["Content-Length", "Set-Cookie"])
        #expect(out.first?.1 == "3")
        // The HTTP/1.1 form copies the kept lines as they came.
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHead: false)
        var raw = ByteBuffer(string: "HTTP/1.1 200 OK\r\nA: 1\r\nB:  2 \r\nConnection: keep-alive\r\nC: 3\r\nD: 4\r\n\r\n")
        guard case .head(let head) = try parser.next(&raw) else { throw ParserTests.Unexpected() }
        var lines = ByteBuffer()
        _ = head.writeHTTP1Headers(into: &lines)
        #expect(String(buffer: lines) == "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n")
        let upgraded = try passed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", status: &status)
        #expect(status == 101)
        #expect(upgraded.map(\.0) == ["Upgrade"])
    }

    @Test func requestHeadIsSerializedOnce() {
        var buffer = ByteBuffer()
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/a?b", headers: ["Host": "example.com", "Accept": "*/*"])
        HeaderRewriter.writeUpstreamRequest(
            RequestHead(head), path: "/a?b", hostValue: "example.com", client: client, requestID: "r1", webSocket: false, chunked: false,
            into: &buffer)
        let text = String(buffer: buffer)
        #expect(text.hasPrefix("GET /a?b HTTP/1.1\r\nAccept: */*\r\nHost: example.com\r\nX-Forwarded-For: 198.51.100.7\r\n"))
        #expect(text.hasSuffix("X-Request-Id: r1\r\n\r\n"))
    }

    /// The `Forwarded` line's room is a bound made from its values and `forwardedConstantBytes` (its bytes are then
    /// copied without further checks): the element's constant pieces must fit in that constant, for IPv4 and IPv6
    /// peers, and a whole line never exceeds its bound.
    @Test func theForwardedLinesRoomCoversItsPieces() {
        for address in ["203.0.113.7", "2001:db8::1", ""] {
            let client = ClientInfo(address: address, peerIsTrusted: true, scheme: "https")
            var constant = 0
            HeaderRewriter.forEachForwardedPiece(client: client, host: "") { constant += $0.utf8.count }
            constant -= address.utf8.count + client.scheme.utf8.count
            #expect(constant <= ByteBuffer.forwardedConstantBytes, "peer \(address)")
            for host in ["example.com", "a\"b\\c:8443", ""] {
                var line = ByteBuffer()
                line.addForwarded(earlier: "for=198.51.100.1", client: client, host: host)
                let bound = "Forwarded: ".utf8.count + ByteBuffer.forwardedConstantBytes + 2 + "for=198.51.100.1".utf8.count + 2
                    + address.utf8.count + client.scheme.utf8.count + host.utf8.count
                #expect(line.readableBytes <= bound)
                #expect(String(buffer: line).hasSuffix("\"\r\n"))
            }
        }
    }

    @Test func theBytesSentUpstreamCarryTheSameFieldsAsTheHead() {
        // The data path writes bytes (the Forwarded element piece by piece); tools build fields: they must agree,
        // for an IPv6 peer that is trusted, a client's earlier elements and a Host with a quote in it.
        let trusted = ClientInfo(address: "2001:db8::1", peerIsTrusted: true, scheme: "http")
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/x", headers: [
            "Host": "ex\"ample.com", "Forwarded": "for=203.0.113.1", "Cookie": "a=1", "cookie": "b=2",
            "X-Forwarded-For": "203.0.113.1", "Content-Length": "3", "Accept": "*/*",
        ])
        let fields = HeaderRewriter.upstreamRequest(
            RequestHead(head), path: "/x", hostValue: "upstream", client: trusted, requestID: "id-1", webSocket: false, chunked: false
        ).headers
        var buffer = ByteBuffer()
        HeaderRewriter.writeUpstreamRequest(
            RequestHead(head), path: "/x", hostValue: "upstream", client: trusted, requestID: "id-1", webSocket: false, chunked: false,
            into: &buffer)
        let lines = String(buffer: buffer).components(separatedBy: "\r\n")
        #expect(lines.first == "POST /x HTTP/1.1" && lines.suffix(2) == ["", ""])
        let written = lines.dropFirst().dropLast(2).map { line -> String in
            let colon = line.firstIndex(of: ":")!
            return "\(line[..<colon]): \(line[line.index(colon, offsetBy: 2)...])"
        }
        #expect(written == fields.map { "\($0.name): \($0.value)" })
        #expect(fields["forwarded"] == ["for=203.0.113.1, for=\"[2001:db8::1]\";proto=http;host=\"example.com\""])
    }

    @Test func requestIDsAreValidatedBeforeTheyAreLogged() {
        #expect(HeaderRewriter.acceptableRequestID("4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(HeaderRewriter.acceptableRequestID("req-42:abc/def=="))
        #expect(!HeaderRewriter.acceptableRequestID(""))
        #expect(!HeaderRewriter.acceptableRequestID("has space"))
        #expect(!HeaderRewriter.acceptableRequestID("quote\"inside"))
        #expect(!HeaderRewriter.acceptableRequestID(String(repeating: "a", count: 129)))
    }
}
