import NIOHTTP1

/// The request headers the edge and the file server look at, gathered in one pass over the header list.
///
/// `HTTPHeaders.first(name:)` scans every header for each lookup; a static file answer needs about ten lookups, so a
/// single pass that compares lengths first is several times cheaper on the request path.
public struct RequestHeaderSummary: Sendable {
    /// The values live in one shared box: the summary travels with the request (the exchange, the file server's and
    /// the tracking API's requests) and is copied several times per request, and a copy of fourteen optional strings
    /// is fourteen reference-count operations where a box is one. Copied on write, so it stays a value.
    @usableFromInline
    final class Fields: @unchecked Sendable {
        @usableFromInline var host: String?
        @usableFromInline var contentLength: String?
        @usableFromInline var hasTransferEncoding = false
        @usableFromInline var ifMatch: String?
        @usableFromInline var ifNoneMatch: String?
        @usableFromInline var ifModifiedSince: String?
        @usableFromInline var ifUnmodifiedSince: String?
        @usableFromInline var range: String?
        @usableFromInline var ifRange: String?
        @usableFromInline var acceptEncoding: String?
        @usableFromInline var userAgent: String?
        @usableFromInline var referer: String?
        @usableFromInline var expect: String?
        @usableFromInline var hasUpgrade = false
        @usableFromInline var requestID: String?
        @usableFromInline var cookie: String?
        @usableFromInline var doNotTrack = false
        @usableFromInline var globalPrivacyControl = false
        @usableFromInline var isPrefetch = false

        func gather(_ headers: HTTPHeaders) {
            for (name, value) in headers {
                let utf8 = name.utf8
                switch utf8.count {
                case 3:
                    if utf8.equalsLowercase("dnt") { doNotTrack = value == "1" }
                case 4:
                    if host == nil && utf8.equalsLowercase("host") { host = value }
                case 5:
                    if range == nil && utf8.equalsLowercase("range") {
                        range = value
                    } else if utf8.equalsLowercase("x-moz") {
                        isPrefetch = isPrefetch || value.lowercased().contains("prefetch")
                    }
                case 6:
                    if expect == nil && utf8.equalsLowercase("expect") {
                        expect = value
                    } else if utf8.equalsLowercase("cookie") {
                        cookie = cookie.map { $0 + "; " + value } ?? value
                    }
                case 7:
                    if referer == nil && utf8.equalsLowercase("referer") {
                        referer = value
                    } else if utf8.equalsLowercase("upgrade") {
                        hasUpgrade = true
                    } else if utf8.equalsLowercase("sec-gpc") {
                        globalPrivacyControl = value == "1"
                    } else if utf8.equalsLowercase("purpose") {
                        isPrefetch = isPrefetch || RequestHeaderSummary.isSpeculative(value)
                    }
                case 9:
                    if utf8.equalsLowercase("x-purpose") { isPrefetch = isPrefetch || RequestHeaderSummary.isSpeculative(value) }
                case 11:
                    if utf8.equalsLowercase("sec-purpose") { isPrefetch = isPrefetch || RequestHeaderSummary.isSpeculative(value) }
                case 8:
                    if ifMatch == nil && utf8.equalsLowercase("if-match") {
                        ifMatch = value
                    } else if ifRange == nil && utf8.equalsLowercase("if-range") {
                        ifRange = value
                    }
                case 10:
                    if userAgent == nil && utf8.equalsLowercase("user-agent") { userAgent = value }
                case 12:
                    if requestID == nil && utf8.equalsLowercase("x-request-id") { requestID = value }
                case 13:
                    if ifNoneMatch == nil && utf8.equalsLowercase("if-none-match") { ifNoneMatch = value }
                case 14:
                    if contentLength == nil && utf8.equalsLowercase("content-length") { contentLength = value }
                case 15:
                    if acceptEncoding == nil && utf8.equalsLowercase("accept-encoding") { acceptEncoding = value }
                case 17:
                    if utf8.equalsLowercase("transfer-encoding") {
                        hasTransferEncoding = true
                    } else if ifModifiedSince == nil && utf8.equalsLowercase("if-modified-since") {
                        ifModifiedSince = value
                    }
                case 19:
                    if ifUnmodifiedSince == nil && utf8.equalsLowercase("if-unmodified-since") { ifUnmodifiedSince = value }
                default:
                    break
                }
            }
        }

        init() {}

        @usableFromInline
        func copy() -> Fields {
            let copy = Fields()
            copy.host = host
            copy.contentLength = contentLength
            copy.hasTransferEncoding = hasTransferEncoding
            copy.ifMatch = ifMatch
            copy.ifNoneMatch = ifNoneMatch
            copy.ifModifiedSince = ifModifiedSince
            copy.ifUnmodifiedSince = ifUnmodifiedSince
            copy.range = range
            copy.ifRange = ifRange
            copy.acceptEncoding = acceptEncoding
            copy.userAgent = userAgent
            copy.referer = referer
            copy.expect = expect
            copy.hasUpgrade = hasUpgrade
            copy.requestID = requestID
            copy.cookie = cookie
            copy.doNotTrack = doNotTrack
            copy.globalPrivacyControl = globalPrivacyControl
            copy.isPrefetch = isPrefetch
            return copy
        }
    }

    @usableFromInline var fields: Fields

    @inlinable
    mutating func uniqueFields() -> Fields {
        if !isKnownUniquelyReferenced(&fields) { fields = fields.copy() }
        return fields
    }

    public var host: String? {
        @inlinable get { fields.host }
        @inlinable set { uniqueFields().host = newValue }
    }
    public var contentLength: String? {
        @inlinable get { fields.contentLength }
        @inlinable set { uniqueFields().contentLength = newValue }
    }
    public var hasTransferEncoding: Bool {
        @inlinable get { fields.hasTransferEncoding }
        @inlinable set { uniqueFields().hasTransferEncoding = newValue }
    }
    public var ifMatch: String? {
        @inlinable get { fields.ifMatch }
        @inlinable set { uniqueFields().ifMatch = newValue }
    }
    public var ifNoneMatch: String? {
        @inlinable get { fields.ifNoneMatch }
        @inlinable set { uniqueFields().ifNoneMatch = newValue }
    }
    public var ifModifiedSince: String? {
        @inlinable get { fields.ifModifiedSince }
        @inlinable set { uniqueFields().ifModifiedSince = newValue }
    }
    public var ifUnmodifiedSince: String? {
        @inlinable get { fields.ifUnmodifiedSince }
        @inlinable set { uniqueFields().ifUnmodifiedSince = newValue }
    }
    public var range: String? {
        @inlinable get { fields.range }
        @inlinable set { uniqueFields().range = newValue }
    }
    public var ifRange: String? {
        @inlinable get { fields.ifRange }
        @inlinable set { uniqueFields().ifRange = newValue }
    }
    public var acceptEncoding: String? {
        @inlinable get { fields.acceptEncoding }
        @inlinable set { uniqueFields().acceptEncoding = newValue }
    }
    public var userAgent: String? {
        @inlinable get { fields.userAgent }
        @inlinable set { uniqueFields().userAgent = newValue }
    }
    public var referer: String? {
        @inlinable get { fields.referer }
        @inlinable set { uniqueFields().referer = newValue }
    }
    public var expect: String? {
        @inlinable get { fields.expect }
        @inlinable set { uniqueFields().expect = newValue }
    }
    /// An `Upgrade` header is present (the HTTP/1.1 parser stops at such a request).
    public var hasUpgrade: Bool {
        @inlinable get { fields.hasUpgrade }
        @inlinable set { uniqueFields().hasUpgrade = newValue }
    }
    /// `X-Request-Id` as the client sent it.
    public var requestID: String? {
        @inlinable get { fields.requestID }
        @inlinable set { uniqueFields().requestID = newValue }
    }
    /// `Cookie` (HTTP/2 may split it over several fields: they are joined with `; `).
    public var cookie: String? {
        @inlinable get { fields.cookie }
        @inlinable set { uniqueFields().cookie = newValue }
    }
    /// `DNT: 1`.
    public var doNotTrack: Bool {
        @inlinable get { fields.doNotTrack }
        @inlinable set { uniqueFields().doNotTrack = newValue }
    }
    /// `Sec-GPC: 1`.
    public var globalPrivacyControl: Bool {
        @inlinable get { fields.globalPrivacyControl }
        @inlinable set { uniqueFields().globalPrivacyControl = newValue }
    }
    /// A speculative load: `Sec-Purpose: prefetch/prerender`, `Purpose: prefetch`, `X-Purpose: preview`,
    /// `X-Moz: prefetch` (not a page view).
    public var isPrefetch: Bool {
        @inlinable get { fields.isPrefetch }
        @inlinable set { uniqueFields().isPrefetch = newValue }
    }

    /// An empty summary (no headers).
    public init() { fields = Fields() }

    /// Reads the interesting headers. Repeated headers keep their first value (the HTTP/1.1 parser has already
    /// refused a repeated Host or Content-Length).
    public init(_ headers: HTTPHeaders) {
        let fields = Fields()
        fields.gather(headers)
        self.fields = fields
    }
}

extension RequestHeaderSummary {
    /// `prefetch`, `prerender` or `preview` in a purpose header.
    static func isSpeculative(_ value: String) -> Bool {
        let lowered = value.lowercased()
        return lowered.contains("prefetch") || lowered.contains("prerender") || lowered.contains("preview")
    }
}

extension String.UTF8View {
    /// ASCII case-insensitive equality with a lower-case literal made of letters, digits and `-`.
    @inline(__always)
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
