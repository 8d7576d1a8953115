import NIOHTTP1

/// The request headers the edge and the file server look at, gathered in one pass over the header list.
///
/// A lookup by name (`first(name:)` on NIO's `HTTPHeaders` or on the edge's `RequestFields`) scans every header; a
/// static file answer needs about ten lookups, so a single pass that compares lengths first is several times cheaper
/// on the request path.
@dynamicMemberLookup
public struct RequestHeaderSummary: Sendable {
    /// The values, read and written through the summary (`summary.host`).
    public struct Values: Sendable, Equatable {
        public var host: String?
        public var contentLength: String?
        public var hasTransferEncoding = false
        public var ifMatch: String?
        public var ifNoneMatch: String?
        public var ifModifiedSince: String?
        public var ifUnmodifiedSince: String?
        public var range: String?
        public var ifRange: String?
        public var acceptEncoding: String?
        public var userAgent: String?
        public var referer: String?
        public var expect: String?
        /// An `Upgrade` header is present (the HTTP/1.1 parser stops at such a request).
        public var hasUpgrade = false
        /// `X-Request-Id` as the client sent it.
        public var requestID: String?
        /// `Cookie` (HTTP/2 may split it over several fields: they are joined with `; `).
        public var cookie: String?
        /// `DNT: 1`.
        public var doNotTrack = false
        /// `Sec-GPC: 1`.
        public var globalPrivacyControl = false
        /// A speculative load: `Sec-Purpose: prefetch/prerender`, `Purpose: prefetch`, `X-Purpose: preview`,
        /// `X-Moz: prefetch` (not a page view).
        public var isPrefetch = false

        public init() {}

        /// Reads the interesting headers (see ``add(name:value:)``).
        public init(_ headers: HTTPHeaders) {
            for (name, value) in headers { add(name: name.utf8, value: value) }
        }

        /// Notes one header, named by its bytes: `value` is made only for a header the summary keeps (a head
        /// parsed from bytes makes no string for the others). Repeated headers keep their
        /// first value (the HTTP/1.1 parser has already refused a repeated Host or Content-Length).
        @inlinable
        public mutating func add<Name: Collection>(name utf8: Name, value: @autoclosure () -> String) where Name.Element == UInt8 {
            switch utf8.count {
            case 3:
                if utf8.equalsLowercase("dnt") { doNotTrack = value() == "1" }
            case 4:
                if host == nil && utf8.equalsLowercase("host") { host = value() }
            case 5:
                if range == nil && utf8.equalsLowercase("range") {
                    range = value()
                } else if utf8.equalsLowercase("x-moz") {
                    isPrefetch = isPrefetch || RequestHeaderSummary.mentionsPrefetch(value())
                }
            case 6:
                if expect == nil && utf8.equalsLowercase("expect") {
                    expect = value()
                } else if utf8.equalsLowercase("cookie") {
                    cookie = cookie.map { $0 + "; " + value() } ?? value()
                }
            case 7:
                if referer == nil && utf8.equalsLowercase("referer") {
                    referer = value()
                } else if utf8.equalsLowercase("upgrade") {
                    hasUpgrade = true
                } else if utf8.equalsLowercase("sec-gpc") {
                    globalPrivacyControl = value() == "1"
                } else if utf8.equalsLowercase("purpose") {
                    isPrefetch = isPrefetch || RequestHeaderSummary.isSpeculative(value())
                }
            case 9:
                if utf8.equalsLowercase("x-purpose") { isPrefetch = isPrefetch || RequestHeaderSummary.isSpeculative(value()) }
            case 11:
                if utf8.equalsLowercase("sec-purpose") { isPrefetch = isPrefetch || RequestHeaderSummary.isSpeculative(value()) }
            case 8:
                if ifMatch == nil && utf8.equalsLowercase("if-match") {
                    ifMatch = value()
                } else if ifRange == nil && utf8.equalsLowercase("if-range") {
                    ifRange = value()
                }
            case 10:
                if userAgent == nil && utf8.equalsLowercase("user-agent") { userAgent = value() }
            case 12:
                if requestID == nil && utf8.equalsLowercase("x-request-id") { requestID = value() }
            case 13:
                if ifNoneMatch == nil && utf8.equalsLowercase("if-none-match") { ifNoneMatch = value() }
            case 14:
                if contentLength == nil && utf8.equalsLowercase("content-length") { contentLength = value() }
            case 15:
                if acceptEncoding == nil && utf8.equalsLowercase("accept-encoding") { acceptEncoding = value() }
            case 17:
                if utf8.equalsLowercase("transfer-encoding") {
                    hasTransferEncoding = true
                } else if ifModifiedSince == nil && utf8.equalsLowercase("if-modified-since") {
                    ifModifiedSince = value()
                }
            case 19:
                if ifUnmodifiedSince == nil && utf8.equalsLowercase("if-unmodified-since") { ifUnmodifiedSince = value() }
            default:
                break
            }
        }
    }

    /// The values live in one shared box: the summary travels with the request (the exchange, the file server's and
    /// the tracking API's requests) and is copied several times per request, and a copy of fourteen optional strings
    /// is fourteen reference-count operations where a box is one. Copied on write, so it stays a value.
    @usableFromInline
    final class Box: @unchecked Sendable {
        @usableFromInline var values: Values

        // Consuming: the values move into the box (a borrowed parameter was copied in, fourteen retains, and the
        // caller's temporary destroyed after).
        @usableFromInline
        init(_ values: consuming Values) { self.values = values }
    }

    @usableFromInline var box: Box

    @inlinable
    public subscript<Value>(dynamicMember field: WritableKeyPath<Values, Value>) -> Value {
        get { box.values[keyPath: field] }
        set {
            if !isKnownUniquelyReferenced(&box) { box = Box(box.values) }
            box.values[keyPath: field] = newValue
        }
    }

    /// All the values at once.
    public var values: Values { box.values }

    /// An empty summary (no headers).
    public init() { box = Box(Values()) }

    /// Reads the interesting headers (see ``Values/init(_:)``).
    public init(_ headers: HTTPHeaders) { box = Box(Values(headers)) }

    /// Notes one more header (see ``Values/add(name:value:)``), in the box itself: a summary gathered while a head's
    /// header strings are made, without the copy of its values that handing a finished `Values` over would take.
    @inlinable
    public mutating func add<Name: Collection>(name utf8: Name, value: @autoclosure () -> String) where Name.Element == UInt8 {
        if !isKnownUniquelyReferenced(&box) { box = Box(box.values) }
        box.values.add(name: utf8, value: value())
    }
}

extension RequestHeaderSummary {
    /// `prefetch` in an `X-Moz` header.
    @usableFromInline
    static func mentionsPrefetch(_ value: String) -> Bool { value.lowercased().contains("prefetch") }

    /// `prefetch`, `prerender` or `preview` in a purpose header.
    @usableFromInline
    static func isSpeculative(_ value: String) -> Bool {
        let lowered = value.lowercased()
        return lowered.contains("prefetch") || lowered.contains("prerender") || lowered.contains("preview")
    }
}

extension Collection where Element == UInt8 {
    /// ASCII case-insensitive equality with a lower-case literal made of letters, digits and `-`.
    @inlinable @inline(__always)
    func equalsLowercase(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        return literal.withUTF8Buffer { expected in
            var index = 0
            for byte in self {
                if byte | 0x20 != expected[index] { return false }
                index += 1
            }
            return true
        }
    }
}
