import NIOCore

/// One event row: what the request path knows about a request without enrichment (DESIGN.md §4). Enrichment
/// (GeoIP, device, bot, campaign, visitor and session ids) adds its fields later in the pipeline.
public struct TrackingEvent: Sendable, Equatable {
    /// What produced the event.
    public enum Kind: String, Sendable, CaseIterable {
        case request, pageview, pixelOpen = "pixel_open", linkClick = "link_click", track, serverTrack = "server_track"
    }

    /// UUIDv7 text.
    public var id: String
    /// Unix time in milliseconds.
    public var timeMilliseconds: Int64
    public var site: String
    public var host: String
    public var kind: Kind
    public var method: String
    /// `http` or `https`.
    public var scheme: String
    /// The path, without the query.
    public var path: String
    /// `scheme://host/path`, without the query.
    public var url: String
    /// The query string without `?` (empty when there is none).
    public var query: String
    public var status: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var durationMicroseconds: Int
    public var upstream: String
    public var upstreamMicroseconds: Int
    public var referrer: String
    public var userAgent: String
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    public var httpVersion: String
    /// `TLSv1.3`, or empty for plain HTTP.
    public var tlsVersion: String
    public var requestID: String
    /// The client address as resolved through trusted proxies (anonymized later, before it is stored).
    public var clientAddress: String

    public init(
        id: String, timeMilliseconds: Int64, site: String, host: String, kind: Kind, method: String, scheme: String,
        path: String, query: String, status: Int, bytesIn: Int, bytesOut: Int, durationMicroseconds: Int,
        upstream: String = "", upstreamMicroseconds: Int = 0, referrer: String = "", userAgent: String = "",
        httpVersion: String, tlsVersion: String = "", requestID: String = "", clientAddress: String
    ) {
        self.id = id
        self.timeMilliseconds = timeMilliseconds
        self.site = site
        self.host = host
        self.kind = kind
        self.method = method
        self.scheme = scheme
        self.path = path
        url = "\(scheme)://\(host)\(path)"
        self.query = query
        self.status = status
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.durationMicroseconds = durationMicroseconds
        self.upstream = upstream
        self.upstreamMicroseconds = upstreamMicroseconds
        self.referrer = referrer
        self.userAgent = userAgent
        self.httpVersion = httpVersion
        self.tlsVersion = tlsVersion
        self.requestID = requestID
        self.clientAddress = clientAddress
    }

    /// Writes the event as one JSON object (no newline): the spool's record payload, ClickHouse's JSONEachRow row,
    /// and the NDJSON export line are all this.
    public func writeJSON(into buffer: inout ByteBuffer) {
        buffer.writeJSONField("{\"id\":", id, first: true)
        buffer.writeStaticString(",\"ts\":")
        buffer.writeDecimal(Int(timeMilliseconds))
        buffer.writeJSONField("\"site\":", site)
        buffer.writeJSONField("\"host\":", host)
        buffer.writeJSONField("\"kind\":", kind.rawValue)
        buffer.writeJSONField("\"method\":", method)
        buffer.writeJSONField("\"scheme\":", scheme)
        buffer.writeJSONField("\"path\":", path)
        buffer.writeJSONField("\"url\":", url)
        buffer.writeJSONField("\"query\":", query)
        buffer.writeJSONField("\"status\":", status)
        buffer.writeJSONField("\"bytes_in\":", bytesIn)
        buffer.writeJSONField("\"bytes_out\":", bytesOut)
        buffer.writeJSONField("\"duration_us\":", durationMicroseconds)
        buffer.writeJSONField("\"upstream\":", upstream)
        buffer.writeJSONField("\"upstream_us\":", upstreamMicroseconds)
        buffer.writeJSONField("\"referrer\":", referrer)
        buffer.writeJSONField("\"user_agent\":", userAgent)
        buffer.writeJSONField("\"http_version\":", httpVersion)
        buffer.writeJSONField("\"tls_version\":", tlsVersion)
        buffer.writeJSONField("\"request_id\":", requestID)
        buffer.writeJSONField("\"client_ip\":", clientAddress)
        buffer.writeInteger(UInt8(ascii: "}"))
    }
}
