import HTTP1Parser
import HeaderRules
import NIOCore
import NIOHTTP1
import RequestTarget

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
    /// The request head sent upstream (always HTTP/1.1, keep-alive), as NIO's type (for tests and tools; the data
    /// path writes bytes with ``writeUpstreamRequest(_:path:hostValue:client:requestID:webSocket:chunked:into:)``).
    ///
    /// - Parameters:
    ///   - path: the request target after prefix stripping or rewriting.
    ///   - hostValue: the `Host` to send.
    ///   - requestID: the ID the edge settled on (kept from the client when valid).
    ///   - webSocket: keep `Upgrade: websocket` and ask the upstream to upgrade.
    ///   - chunked: the body has no announced length (HTTP/2 without content-length, or chunked on HTTP/1.1).
    ///   - underscores: pass header names with `_` (`underscores_in_headers`); dropped otherwise.
    public static func upstreamRequest(
        _ head: RequestHead, path: String, hostValue: String, client: ClientInfo, requestID: RequestID,
        webSocket: Bool, chunked: Bool, underscores: Bool = false
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 6)
        addUpstreamHeaders(
            head, hostValue: hostValue, client: client, requestID: requestID, webSocket: webSocket, chunked: chunked,
            underscores: underscores, to: &headers)
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: path, headers: headers)
    }

    /// Writes the request head sent upstream: request line, rewritten headers, blank line.
    static func writeUpstreamRequest(
        _ head: RequestHead, path: String, hostValue: String, client: ClientInfo, requestID: RequestID,
        webSocket: Bool, chunked: Bool, underscores: Bool = false, rules: UpstreamHeaderRules? = nil,
        into buffer: inout ByteBuffer
    ) {
        var estimate = path.utf8.count + 320 + client.address.utf8.count * 2 + hostValue.utf8.count * 3
        estimate += head.headers.byteCount + 4 * head.headers.count
        buffer.reserveCapacity(minimumWritableBytes: estimate)
        buffer.writeString(head.method.rawValue)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(path)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        addUpstreamHeaders(
            head, hostValue: hostValue, client: client, requestID: requestID, webSocket: webSocket, chunked: chunked,
            underscores: underscores, rules: rules, to: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// Adds every header of the upstream request to `sink`: the client's minus hop-by-hop and forwarding headers
    /// (and names with `_` unless `underscores`), its cookies as one `Cookie` field, then Host, the forwarding
    /// headers (`X-Real-IP` among them), X-Request-Id and the framing. Forwarding headers from a peer that is not a
    /// trusted proxy are replaced, never passed on: a client cannot choose the address the backend sees.
    @inline(__always)
    static func addUpstreamHeaders<Sink: UpstreamHeaderSink>(
        _ head: RequestHead, hostValue: String, client: ClientInfo, requestID: RequestID, webSocket: Bool,
        chunked: Bool, underscores: Bool = false, rules: UpstreamHeaderRules? = nil, to sink: inout Sink
    ) {
        // `proxy.request_headers`: the names it sets or removes never leave as they came (nor as the edge made
        // them: a rule may replace X-Forwarded-For or X-Request-Id); its values go before the framing headers.
        func emit(_ name: String, _ value: String) {
            if rules?.rules.drops(name.utf8) != true { sink.addField(name, value) }
        }
        let incoming = head.headers
        let named = incoming.contains(name: "connection") ? connectionTokens(incoming) : nil
        var forwardedFor: String?
        var forwardedProto: String?
        var forwardedHost: String?
        var forwarded: String?
        var originalHost: String?
        var contentLength: String?
        var realIP: String?
        var cookie: String?
        // The client's fields as bytes: the ones passed on are copied as they came, and a string is made only for
        // the few values kept for the forwarding headers.
        incoming.forEach { name, valueBytes in
            func value() -> String { String(decoding: valueBytes, as: UTF8.self) }
            switch classify(name) {
            case .hopByHop, .requestID, .framing, .expect:
                return
            case .xRealIP:
                if realIP == nil { realIP = value() }
            case .cookie:
                // HTTP/2 splits cookies over several fields; an HTTP/1.1 server expects one (RFC 9113 §8.2.3).
                cookie = cookie.map { $0 + "; " + value() } ?? value()
            case .contentLength:
                // Re-added below from the framing decision.
                if contentLength == nil { contentLength = value() }
            case .host:
                if originalHost == nil { originalHost = value() }
            case .upgrade:
                if webSocket && rules?.rules.drops(name) != true { sink.addField(name: name, value: valueBytes) }
            case .xForwardedFor:
                forwardedFor = forwardedFor.map { $0 + ", " + value() } ?? value()
            case .xForwardedProto:
                forwardedProto = value()
            case .xForwardedHost:
                forwardedHost = value()
            case .forwarded:
                forwarded = forwarded.map { $0 + ", " + value() } ?? value()
            case .other:
                if let named, named.contains(where: { $0.utf8.equalsCaseInsensitive(name) }) { return }
                // `X_Real_IP` must not stand in for `X-Real-IP` at a backend that maps both to one variable (CGI,
                // PHP, many frameworks): dropped, as nginx does by default.
                if !underscores && name.contains(UInt8(ascii: "_")) { return }
                if rules?.rules.drops(name) != true { sink.addField(name: name, value: valueBytes) }
            }
        }
        if let cookie { emit("Cookie", cookie) }
        emit("Host", hostValue)
        let host = originalHost ?? hostValue
        let trusted = client.peerIsTrusted
        if trusted, let forwardedFor {
            emit("X-Forwarded-For", forwardedFor + ", " + client.address)
        } else {
            emit("X-Forwarded-For", client.address)
        }
        emit("X-Forwarded-Proto", trusted ? (forwardedProto ?? client.scheme) : client.scheme)
        emit("X-Forwarded-Host", trusted ? (forwardedHost ?? host) : host)
        emit("X-Real-IP", trusted ? (realIP ?? client.address) : client.address)
        if rules?.rules.drops("Forwarded".utf8) != true {
            sink.addForwarded(earlier: trusted ? forwarded : nil, client: client, host: host)
        }
        if rules?.rules.drops("X-Request-Id".utf8) != true { requestID.withUTF8 { sink.addField("X-Request-Id", utf8: $0) } }
        if let rules {
            let facts = UpstreamFacts(head: head, host: originalHost ?? hostValue, requestID: requestID, client: client, routePrefix: rules.routePrefix)
            rules.rules.forEachAddition(facts) { sink.addField($0, $1) }
        }
        if webSocket {
            emit("Connection", "upgrade")
        } else if chunked {
            emit("Transfer-Encoding", "chunked")
        } else if let contentLength {
            emit("Content-Length", contentLength)
        }
    }

    /// What the edge needs to know about the passed headers to frame the response.
    public struct PassedHeaders: Sendable {
        public var hasContentLength = false
        public var hasDate = false
        /// `Content-Type: text/html` (a page view when the request was a GET answered 2xx/304).
        public var isHTML = false

        /// The one rule for response headers: hop-by-hop ones and Transfer-Encoding stay behind (the edge frames the
        /// body itself), `Upgrade` only passes on a 101, and so do the headers `Connection` names. Notes what
        /// framing needs on the way.
        @inline(__always)
        mutating func admit<Name: Collection<UInt8>, Value: Collection<UInt8>>(
            _ name: Name, value: Value, kind: HeaderClass, status: UInt, connectionNamed named: [ByteBufferView]
        ) -> Bool {
            switch kind {
            case .hopByHop, .framing:
                return false
            case .upgrade:
                return status == 101
            case .contentLength:
                hasContentLength = true
                return true
            case .other, .host, .requestID, .expect, .xForwardedFor, .xForwardedProto, .xForwardedHost, .forwarded,
                .xRealIP, .cookie:
                if !named.isEmpty, named.contains(where: { $0.equalsCaseInsensitive(name) }) { return false }
                if !hasDate && name.count == 4 && name.equalsCaseInsensitive("date") { hasDate = true }
                if name.count == 12 && value.count >= 9 && name.equalsCaseInsensitive("content-type") {
                    isHTML = value.prefix(9).equalsCaseInsensitive("text/html")
                }
                return true
            }
        }
    }

    /// Calls `body` for each response header that may go to the client: hop-by-hop headers and Transfer-Encoding
    /// out (the edge frames the body itself; Content-Length stays), `Upgrade` kept for a 101.
    @inline(__always)
    static func forEachDownstreamHeader(
        _ head: ProxyResponseHead, dropping rules: HeaderRules? = nil, _ body: (ByteBufferView, ByteBufferView) -> Void
    ) -> PassedHeaders {
        var passed = PassedHeaders()
        let status = head.status.code
        head.forEachField { name, value, kind in
            if passed.admit(name, value: value, kind: kind, status: status, connectionNamed: head.connectionNamed),
                rules?.drops(name) != true
            {
                body(name, value)
            }
        }
        return passed
    }

    /// Writes the response header lines that may go to the client (as ``forEachDownstreamHeader(_:_:)`` passes
    /// them) in HTTP/1.1 form. Lines are copied as the upstream sent them, and runs of kept lines in one copy.
    /// `rules`: a site's or route's header rules, whose `set` and `remove` names are left out here.
    static func writeDownstreamHeaderLines(
        _ head: ProxyResponseHead, dropping rules: HeaderRules? = nil, into buffer: inout ByteBuffer
    ) -> PassedHeaders {
        var passed = PassedHeaders()
        let status = head.status.code
        let named = head.connectionNamed
        head.bytes.withUnsafeReadableBytes { raw in
            buffer.reserveCapacity(minimumWritableBytes: raw.count + 256)
            var runStart = -1
            var runEnd = -1
            func flushRun() {
                if runStart >= 0 { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[runStart..<runEnd])) }
                runStart = -1
            }
            for field in head.fields {
                let nameStart = Int(field.nameStart), valueStart = Int(field.valueStart)
                let valueEnd = valueStart + Int(field.valueLength)
                let name = UnsafeRawBufferPointer(rebasing: raw[nameStart..<(nameStart + Int(field.nameLength))])
                let value = UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueEnd])
                guard passed.admit(name, value: value, kind: field.kind, status: status, connectionNamed: named),
                    rules?.drops(name) != true
                else {
                    flushRun()
                    continue
                }
                if valueEnd + 1 < raw.count && raw[valueEnd] == UInt8(ascii: "\r") && raw[valueEnd + 1] == UInt8(ascii: "\n") {
                    // The line as sent, CRLF included: extend the run.
                    if runStart < 0 || runEnd != nameStart { flushRun(); runStart = nameStart }
                    runEnd = valueEnd + 2
                } else {
                    flushRun()
                    buffer.writeBytes(name)
                    buffer.writeStaticString(": ")
                    buffer.writeBytes(value)
                    buffer.writeStaticString("\r\n")
                }
            }
            flushRun()
        }
        return passed
    }

    /// Whether a request trailer may be forwarded. Fields that frame, route, authenticate or modify a request must
    /// arrive in the head (RFC 9110 §6.5.1): sent as trailers, they are dropped, so a backend that merges trailers
    /// into its headers cannot be told a different Host, length or identity after the edge decided.
    public static func isForwardableTrailer(_ name: String) -> Bool {
        guard classify(name.utf8) == .other, name.firstIndex(ofASCII: UInt8(ascii: "_")) == nil else { return false }
        for forbidden in forbiddenTrailers where name.equalsCaseInsensitive(forbidden) { return false }
        return true
    }

    private static let forbiddenTrailers = [
        "authorization", "content-type", "content-encoding", "content-range", "content-location", "range", "trailer",
        "cache-control", "max-forwards", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
        "if-range", "pragma", "www-authenticate", "set-cookie", "origin", "referer", "user-agent",
    ]

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
    public static func isWebSocketUpgrade(_ head: RequestHead) -> Bool {
        guard head.method == .GET, let upgrade = head.headers.first(name: "upgrade"),
            upgrade.lowercased().contains("websocket")
        else { return false }
        return head.headers[canonicalForm: "connection"].contains { $0.equalsCaseInsensitive("upgrade") }
    }

    /// An RFC 7239 element: `for=203.0.113.7;proto=https;host="example.com"`.
    static func forwardedElement(client: ClientInfo, host: String) -> String {
        var element = ""
        forEachForwardedPiece(client: client, host: host) { element += $0 }
        return element
    }

    /// The pieces of ``forwardedElement(client:host:)`` in order, so a writer can copy them without making the
    /// string (it cost a quarter of a microsecond a proxied request).
    @inline(__always)
    static func forEachForwardedPiece(client: ClientInfo, host: String, _ piece: (String) -> Void) {
        let isIPv6 = client.address.firstIndex(ofASCII: UInt8(ascii: ":")) != nil
        piece(isIPv6 ? "for=\"[" : "for=")
        piece(client.address)
        piece(isIPv6 ? "]\";proto=" : ";proto=")
        piece(client.scheme)
        piece(";host=\"")
        // Inside a quoted-string, a quote or backslash from the Host header could end it early: drop them.
        if host.containsUTF8(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            piece(String(host.filter { $0 != "\"" && $0 != "\\" }))
        } else {
            piece(host)
        }
        piece("\"")
    }

    /// The header names a `Connection` header lists (they are hop-by-hop too), or nil when it lists none beyond
    /// `keep-alive`, `close` and `upgrade` (the common case, answered without allocating).
    static func connectionTokens(_ headers: RequestFields) -> [Substring]? {
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

    enum HeaderClass: UInt8 {
        case hopByHop, framing, contentLength, upgrade, host, requestID, expect, xForwardedFor, xForwardedProto, xForwardedHost, forwarded
        case xRealIP, cookie
        case other
    }

    /// Sorts a header name by its first byte before comparing, since nearly every header is `.other`.
    @inline(__always)
    static func classify<Name: Collection<UInt8>>(_ name: Name) -> HeaderClass {
        guard let first = name.first else { return .other }
        switch first | 0x20 {
        case UInt8(ascii: "c"):
            if name.equalsCaseInsensitive("connection") { return .hopByHop }
            if name.equalsCaseInsensitive("cookie") { return .cookie }
            return name.equalsCaseInsensitive("content-length") ? .contentLength : .other
        case UInt8(ascii: "k"):
            return name.equalsCaseInsensitive("keep-alive") ? .hopByHop : .other
        case UInt8(ascii: "t"):
            if name.equalsCaseInsensitive("transfer-encoding") { return .framing }
            return name.equalsCaseInsensitive("te") ? .hopByHop : .other
        case UInt8(ascii: "u"):
            return name.equalsCaseInsensitive("upgrade") ? .upgrade : .other
        case UInt8(ascii: "p"):
            return name.count > 6 && name.prefix(6).equalsCaseInsensitive("proxy-") ? .hopByHop : .other
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
            if name.equalsCaseInsensitive("x-real-ip") { return .xRealIP }
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
        utf8.equalsCaseInsensitive(other.utf8)
    }

    func trimmingSpaces() -> Substring {
        Substring(UpstreamResponseParser.trim(Substring(self).utf8))
    }
}

/// A proxy route's `request_headers` rules, with what their placeholders need besides the request.
public struct UpstreamHeaderRules: Sendable {
    public let rules: HeaderRules
    /// The route's path prefix (for `{rest}`).
    public let routePrefix: String

    /// Nil for rules that change nothing.
    public init?(_ rules: HeaderRules, routePrefix: String) {
        guard !rules.isEmpty else { return nil }
        self.rules = rules
        self.routePrefix = routePrefix
    }
}

/// The request facts an upstream request's header rules are filled from.
struct UpstreamFacts: PlaceholderValues {
    let head: RequestHead
    let host: String
    let requestID: RequestID
    let client: ClientInfo
    let routePrefix: String

    func value(of placeholder: Placeholder) -> String {
        if let value = placeholder.value(inTarget: head.uri, routePrefix: routePrefix) { return value }
        switch placeholder {
        case .host:
            // Without the port, lower-cased (nginx's $host).
            var name = Substring(host)
            if name.first == "[" {
                if let close = name.firstIndex(of: "]") { name = name[...close] }
            } else if let colon = name.lastIndex(of: ":") {
                name = name[..<colon]
            }
            return name.lowercased()
        case .requestID: return requestID.description
        case .path, .rest, .query, .uri: return ""
        case .scheme: return client.scheme
        case .method: return head.method.rawValue
        case .remoteAddress: return client.address
        case .status, .reason: return ""
        }
    }
}

/// Where ``HeaderRewriter/addUpstreamHeaders(_:hostValue:client:requestID:webSocket:chunked:underscores:rules:to:)``
/// puts the upstream request's fields: header fields for tests and tools, request bytes on the data path.
protocol UpstreamHeaderSink {
    mutating func addField(_ name: String, _ value: String)
    /// A field whose value is given as UTF-8 bytes (the request ID's digits).
    mutating func addField(_ name: String, utf8 value: UnsafeRawBufferPointer)
    /// A client's field passed on as its bytes.
    mutating func addField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    /// `Forwarded`: the elements a trusted proxy sent before (if any), then this hop's element.
    mutating func addForwarded(earlier: String?, client: ClientInfo, host: String)
}

extension HTTPHeaders: UpstreamHeaderSink {
    mutating func addField(_ name: String, _ value: String) { add(name: name, value: value) }
    mutating func addField(_ name: String, utf8 value: UnsafeRawBufferPointer) {
        add(name: name, value: String(decoding: value, as: UTF8.self))
    }
    mutating func addField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
    }

    mutating func addForwarded(earlier: String?, client: ClientInfo, host: String) {
        let element = HeaderRewriter.forwardedElement(client: client, host: host)
        add(name: "Forwarded", value: earlier.map { $0 + ", " + element } ?? element)
    }
}

extension ByteBuffer: UpstreamHeaderSink {
    /// The bytes of ``HeaderRewriter/forEachForwardedPiece(client:host:_:)``'s constant pieces at most, taken from
    /// the pieces themselves once (an IPv6 peer's, the longer form, with every value empty but the one `:` that
    /// selects it), so the bound follows any change to them.
    static let forwardedConstantBytes: Int = {
        var count = 0
        HeaderRewriter.forEachForwardedPiece(client: ClientInfo(address: ":", peerIsTrusted: false, scheme: ""), host: "") {
            count += $0.utf8.count
        }
        return count - 1
    }()

    mutating func addField(_ name: String, _ value: String) { writeHeaderLine(name: name, value: value) }
    mutating func addField(_ name: String, utf8 value: UnsafeRawBufferPointer) { writeHeaderLine(name: name, utf8: value) }
    mutating func addField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) { writeHeaderLine(name: name, value: value) }

    /// Room is made once for the whole line, then the pieces are copied: a checked write per piece (seven or
    /// more) cost more than the bytes they copy. The room is a bound (the element's constant parts and the values
    /// it is made of, which it only ever shortens), so the pieces are made once.
    mutating func addForwarded(earlier: String?, client: ClientInfo, host: String) {
        var bound = "Forwarded: ".utf8.count + Self.forwardedConstantBytes + 2
        if let earlier { bound += earlier.utf8.count + 2 }
        bound += client.address.utf8.count + client.scheme.utf8.count + host.utf8.count
        writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { out in
            var at = HTTPBytes.copyUTF8(of: "Forwarded: ", to: out, at: 0)
            if let earlier {
                at = HTTPBytes.copyUTF8(of: earlier, to: out, at: at)
                at = HTTPBytes.copyUTF8(of: ", ", to: out, at: at)
            }
            HeaderRewriter.forEachForwardedPiece(client: client, host: host) { at = HTTPBytes.copyUTF8(of: $0, to: out, at: at) }
            return HTTPBytes.copyUTF8(of: "\r\n", to: out, at: at)
        }
    }
}
