import NIOHTTP1

/// Who sent the request, as the edge saw it: what the forwarding headers are built from.
public struct ClientInfo: Sendable {
    /// The peer's address as text (`203.0.113.7`, `2001:db8::1`).
    public var address: String
    /// Whether the peer is one of `trusted_proxies`: only then are incoming forwarding headers kept and extended.
    public var peerIsTrusted: Bool
    /// `http` or `https`.
    public var scheme: String

    public init(address: String, peerIsTrusted: Bool, scheme: String) {
        self.address = address
        self.peerIsTrusted = peerIsTrusted
        self.scheme = scheme
    }
}

/// The header work of a proxy, both ways, as pure functions: hop-by-hop headers out, forwarding headers in,
/// request ID kept or made, path rewritten.
public enum HeaderRewriter {
    /// The request head sent upstream (always HTTP/1.1, keep-alive).
    ///
    /// - Parameters:
    ///   - path: the request target after prefix stripping or rewriting.
    ///   - hostValue: the `Host` to send.
    ///   - requestID: the ID the edge settled on (kept from the client when valid).
    ///   - webSocket: keep `Upgrade: websocket` and ask the upstream to upgrade.
    ///   - chunked: the body has no announced length (HTTP/2 without content-length, or chunked on HTTP/1.1).
    public static func upstreamRequest(
        _ head: HTTPRequestHead, path: String, hostValue: String, client: ClientInfo, requestID: String,
        webSocket: Bool, chunked: Bool
    ) -> HTTPRequestHead {
        let incoming = head.headers
        let named = incoming.contains(name: "connection") ? connectionTokens(incoming) : nil
        var headers = HTTPHeaders()
        headers.reserveCapacity(incoming.count + 6)
        var forwardedFor: String?
        var forwardedProto: String?
        var forwardedHost: String?
        var forwarded: String?
        var originalHost: String?
        for (name, value) in incoming {
            switch classify(name) {
            case .hopByHop, .requestID, .framing, .contentLength, .expect:
                // Content-Length is re-added below from the framing decision.
                continue
            case .host:
                if originalHost == nil { originalHost = value }
                continue
            case .upgrade:
                if webSocket { headers.add(name: name, value: value) }
                continue
            case .xForwardedFor:
                forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value
                continue
            case .xForwardedProto:
                forwardedProto = value
                continue
            case .xForwardedHost:
                forwardedHost = value
                continue
            case .forwarded:
                forwarded = forwarded.map { $0 + ", " + value } ?? value
                continue
            case .other:
                if let named, named.contains(where: { $0.equalsCaseInsensitive(name) }) { continue }
                headers.add(name: name, value: value)
            }
        }
        headers.add(name: "Host", value: hostValue)
        let host = originalHost ?? hostValue
        let trusted = client.peerIsTrusted
        if trusted, let forwardedFor {
            headers.add(name: "X-Forwarded-For", value: forwardedFor + ", " + client.address)
        } else {
            headers.add(name: "X-Forwarded-For", value: client.address)
        }
        headers.add(name: "X-Forwarded-Proto", value: trusted ? (forwardedProto ?? client.scheme) : client.scheme)
        headers.add(name: "X-Forwarded-Host", value: trusted ? (forwardedHost ?? host) : host)
        let element = forwardedElement(client: client, host: host)
        if trusted, let forwarded {
            headers.add(name: "Forwarded", value: forwarded + ", " + element)
        } else {
            headers.add(name: "Forwarded", value: element)
        }
        headers.add(name: "X-Request-Id", value: requestID)
        if webSocket {
            headers.add(name: "Connection", value: "upgrade")
        } else if chunked {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        } else if let length = incoming.first(name: "content-length") {
            headers.add(name: "Content-Length", value: length)
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: path, headers: headers)
    }

    /// The response headers passed to the client: hop-by-hop headers and Transfer-Encoding out (the edge frames the
    /// body itself; Content-Length stays), `Upgrade` kept for a 101.
    public static func downstreamResponse(_ headers: HTTPHeaders, status: Int) -> HTTPHeaders {
        var result = HTTPHeaders()
        result.reserveCapacity(headers.count)
        _ = forEachDownstreamHeader(headers, status: status) { result.add(name: $0, value: $1) }
        return result
    }

    /// What the edge needs to know about the passed headers to frame the response.
    public struct PassedHeaders: Sendable {
        public var hasContentLength = false
        public var hasDate = false
    }

    /// Calls `body` for each response header that may go to the client (see ``downstreamResponse(_:status:)``),
    /// without building a new header list.
    @inline(__always)
    public static func forEachDownstreamHeader(
        _ headers: HTTPHeaders, status: Int, _ body: (String, String) -> Void
    ) -> PassedHeaders {
        var passed = PassedHeaders()
        let named = headers.contains(name: "connection") ? connectionTokens(headers) : nil
        for (name, value) in headers {
            switch classify(name) {
            case .hopByHop, .framing:
                continue
            case .upgrade:
                if status == 101 { body(name, value) }
                continue
            case .contentLength:
                passed.hasContentLength = true
            case .other, .host, .requestID, .expect, .xForwardedFor, .xForwardedProto, .xForwardedHost, .forwarded:
                if let named, named.contains(where: { $0.equalsCaseInsensitive(name) }) { continue }
                if !passed.hasDate && name.utf8.count == 4 && name.equalsCaseInsensitive("date") { passed.hasDate = true }
            }
            body(name, value)
        }
        return passed
    }

    /// `X-Request-Id` from the client when it looks like an ID (1–128 characters of letters, digits and `-_.:/+=@`),
    /// so a log line cannot be forged through it.
    public static func acceptableRequestID(_ value: String) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "-_.:/+=@".utf8.contains(byte)
            }
        }
    }

    /// Whether the request asks for a WebSocket upgrade (`Connection: upgrade` and `Upgrade: websocket`).
    public static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        guard head.method == .GET, let upgrade = head.headers.first(name: "upgrade"),
            upgrade.lowercased().contains("websocket")
        else { return false }
        return head.headers[canonicalForm: "connection"].contains { $0.equalsCaseInsensitive("upgrade") }
    }

    /// An RFC 7239 element: `for=203.0.113.7;proto=https;host="example.com"`.
    static func forwardedElement(client: ClientInfo, host: String) -> String {
        let node = client.address.utf8.contains(UInt8(ascii: ":")) ? "\"[\(client.address)]\"" : client.address
        // Inside a quoted-string, a quote or backslash from the Host header could end it early: drop them.
        let quotedHost = host.utf8.contains { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
            ? String(host.filter { $0 != "\"" && $0 != "\\" }) : host
        return "for=\(node);proto=\(client.scheme);host=\"\(quotedHost)\""
    }

    /// The header names a `Connection` header lists (they are hop-by-hop too), or nil when it lists none beyond
    /// `keep-alive`, `close` and `upgrade` (the common case, answered without allocating).
    static func connectionTokens(_ headers: HTTPHeaders) -> [Substring]? {
        var tokens: [Substring]?
        for (name, value) in headers where name.equalsCaseInsensitive("connection") {
            if value.equalsCaseInsensitive("keep-alive") || value.equalsCaseInsensitive("close") { continue }
            for token in value.split(separator: ",") {
                let trimmed = token.trimmingSpaces()
                if trimmed.isEmpty || trimmed.equalsCaseInsensitive("keep-alive") || trimmed.equalsCaseInsensitive("close")
                    || trimmed.equalsCaseInsensitive("upgrade")
                {
                    continue
                }
                tokens = (tokens ?? []) + [trimmed]
            }
        }
        return tokens
    }

    enum HeaderClass {
        case hopByHop, framing, contentLength, upgrade, host, requestID, expect, xForwardedFor, xForwardedProto, xForwardedHost, forwarded
        case other
    }

    /// Sorts a header name by its first byte and length before comparing, since nearly every header is `.other`.
    @inline(__always)
    static func classify(_ name: String) -> HeaderClass {
        let utf8 = name.utf8
        guard let first = utf8.first else { return .other }
        switch first | 0x20 {
        case UInt8(ascii: "c"):
            if name.equalsCaseInsensitive("connection") { return .hopByHop }
            return name.equalsCaseInsensitive("content-length") ? .contentLength : .other
        case UInt8(ascii: "k"):
            return name.equalsCaseInsensitive("keep-alive") ? .hopByHop : .other
        case UInt8(ascii: "t"):
            if name.equalsCaseInsensitive("transfer-encoding") { return .framing }
            return name.equalsCaseInsensitive("te") ? .hopByHop : .other
        case UInt8(ascii: "u"):
            return name.equalsCaseInsensitive("upgrade") ? .upgrade : .other
        case UInt8(ascii: "p"):
            return utf8.count > 6 && Substring(name).prefix(6).equalsCaseInsensitive("proxy-") ? .hopByHop : .other
        case UInt8(ascii: "h"):
            return name.equalsCaseInsensitive("host") ? .host : .other
        case UInt8(ascii: "e"):
            return name.equalsCaseInsensitive("expect") ? .expect : .other
        case UInt8(ascii: "f"):
            return name.equalsCaseInsensitive("forwarded") ? .forwarded : .other
        case UInt8(ascii: "x"):
            if name.equalsCaseInsensitive("x-forwarded-for") { return .xForwardedFor }
            if name.equalsCaseInsensitive("x-forwarded-proto") { return .xForwardedProto }
            if name.equalsCaseInsensitive("x-forwarded-host") { return .xForwardedHost }
            if name.equalsCaseInsensitive("x-request-id") { return .requestID }
            return .other
        default:
            return .other
        }
    }
}

extension StringProtocol {
    /// ASCII case-insensitive equality without allocating.
    @inline(__always)
    func equalsCaseInsensitive(_ other: some StringProtocol) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            guard x | 0x20 == y | 0x20, (x | 0x20) >= UInt8(ascii: "a"), (x | 0x20) <= UInt8(ascii: "z") else {
                return false
            }
        }
        return true
    }

    func trimmingSpaces() -> Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
