import NIOCore
import NIOHTTP1

/// A request head as the data plane keeps it: method, version and target, and the header fields as bytes
/// (``RequestFields``) rather than a string per name and value.
///
/// NIO's `HTTPRequestHead` keeps its parts in a heap box and its headers as an array of string pairs: two
/// allocations and two strings per header for every request, most of them never read (the edge reads a few
/// headers through ``RequestFields/first(name:)`` and its header summary, and the proxy copies the rest upstream
/// as bytes).
public struct RequestHead: Sendable {
    public var method: HTTPMethod
    public var version: HTTPVersion
    /// The request target (after admission: origin-form, its path in normal form).
    public var uri: String
    public var headers: RequestFields

    /// Whether the connection stays open after this request (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`,
    /// HTTP/1.0 only with `keep-alive`. Decided once, where the head is made (the HTTP/1.1 parser has decided it
    /// already for its framing).
    public var isKeepAlive: Bool

    /// `keepAlive`: the parser's (or the protocol's) decision; nil reads it from `headers`' `Connection` tokens.
    public init(
        version: HTTPVersion, method: HTTPMethod, uri: String, headers: RequestFields = RequestFields(), keepAlive: Bool? = nil
    ) {
        self.version = version
        self.method = method
        self.uri = uri
        self.headers = headers
        isKeepAlive = keepAlive ?? Self.keepsAlive(version: version, connection: headers[canonicalForm: "connection"])
    }

    /// The head of NIO's type (tests and tools).
    public init(_ head: HTTPRequestHead) {
        self.init(
            version: head.version, method: head.method, uri: head.uri, headers: RequestFields(head.headers),
            keepAlive: head.isKeepAlive)
    }

    /// The head as NIO's type, for code off the request path that takes one.
    public var httpRequestHead: HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers.httpHeaders)
    }

    /// A HEAD request, matched by case: `==` on `HTTPMethod` resolves to the raw-value comparison (two strings) for
    /// a check that runs on every answer.
    @inlinable
    public var isHeadRequest: Bool { if case .HEAD = method { true } else { false } }

    private static func keepsAlive(version: HTTPVersion, connection tokens: [Substring]) -> Bool {
        if version.major == 1 && version.minor == 0 { return tokens.contains { $0.lowercased() == "keep-alive" } }
        return !tokens.contains { $0.lowercased() == "close" }
    }
}
