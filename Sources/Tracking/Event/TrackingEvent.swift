import NIOCore
import RequestTarget

/// One event row (DESIGN.md §4): what the request path knows about a request, plus what enrichment adds on the
/// same loop before the event is spooled (visitor and session, GeoIP, device and bot, source and campaign).
///
/// Building one on the request path costs no allocation: every field is a value the request already holds or a
/// string shared with a cache (path and query are read out of the request target when the event is encoded, the URL
/// only when it is shown).
public struct TrackingEvent: Sendable, Equatable {
    /// What produced the event.
    public enum Kind: UInt8, Sendable, CaseIterable {
        case request = 0, pageview, pixelOpen, linkClick, track, serverTrack, ltv, consent
        /// A request refused before routing (malformed, ambiguous, overlong, too slow): attacks show in analytics.
        case refused
        /// A call to a `webhook` route: a service telling of something (a payment, a push), not a visitor.
        case webhook

        /// The name stored in ClickHouse and shown in exports.
        public var name: String {
            switch self {
            case .request: "request"
            case .pageview: "pageview"
            case .pixelOpen: "pixel_open"
            case .linkClick: "link_click"
            case .track: "track"
            case .serverTrack: "server_track"
            case .ltv: "ltv"
            case .consent: "consent"
            case .refused: "refused"
            case .webhook: "webhook"
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
    public var requestID: RequestID
    /// The client address as resolved through trusted proxies. Enrichment replaces it with its stored form (see
    /// ``anonymizedClientAddress``) before the event reaches the spool, unless the configuration keeps it whole.
    public var clientAddress: String

    // MARK: Enrichment (record version 2)

    /// The `vid` cookie or API value, or the cookieless id (16 hex digits of a keyed hash).
    public var visitorID = ""
    public var sessionID = ""
    /// The first event of a session (entry page; bounce rates).
    public var sessionStart = false
    public var browser = ""
    public var browserVersion = ""
    public var os = ""
    public var osVersion = ""
    /// desktop, mobile, tablet, tv, console, wearable, car, bot, other (``UserAgent/Device``).
    public var device = ""
    /// Empty for people; why the client counts as a machine otherwise (see ``UserAgent/BotReason``, plus `head`).
    public var botReason = ""
    /// ISO 3166-1 alpha-2 country, region (subdivision) name, city name, from GeoIP.
    public var country = ""
    public var region = ""
    public var city = ""
    /// Coordinates, when GeoIP is configured to keep them.
    public var latitude: Double?
    public var longitude: Double?
    public var referrerHost = ""
    /// The referrer's kind: direct, internal, search, social, email, video, ai, other.
    public var sourceCategory = ""
    /// The visitor's consent bit field (`cflags` of the tracking API, the `CookieConsent` cookie).
    public var consentFlags: Int64 = 0

    // MARK: Channels (record version 3)

    /// The ``MarketingChannel`` label of this event's own touch (its referrer and tags); an internal navigation carries its
    /// session's. Empty for subresource requests.
    public var channel = ""
    /// The channel of the session's first touch (empty without a session).
    public var sessionChannel = ""

    // MARK: What API calls, tagged landing URLs and payments add

    /// The fields only a tracking API call, a landing URL with campaign tags or a payment fills in (record versions
    /// 2 and 4). A plain request, most events, has none of them: they are kept out of line, behind one reference
    /// that stays nil until a field gets a value, so the event the request path builds, enriches, encodes and
    /// destroys for every request is a third smaller.
    public struct Details: Sendable, Equatable {
        /// `ename` / `etyp` of the tracking API (`etyp` also flags a request a rate limit refused or would have).
        public var eventName = ""
        public var eventType = ""
        /// The application's user id (tracking API `uid`).
        public var userID = ""
        public var utmSource = ""
        public var utmMedium = ""
        public var utmCampaign = ""
        public var utmTerm = ""
        public var utmContent = ""
        /// The first ad click id of the landing URL as `name=value` (gclid, fbclid, msclkid, ...).
        public var clickID = ""
        /// Payment amount of an `ltv` event, and its ISO 4217 currency.
        public var revenue = 0.0
        public var currency = ""
        /// Everything else the tracking API was sent, as one JSON object (empty when there is nothing).
        public var properties = ""
        /// Tenancy and experiments (record version 4): the older tracker's `oid`, `org`, `xid`, `split`, `tid`.
        /// The organization (tenant) the event belongs to: `oid`; Alcolytics' `projectId`.
        public var orgID = ""
        /// A sub-organization, team or brand: `org`.
        public var org = ""
        /// The experiment the visitor is in: `xid`.
        public var experimentID = ""
        /// The experiment's arm or variant the visitor saw: `split`.
        public var variant = ""
        /// A conversation or messaging thread: `tid`.
        public var threadID = ""

        public init() {}
    }

    private var detailStorage = DetailStorage()

    /// All of ``Details`` at once (empty values when none was set).
    public var details: Details {
        get { detailStorage.box?.value ?? Details() }
        set { detailStorage.replace(with: newValue) }
    }

    public var eventName: String {
        get { detailStorage.box?.value.eventName ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.eventName = newValue } }
    }
    public var eventType: String {
        get { detailStorage.box?.value.eventType ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.eventType = newValue } }
    }
    public var userID: String {
        get { detailStorage.box?.value.userID ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.userID = newValue } }
    }
    public var utmSource: String {
        get { detailStorage.box?.value.utmSource ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.utmSource = newValue } }
    }
    public var utmMedium: String {
        get { detailStorage.box?.value.utmMedium ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.utmMedium = newValue } }
    }
    public var utmCampaign: String {
        get { detailStorage.box?.value.utmCampaign ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.utmCampaign = newValue } }
    }
    public var utmTerm: String {
        get { detailStorage.box?.value.utmTerm ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.utmTerm = newValue } }
    }
    public var utmContent: String {
        get { detailStorage.box?.value.utmContent ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.utmContent = newValue } }
    }
    public var clickID: String {
        get { detailStorage.box?.value.clickID ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.clickID = newValue } }
    }
    public var revenue: Double {
        get { detailStorage.box?.value.revenue ?? 0 }
        set { detailStorage.set(isEmpty: newValue == 0 && newValue.sign == .plus) { $0.revenue = newValue } }
    }
    public var currency: String {
        get { detailStorage.box?.value.currency ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.currency = newValue } }
    }
    public var properties: String {
        get { detailStorage.box?.value.properties ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.properties = newValue } }
    }
    public var orgID: String {
        get { detailStorage.box?.value.orgID ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.orgID = newValue } }
    }
    public var org: String {
        get { detailStorage.box?.value.org ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.org = newValue } }
    }
    public var experimentID: String {
        get { detailStorage.box?.value.experimentID ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.experimentID = newValue } }
    }
    public var variant: String {
        get { detailStorage.box?.value.variant ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.variant = newValue } }
    }
    public var threadID: String {
        get { detailStorage.box?.value.threadID ?? "" }
        set { detailStorage.set(isEmpty: newValue.isEmpty) { $0.threadID = newValue } }
    }

    public init(
        id: EventID, timeMilliseconds: Int64, site: String, host: String, kind: Kind, method: String, scheme: String,
        target: String, status: Int, bytesIn: Int, bytesOut: Int, durationMicroseconds: Int, upstream: String = "",
        upstreamMicroseconds: Int = 0, referrer: String = "", userAgent: String = "", httpVersion: String,
        tlsVersion: String = "", requestID: RequestID = .empty, clientAddress: String
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

    /// A tracking API event (`self`, whose API fields the API filled in) completed with the fields of the request
    /// that carried it: method, status, sizes, versions, agent, address. A page URL or `last` sent to the API
    /// replaces the request's own target and referrer.
    public func completed(byRequest request: TrackingEvent) -> TrackingEvent {
        var event = request
        event.id = id
        event.timeMilliseconds = timeMilliseconds
        event.kind = kind
        if !host.isEmpty { event.host = host }
        if !target.isEmpty {
            event.target = target
            event.referrer = referrer  // the Referer of an API call from a page is that page
        } else if !referrer.isEmpty {
            event.referrer = referrer
        }
        event.visitorID = visitorID
        event.sessionID = sessionID
        event.latitude = latitude
        event.longitude = longitude
        event.consentFlags = consentFlags
        // Event name and type, user, campaign tags, click id, revenue, properties, tenancy and experiment.
        event.detailStorage = detailStorage
        // An app's own app name, OS and device class (the request's own are empty until enrichment).
        (event.browser, event.os, event.device) = (browser, os, device)
        return event
    }

    /// Events a backend sends (`str`, `ltv`, webhooks): the caller's address and agent are the backend's, so
    /// they say nothing about a visitor and enrichment leaves them out.
    public var isServerSide: Bool { kind == .serverTrack || kind == .ltv || kind == .webhook }

    /// The path, without the query.
    public var path: Substring { target.firstIndex(ofASCII: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...] }
    /// The query string without `?` (empty when there is none).
    public var query: Substring {
        target.firstIndex(ofASCII: UInt8(ascii: "?")).map { target[target.index(after: $0)...] } ?? ""
    }
    /// `scheme://host/path`, without the query.
    public var url: String { "\(scheme)://\(host)\(path)" }
    /// The client address as stored by default: IPv4 truncated to /24, IPv6 to /48 (DESIGN.md §4).
    public var anonymizedClientAddress: String { IPAnonymizer.anonymize(clientAddress) }

    /// Writes the event as one JSON object (no newline): the NDJSON export line.
    public func writeJSON(into buffer: inout ByteBuffer) {
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
        buffer.writeJSONField("\"request_id\":", requestID.description)
        buffer.writeJSONField("\"client_ip\":", clientAddress)
        buffer.writeJSONField("\"ename\":", eventName)
        buffer.writeJSONField("\"etyp\":", eventType)
        buffer.writeJSONField("\"vid\":", visitorID)
        buffer.writeJSONField("\"sid\":", sessionID)
        buffer.writeStaticString(sessionStart ? ",\"session_start\":true" : ",\"session_start\":false")
        buffer.writeJSONField("\"uid\":", userID)
        buffer.writeJSONField("\"browser\":", browser)
        buffer.writeJSONField("\"browser_version\":", browserVersion)
        buffer.writeJSONField("\"os\":", os)
        buffer.writeJSONField("\"os_version\":", osVersion)
        buffer.writeJSONField("\"device\":", device)
        buffer.writeStaticString(botReason.isEmpty ? ",\"bot\":false" : ",\"bot\":true")
        buffer.writeJSONField("\"bot_reason\":", botReason)
        buffer.writeJSONField("\"country\":", country)
        buffer.writeJSONField("\"region\":", region)
        buffer.writeJSONField("\"city\":", city)
        if let latitude, let longitude {
            buffer.writeString(",\"lat\":\(latitude),\"lon\":\(longitude)")
        }
        buffer.writeJSONField("\"referrer_host\":", referrerHost)
        buffer.writeJSONField("\"source\":", sourceCategory)
        buffer.writeJSONField("\"utm_source\":", utmSource)
        buffer.writeJSONField("\"utm_medium\":", utmMedium)
        buffer.writeJSONField("\"utm_campaign\":", utmCampaign)
        buffer.writeJSONField("\"utm_term\":", utmTerm)
        buffer.writeJSONField("\"utm_content\":", utmContent)
        buffer.writeJSONField("\"click_id\":", clickID)
        buffer.writeJSONField("\"cflags\":", Int(consentFlags))
        if kind == .ltv {
            buffer.writeString(",\"revenue\":\(revenue)")
            buffer.writeJSONField("\"currency\":", currency)
        }
        if !properties.isEmpty {
            buffer.writeStaticString(",\"props\":")
            buffer.writeString(properties)
        }
        buffer.writeJSONField("\"channel\":", channel)
        buffer.writeJSONField("\"session_channel\":", sessionChannel)
        buffer.writeJSONField("\"oid\":", orgID)
        buffer.writeJSONField("\"org\":", org)
        buffer.writeJSONField("\"xid\":", experimentID)
        buffer.writeJSONField("\"split\":", variant)
        buffer.writeJSONField("\"tid\":", threadID)
        buffer.writeInteger(UInt8(ascii: "}"))
    }
}

/// Copy-on-write storage of ``TrackingEvent/Details``: no reference at all until a field gets a value, and events
/// with equal details compare equal however they were stored.
private struct DetailStorage: Sendable, Equatable {
    /// Shared between copies of an event until one of them changes a field (then that one copies it first).
    final class Box: @unchecked Sendable {
        var value: TrackingEvent.Details

        init(_ value: TrackingEvent.Details) { self.value = value }
    }

    private(set) var box: Box?

    /// Sets one field through `change`; an empty value where nothing is stored yet stores nothing.
    @inline(__always)
    mutating func set(isEmpty: Bool, _ change: (inout TrackingEvent.Details) -> Void) {
        if box == nil {
            if isEmpty { return }
            box = Box(TrackingEvent.Details())
        } else if !isKnownUniquelyReferenced(&box!) {
            box = Box(box!.value)
        }
        change(&box!.value)
    }

    mutating func replace(with details: TrackingEvent.Details) {
        box = details == TrackingEvent.Details() ? nil : Box(details)
    }

    static func == (lhs: DetailStorage, rhs: DetailStorage) -> Bool {
        lhs.box === rhs.box || (lhs.box?.value ?? TrackingEvent.Details()) == (rhs.box?.value ?? TrackingEvent.Details())
    }
}

/// Truncates client addresses before they are stored: the last octet of IPv4, all but the first 48 bits of IPv6.
public enum IPAnonymizer {
    public static func anonymize(_ address: String) -> String {
        // A byte scan: `String.contains(":")` goes through Foundation's locale-aware search (measured: half of
        // enrichment's cost on a small request).
        if address.utf8.contains(UInt8(ascii: ":")) {
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
        // IPv4 (the common case): the bytes up to the last dot and "0", built in place (at most 15 bytes, so an
        // inline small string: no allocation on the request path).
        var address = address
        return address.withUTF8 { bytes in
            guard let lastDot = bytes.lastIndex(of: UInt8(ascii: ".")) else { return String(decoding: bytes, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: lastDot + 2) { output in
                for index in 0...lastDot { output[index] = bytes[index] }
                output[lastDot + 1] = UInt8(ascii: "0")
                return lastDot + 2
            }
        }
    }
}
