import NIOCore

/// One event row: what the request path knows about a request without enrichment (DESIGN.md §4). Enrichment
/// (GeoIP, device, bot, campaign, visitor and session ids) adds its fields later in the pipeline.
///
/// Building one on the request path costs no allocation: every field is a value the request already holds (path
/// and query are read out of the request target when the event is encoded, the URL only when it is shown).
public struct TrackingEvent: Sendable, Equatable {
    /// What produced the event.
    public enum Kind: UInt8, Sendable, CaseIterable {
        case request = 0, pageview, pixelOpen, linkClick, track, serverTrack

        /// The name stored in ClickHouse and shown in exports.
        public var name: String {
            switch self {
            case .request: "request"
            case .pageview: "pageview"
            case .pixelOpen: "pixel_open"
            case .linkClick: "link_click"
            case .track: "track"
            case .serverTrack: "server_track"
            }
        }
    }

    public var id: EventID
    /// Unix time in milliseconds.
    public var timeMilliseconds: Int64
    public var site: String
    public var host: String
    public var kind: Kind
    public var method: String
    /// `http` or `https`.
    public var scheme: String
    /// The request target as received: the path and, after `?`, the query.
    public var target: String
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
    /// The client address as resolved through trusted proxies. The spool keeps it whole (enrichment needs it); what
    /// leaves the gateway is anonymized (see ``anonymizedClientAddress``).
    public var clientAddress: String

    public init(
        id: EventID, timeMilliseconds: Int64, site: String, host: String, kind: Kind, method: String, scheme: String,
        target: String, status: Int, bytesIn: Int, bytesOut: Int, durationMicroseconds: Int, upstream: String = "",
        upstreamMicroseconds: Int = 0, referrer: String = "", userAgent: String = "", httpVersion: String,
        tlsVersion: String = "", requestID: String = "", clientAddress: String
    ) {
        self.id = id
        self.timeMilliseconds = timeMilliseconds
        self.site = site
        self.host = host
        self.kind = kind
        self.method = method
        self.scheme = scheme
        self.target = target
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

    /// The path, without the query.
    public var path: Substring { target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...] }
    /// The query string without `?` (empty when there is none).
    public var query: Substring {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[target.index(after: $0)...] } ?? ""
    }
    /// `scheme://host/path`, without the query.
    public var url: String { "\(scheme)://\(host)\(path)" }
    /// The client address as stored by default: IPv4 truncated to /24, IPv6 to /48 (DESIGN.md §4).
    public var anonymizedClientAddress: String { IPAnonymizer.anonymize(clientAddress) }

    /// Writes the event as one JSON object (no newline): the NDJSON export line.
    public func writeJSON(into buffer: inout ByteBuffer, fullClientAddress: Bool = false) {
        buffer.writeJSONField("{\"id\":", id.description, first: true)
        buffer.writeStaticString(",\"ts\":")
        buffer.writeDecimal(Int(timeMilliseconds))
        buffer.writeJSONField("\"site\":", site)
        buffer.writeJSONField("\"host\":", host)
        buffer.writeJSONField("\"kind\":", kind.name)
        buffer.writeJSONField("\"method\":", method)
        buffer.writeJSONField("\"scheme\":", scheme)
        buffer.writeJSONField("\"path\":", String(path))
        buffer.writeJSONField("\"url\":", url)
        buffer.writeJSONField("\"query\":", String(query))
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
        buffer.writeJSONField("\"client_ip\":", fullClientAddress ? clientAddress : anonymizedClientAddress)
        buffer.writeInteger(UInt8(ascii: "}"))
    }
}

/// Truncates client addresses before they are stored: the last octet of IPv4, all but the first 48 bits of IPv6.
public enum IPAnonymizer {
    public static func anonymize(_ address: String) -> String {
        if address.contains(":") {
            // IPv6: keep three groups. `::` inside them is expanded just enough to know which groups they are.
            var groups: [Substring] = []
            let halves = address.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
            let head = halves[0].split(separator: ":", omittingEmptySubsequences: true)
            groups.append(contentsOf: head.prefix(3))
            if groups.count < 3 && halves.count == 2 {
                let tail = halves[1].split(separator: ":", omittingEmptySubsequences: true)
                let zeros = 8 - head.count - tail.count
                groups.append(contentsOf: Array(repeating: "0", count: max(0, zeros)).prefix(3 - groups.count))
                groups.append(contentsOf: tail.prefix(3 - groups.count))
            }
            return groups.joined(separator: ":") + "::"
        }
        guard let lastDot = address.lastIndex(of: ".") else { return address }
        return address[..<lastDot] + ".0"
    }
}
