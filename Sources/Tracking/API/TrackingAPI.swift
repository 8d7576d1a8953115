import Config
import Crypto
import Foundation
import Logging
import NIOCore
import Synchronization
import NIOHTTP1

/// `tracking.api`: the tracking API of the older Go tracker, mounted on every site when enabled.
public struct TrackingAPIConfiguration: Sendable, Equatable {
    public var enabled = false
    /// Origins allowed to call the API from browsers, as `https://app.example.com`; `*` allows any origin without
    /// credentials. Empty: the site's own hosts (http and https).
    public var corsOrigins: [String] = []
    /// Hosts `rdr` may send clients to besides the site's own (`*.example.com` covers subdomains).
    public var redirectHosts: [String] = []
    /// Key for signed redirect targets (`sig` = hex HMAC-SHA256 of the target URL); nil: only allowed hosts.
    public var redirectKey: [UInt8]?
    public var maxBodyBytes = 64 << 10
    public var limits = APIFields.Limits()
    /// `jurisdictions`: what `ppi/jds` answers, as a JSON array (the tracker's `jurisdictions` rows).
    public var jurisdictionsJSON = "[]"

    public init() {}
}

/// The path prefixes the API answers under: the current `/tr/v1/<kind>/` and the legacy ones.
public enum TrackingAPIPaths {
    public static let prefixes = ["/tr/v1/", "/str/v1/", "/img/v1/", "/rdr/v1/", "/tlv/v1/", "/ppi/v1/"]
}

/// One API call, as the data plane hands it over.
public struct APIRequest {
    public var method: HTTPMethod
    /// The path, without the query.
    public var path: Substring
    public var query: Substring
    public var body: ByteBuffer?
    public var cookie: String?
    public var origin: String?
    /// The resolved client address (whole: the geoip endpoint looks it up when no `ip` is given).
    public var clientAddress: String
    public var siteHosts: [String]
    public var isTLS: Bool
    public var eventLoop: any EventLoop
    /// The request's headers, for what a compatibility profile reads besides the cookie (`X-Tracking-ID`).
    public var headers: HTTPHeaders
    /// False where an answer cannot carry a cookie (a WebSocket message): no visitor id is made up for it.
    public var issuesCookies = true

    public init(
        method: HTTPMethod, path: Substring, query: Substring, body: ByteBuffer?, cookie: String?, origin: String?,
        clientAddress: String, siteHosts: [String], isTLS: Bool, eventLoop: any EventLoop, headers: HTTPHeaders = [:]
    ) {
        self.headers = headers
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.cookie = cookie
        self.origin = origin
        self.clientAddress = clientAddress
        self.siteHosts = siteHosts
        self.isTLS = isTLS
        self.eventLoop = eventLoop
    }
}

/// An answer of the API.
public struct APIResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// What a call results in: an answer now (with the events it records, their API fields filled in), or later.
public enum APIOutcome {
    case respond(APIResponse, events: [TrackingEvent])
    case deferred(EventLoopFuture<APIResponse>)
}

/// Where `GET ppi/agree` reads a visitor's consent history.
public protocol ConsentHistory: Sendable {
    func agreements(visitorID: String) async throws -> [TrackingEvent]
}

/// The tracking API (`tr`, `str`, `img`, `rdr`, `ltv`, `ppi/agree`, `ppi/geoip`), compatible with the older
/// tracker's paths and payloads and without its defects: no open redirect, no `*` with credentials, values keep
/// their case, bounded input, personal data (email, phone, user name) never stored.
public final class TrackingAPI: Sendable {
    public enum Endpoint: Equatable, Sendable {
        case track, serverTrack, pixel, redirect, ltv, consent, geoIP
        /// `clear`: `Clear-Site-Data` for the site's cookies and storage.
        case clear
        /// `ppi/jds`: the configured privacy jurisdictions.
        case jurisdictions
        /// An older system's endpoint (a site's `compat:` profile).
        case compat(CompatEndpoint)
        case unsupported(String)
        case unknownAction(String)
    }

    public let configuration: TrackingAPIConfiguration
    let enrichment: EnrichmentContext?
    let consentHistory: (any ConsentHistory)?
    let logger: Logger
    /// The WebSocket ingest's figures (its connections are the edge's; their messages come here).
    public let webSockets = WebSocketIngestCounters()
    /// Calls refused because their event would not fit a record (413), and whether that was logged.
    let oversizedRefusals = Atomic<Int>(0)
    private let loggedOversized = Atomic<Bool>(false)

    public init(
        configuration: TrackingAPIConfiguration, enrichment: EnrichmentContext?, consentHistory: (any ConsentHistory)?,
        scrubber: QueryScrubber = .standard, logger: Logger = Logger(label: "vantage.tracking-api")
    ) {
        self.configuration = configuration
        self.enrichment = enrichment
        self.consentHistory = consentHistory
        self.logger = logger
        scrubberState = Mutex(scrubber)
    }

    /// Appends the API's metrics in Prometheus text format.
    public func renderMetrics(into text: inout String) {
        text += "# HELP vantage_tracking_api_refused_total Tracking calls refused whole, by reason (too_large: the event's properties would not fit a record).\n"
        text += "# TYPE vantage_tracking_api_refused_total counter\n"
        text += "vantage_tracking_api_refused_total{reason=\"too_large\"} \(oversizedRefusals.load(ordering: .relaxed))\n"
        webSockets.render(into: &text)
    }

    /// What counts as personal in a field (its name, or a value that is an email address or phone number): such
    /// fields never go into `props`, and a redirect destination is stored without them.
    /// `tracking.privacy.query` (a reload replaces it).
    public var scrubber: QueryScrubber {
        get { scrubberState.withLock { $0 } }
        set { scrubberState.withLock { $0 = newValue } }
    }
    private let scrubberState: Mutex<QueryScrubber>

    /// The endpoint of `path` and the rest of the path (the `/key/value` tuples), or nil outside the API.
    public static func route(_ path: Substring) -> (Endpoint, tuples: Substring)? {
        func after(_ prefix: String) -> Substring? {
            path.hasPrefix(prefix) ? path.dropFirst(prefix.count) : nil
        }
        if let rest = after("/tr/v1/") {
            let kindEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            let kind = rest[..<kindEnd]
            let tuples = rest[kindEnd...]
            switch kind {
            case "tr": return (.track, tuples)
            case "str": return (.serverTrack, tuples)
            case "img": return (.pixel, tuples)
            case "rdr", "xrdr": return (.redirect, tuples)
            case "ltv": return (.ltv, tuples)
            case "ppi": return (ppiAction(tuples.drop { $0 == "/" }), "")
            case "clear": return (.clear, "")
            case "pub", "rpi", "ws", "pb": return (.unsupported(String(kind)), "")
            default: return (.track, rest)  // legacy `/tr/v1/<key>/<value>/...`
            }
        }
        if let rest = after("/str/v1/") { return (.serverTrack, rest) }
        if let rest = after("/img/v1/") { return (.pixel, rest) }
        if let rest = after("/rdr/v1/") { return (.redirect, rest) }
        if let rest = after("/tlv/v1/") { return (.ltv, rest) }
        if let rest = after("/ppi/v1/") { return (ppiAction(rest), "") }
        return CompatEndpoint.route(path).map { (.compat($0), "") }
    }

    private static func ppiAction(_ rest: Substring) -> Endpoint {
        let action = rest.prefix { $0 != "/" }
        switch action {
        case "agree": return .consent
        case "geoip": return .geoIP
        case "jds": return .jurisdictions
        default: return .unknownAction(String(action))
        }
    }

    // MARK: - Handling

    /// Answers a call. `makeID` gives event ids (the loop's generator); `now` is Unix milliseconds.
    public func handle(_ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        guard let (endpoint, tuples) = Self.route(request.path) else {
            return .respond(refusal(.notFound, "not a tracking API path", request), events: [])
        }
        if request.method == .OPTIONS { return .respond(preflight(request), events: []) }
        switch endpoint {
        case .unsupported(let kind):
            let reason = kind == "rpi"
                ? "the tracker's short-link API is off: set links.legacy_api (docs/COMPAT.md), or use the admin API's /links"
                : "/tr/v1/\(kind)/ is not supported by Vantage"
            return .respond(refusal(.notFound, reason, request), events: [])
        case .unknownAction(let action):
            return .respond(refusal(.badRequest, "unknown action \"\(action)\"; expected agree, geoip or jds", request), events: [])
        case .compat(let compat):
            return fitting(handleCompat(compat, request, now: now, makeID: makeID), request)
        case .clear:
            return .respond(clearSiteData(request), events: [])
        case .jurisdictions:
            guard request.method == .GET || request.method == .HEAD else { return methodNotAllowed("GET", request) }
            var response = APIResponse(status: .ok, body: ByteBuffer(string: configuration.jurisdictionsJSON))
            response.headers.add(name: "Content-Type", value: "application/json")
            finish(&response, request)
            return .respond(response, events: [])
        case .geoIP:
            guard request.method == .GET || request.method == .HEAD else { return methodNotAllowed("GET", request) }
            return .respond(geoIP(request), events: [])
        case .consent where request.method == .GET || request.method == .HEAD:
            return consentHistory(request)
        default:
            break
        }
        let allowed: [HTTPMethod] = switch endpoint {
        case .track, .serverTrack: [.GET, .POST, .PUT, .HEAD]
        case .pixel, .redirect: [.GET, .HEAD]
        default: [.POST]
        }
        guard allowed.contains(request.method) else {
            return methodNotAllowed(allowed.map(\.rawValue).joined(separator: ", "), request)
        }
        var fields = APIFields(limits: configuration.limits)
        do {
            if let cookie = request.cookie {
                let name = enrichment?.visitors.cookieName ?? "vid"
                if let vid = Enricher.cookieValue(cookie, name: name) { try fields.set("vid", .text(String(vid))) }
                if let consent = Enricher.cookieValue(cookie, name: "CookieConsent") { try fields.set("cflags", .text(String(consent))) }
            }
            try fields.addPathTuples(tuples)
            try fields.addQuery(request.query)
            if request.method == .POST, let body = request.body {
                guard body.readableBytes <= configuration.maxBodyBytes else {
                    return .respond(refusal(.payloadTooLarge, "the body is larger than \(configuration.maxBodyBytes) bytes", request), events: [])
                }
                try fields.addJSONBody(body)
            }
        } catch let problem as APIFields.Refusal {
            return .respond(refusal(.badRequest, problem.description, request), events: [])
        } catch {
            return .respond(refusal(.badRequest, "unreadable input", request), events: [])
        }
        let outcome: APIOutcome
        switch endpoint {
        case .track: outcome = track(fields, kind: .track, request, now: now, makeID: makeID)
        case .serverTrack: outcome = track(fields, kind: .serverTrack, request, now: now, makeID: makeID)
        case .pixel: outcome = track(fields, kind: .pixelOpen, request, now: now, makeID: makeID)
        case .redirect: outcome = redirect(fields, request, now: now, makeID: makeID)
        case .ltv: outcome = ltv(fields, request, now: now, makeID: makeID)
        default: outcome = consent(fields, request, now: now, makeID: makeID)
        }
        return fitting(outcome, request)
    }

    /// The outcome, or a 413 when one of its events carries more properties than a record keeps: fields are cut
    /// one by one to the value limit, and only an event still over the record's cap is refused (and counted).
    func fitting(_ outcome: APIOutcome, _ request: APIRequest) -> APIOutcome {
        guard case .respond(_, let events) = outcome,
            let oversized = events.first(where: { $0.properties.utf8.count > EventRecord.maxPropertiesBytes })
        else { return outcome }
        oversizedRefusals.add(1, ordering: .relaxed)
        if !loggedOversized.exchange(true, ordering: .relaxed) {
            logger.warning(
                "tracking API: refusing calls whose fields take more than \(EventRecord.maxPropertiesBytes) bytes (\(oversized.properties.utf8.count) here); counted in vantage_tracking_api_refused_total (logged once)")
        }
        return .respond(refusal(
            .payloadTooLarge,
            "the event's fields take \(oversized.properties.utf8.count) bytes, more than the \(EventRecord.maxPropertiesBytes) an event keeps",
            request), events: [])
    }

    private func track(_ fields: APIFields, kind: TrackingEvent.Kind, _ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        var event = Self.event(kind: kind, fields: fields, id: makeID(), now: now, scrubber: scrubber)
        do {
            try Self.applyMoney(fields, amountKeys: Self.amountKeys, to: &event)
        } catch {
            return .respond(refusal(.badRequest, error.description, request), events: [])
        }
        var response: APIResponse
        switch kind {
        case .serverTrack:
            // The older tracker answered the id as a JSON string; its headers were lost (written after the status).
            response = APIResponse(status: .ok, body: ByteBuffer(string: "\"\(event.id)\""))
            response.headers.add(name: "Content-Type", value: "application/json")
        case .pixelOpen:
            response = APIResponse(status: .ok, body: ByteBuffer(bytes: Self.transparentGIF))
            response.headers.add(name: "Content-Type", value: "image/gif")
        default:
            response = APIResponse(status: .ok)
        }
        if kind != .serverTrack { issueCookie(&event, request, into: &response.headers) }
        finish(&response, request)
        return .respond(response, events: [event])
    }

    /// `rdr`: a tracked redirect, only to the site's own hosts, configured hosts, or a target signed with the key.
    private func redirect(_ fields: APIFields, _ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        guard let target = fields.text("url") else {
            return .respond(refusal(.badRequest, "expected a url parameter with the redirect target", request), events: [])
        }
        guard allowsRedirect(to: target, signature: fields.text("sig"), siteHosts: request.siteHosts) else {
            return .respond(refusal(.badRequest, "redirect target not allowed (not a configured host and not signed)", request), events: [])
        }
        var remaining = fields
        remaining.remove("url")
        remaining.remove("sig")
        var event = Self.event(kind: .linkClick, fields: remaining, id: makeID(), now: now, scrubber: scrubber)
        event.properties = Self.properties(remaining, adding: [("to", scrubber.scrub(url: target) ?? target)], scrubber: scrubber)
        do {
            try Self.applyMoney(remaining, amountKeys: Self.amountKeys, to: &event)
        } catch {
            return .respond(refusal(.badRequest, error.description, request), events: [])
        }
        var response = APIResponse(status: .found)
        response.headers.add(name: "Location", value: target)
        response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        response.body = ByteBuffer(string: "302 Found: \(target)\n")
        issueCookie(&event, request, into: &response.headers)
        finish(&response, request)
        return .respond(response, events: [event])
    }

    /// `ltv`: one payment, or a `payments` array (one event each, sharing the call's visitor and user).
    private func ltv(_ fields: APIFields, _ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        var items: [APIFields] = []
        if case .json(let json) = fields["payments"] {
            guard let array = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [Any], !array.isEmpty,
                array.count <= 1000
            else {
                return .respond(refusal(.badRequest, "expected payments to be an array of 1 to 1000 objects", request), events: [])
            }
            var common = fields
            common.remove("payments")
            for element in array {
                guard let object = element as? [String: Any] else {
                    return .respond(refusal(.badRequest, "expected each payment to be an object", request), events: [])
                }
                var item = common
                do {
                    for key in object.keys.sorted() {
                        if let value = try APIFields.value(object[key]!) { try item.set(key, value) }
                    }
                } catch {
                    return .respond(refusal(.badRequest, "\(error)", request), events: [])
                }
                items.append(item)
            }
        } else {
            items = [fields]
        }
        var events: [TrackingEvent] = []
        let paymentKeys = Self.amountKeys + ["total", "price"]
        for item in items {
            guard paymentKeys.contains(where: { item.text($0) != nil }) else {
                return .respond(refusal(.badRequest, "expected an amount (amt, amount, revenue, total or price) in each payment", request), events: [])
            }
            var event = Self.event(kind: .ltv, fields: item, id: makeID(), now: now, scrubber: scrubber)
            do {
                try Self.applyMoney(item, amountKeys: paymentKeys, to: &event)
            } catch {
                return .respond(refusal(.badRequest, error.description, request), events: [])
            }
            events.append(event)
        }
        var response = APIResponse(status: .ok)
        finish(&response, request)
        return .respond(response, events: events)
    }

    /// `POST ppi/agree`: a consent event carrying `cflags`.
    private func consent(_ fields: APIFields, _ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        guard let vid = fields.text("vid"), Enricher.acceptableVisitorID(vid[...]) else {
            return .respond(refusal(.badRequest, "expected vid (1 to 64 letters, digits, - or _)", request), events: [])
        }
        guard let flags = fields.text("cflags").flatMap({ Int64($0) ?? Double($0).flatMap { Int64(exactly: $0) } }) else {
            return .respond(refusal(.badRequest, "expected cflags, an integer bit field", request), events: [])
        }
        var event = Self.event(kind: .consent, fields: fields, id: makeID(), now: now, scrubber: scrubber)
        event.visitorID = vid
        event.consentFlags = flags
        var response = APIResponse(status: .ok)
        finish(&response, request)
        return .respond(response, events: [event])
    }

    /// `GET ppi/agree?vid=`: the visitor's consent events, oldest first (404 `[]` when there are none).
    private func consentHistory(_ request: APIRequest) -> APIOutcome {
        var fields = APIFields(limits: configuration.limits)
        try? fields.addQuery(request.query)
        guard let vid = fields.text("vid"), Enricher.acceptableVisitorID(vid[...]) else {
            return .respond(refusal(.badRequest, "expected ?vid= (1 to 64 letters, digits, - or _)", request), events: [])
        }
        guard let consentHistory else {
            return .respond(refusal(.serviceUnavailable, "consent history is not available", request), events: [])
        }
        let promise = request.eventLoop.makePromise(of: APIResponse.self)
        let origin = corsHeaders(request)
        promise.completeWithTask {
            var response: APIResponse
            do {
                let records = try await consentHistory.agreements(visitorID: vid)
                var body = ByteBuffer()
                body.writeInteger(UInt8(ascii: "["))
                for (position, record) in records.enumerated() {
                    if position > 0 { body.writeInteger(UInt8(ascii: ",")) }
                    body.writeJSONField("{\"id\":", record.id.description, first: true)
                    body.writeJSONField("\"vid\":", record.visitorID)
                    body.writeJSONField("\"cflags\":", Int(record.consentFlags))
                    body.writeStaticString(",\"ts\":")
                    body.writeDecimal(Int(record.timeMilliseconds))
                    body.writeInteger(UInt8(ascii: "}"))
                }
                body.writeInteger(UInt8(ascii: "]"))
                response = APIResponse(status: records.isEmpty ? .notFound : .ok, body: body)
                response.headers.add(name: "Content-Type", value: "application/json")
            } catch {
                response = APIResponse(status: .serviceUnavailable, body: ByteBuffer(string: "consent history unavailable: \(error)\n"))
                response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            }
            response.headers.add(contentsOf: origin)
            response.headers.add(name: "Cache-Control", value: "no-store")
            response.headers.add(name: "Content-Length", value: String(response.body.readableBytes))
            return response
        }
        return .deferred(promise.futureResult)
    }

    /// `clear`: asks the browser to drop this site's cookies and storage (the visitor cookie among them), as the
    /// older tracker's `/clear` did with `"*"` (which would also drop the cache and restart execution contexts).
    private func clearSiteData(_ request: APIRequest) -> APIResponse {
        var response = APIResponse(status: .ok, body: ByteBuffer(string: "OK"))
        response.headers.add(name: "Clear-Site-Data", value: "\"cookies\", \"storage\"")
        response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        finish(&response, request)
        return response
    }

    /// `GET ppi/geoip?ip=`: what the GeoIP database says about an address (the caller's by default).
    private func geoIP(_ request: APIRequest) -> APIResponse {
        guard let source = enrichment?.geoIP, let database = source.current else {
            return refusal(.serviceUnavailable, "no GeoIP database configured (tracking.geoip)", request)
        }
        var fields = APIFields(limits: configuration.limits)
        try? fields.addQuery(request.query)
        let address = fields.text("ip") ?? request.clientAddress
        guard parseIPAddress(address) != nil else {
            return refusal(.badRequest, "expected ip to be an IPv4 or IPv6 address", request)
        }
        let location = database.lookup(address)
        guard !location.country.isEmpty || !location.city.isEmpty else {
            return refusal(.notFound, "no GeoIP entry for \(address)", request)
        }
        var body = ByteBuffer()
        body.writeJSONField("{\"ip\":", address, first: true)
        body.writeJSONField("\"country\":", location.country)
        body.writeJSONField("\"region\":", location.region)
        body.writeJSONField("\"city\":", location.city)
        if source.keepCoordinates, !location.latitude.isNaN {
            body.writeString(",\"lat\":\(location.latitude),\"lon\":\(location.longitude)")
        }
        body.writeStaticString("}")
        var response = APIResponse(status: .ok, body: body)
        response.headers.add(name: "Content-Type", value: "application/json")
        finish(&response, request)
        return response
    }

    // MARK: - Events

    /// Field names with columns of their own (everything else goes to the properties).
    static let mappedFields: Set<String> = [
        "vid", "sid", "uid", "ename", "etyp", "content", "url", "last", "cflags", "lat", "lon", "source", "medium",
        "campaign", "term", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
        "amt", "amount", "revenue", "currency", "app", "os", "oid", "org", "xid", "split", "tid",
    ]

    /// An app's own `device` value, when it names a device class (anything else stays in the properties).
    static func deviceClass(_ fields: APIFields) -> UserAgent.Device? {
        fields.text("device").flatMap { UserAgent.Device(rawValue: $0.lowercased()) }.flatMap { $0 == .bot ? nil : $0 }
    }

    /// The names an amount of money goes by, in the order they are looked for.
    static let amountKeys = ["revenue", "amt", "amount"]

    /// Current ISO 4217 codes, from the system's ICU data (Foundation), not a list of our own.
    static let currencyCodes = Set(Locale.commonISOCurrencyCodes)

    /// Puts a call's money into the event's revenue columns, on any kind: the first of `amountKeys` that is present
    /// (a number, as text or JSON) and `currency` (an ISO 4217 code in any case; USD when absent). A value that is
    /// not a number, or a currency that is not a current ISO 4217 code, is refused naming the field: money is never
    /// dropped in silence.
    static func applyMoney(_ fields: APIFields, amountKeys: [String], to event: inout TrackingEvent) throws(APIFields.Refusal) {
        var currency: String?
        if let code = fields.text("currency") {
            let upper = code.uppercased()
            guard currencyCodes.contains(upper) else {
                throw APIFields.Refusal(
                    description: "field \"currency\": \"\(code.prefix(16))\" is not an ISO 4217 currency code (such as EUR or USD)")
            }
            currency = upper
        }
        guard let key = amountKeys.first(where: { fields.text($0) != nil }), let text = fields.text(key) else {
            if let currency { event.currency = currency }
            return
        }
        guard let amount = Double(text.trimmingCharacters(in: .whitespaces)), amount.isFinite else {
            throw APIFields.Refusal(description: "field \"\(key)\": expected an amount, found \"\(text.prefix(32))\"")
        }
        event.revenue = amount
        event.currency = currency ?? "USD"
    }
    /// Personal data the older tracker hashed: never stored here.
    static let personalFields: Set<String> = ["email", "cell", "phone", "uname", "password", "pwd"]

    /// An event with the API fields of `fields`; the data plane adds the request's own fields when it records it.
    static func event(
        kind: TrackingEvent.Kind, fields: APIFields, id: EventID, now: Int64, scrubber: QueryScrubber = .standard
    ) -> TrackingEvent {
        var event = TrackingEvent(
            id: id, timeMilliseconds: now, site: "", host: "", kind: kind, method: "", scheme: "", target: "",
            status: 0, bytesIn: 0, bytesOut: 0, durationMicroseconds: 0, httpVersion: "", clientAddress: "")
        if let vid = fields.text("vid"), Enricher.acceptableVisitorID(vid[...]) { event.visitorID = vid }
        if let sid = fields.text("sid"), Enricher.acceptableVisitorID(sid[...]) { event.sessionID = sid }
        event.userID = fields.text("uid") ?? ""
        event.eventName = fields.text("ename") ?? fields.text("content") ?? ""
        event.eventType = fields.text("etyp") ?? ""
        if let url = fields.text("url") {
            let parsed = PageURL(url)
            event.target = parsed.target
            event.host = parsed.host
        }
        if let last = fields.text("last") { event.referrer = last }
        if let flags = fields.text("cflags") { event.consentFlags = Int64(flags) ?? 0 }
        if let lat = fields.text("lat").flatMap(Double.init), let lon = fields.text("lon").flatMap(Double.init),
            (-90...90).contains(lat), (-180...180).contains(lon)
        {
            event.latitude = lat
            event.longitude = lon
        }
        event.utmSource = fields.text("utm_source") ?? fields.text("source") ?? ""
        event.utmMedium = fields.text("utm_medium") ?? fields.text("medium") ?? ""
        event.utmCampaign = fields.text("utm_campaign") ?? fields.text("campaign") ?? ""
        event.utmTerm = fields.text("utm_term") ?? fields.text("term") ?? ""
        event.utmContent = fields.text("utm_content") ?? ""
        for (key, value) in fields.entries where TrafficSource.clickIDNames.contains(key) && !value.text.isEmpty {
            event.clickID = key + "=" + value.text
            break
        }
        // What a native app says about itself (its HTTP client's agent says little): the app's name, the device class
        // and the OS, which enrichment then keeps.
        if let app = fields.text("app") { event.browser = String(app.prefix(64)) }
        if let os = fields.text("os") { event.os = String(os.prefix(64)) }
        if let device = deviceClass(fields) { event.device = device.rawValue }
        // Tenancy and experiments: columns of their own (the older tracker's names).
        event.orgID = fields.text("oid").map { String($0.prefix(128)) } ?? ""
        event.org = fields.text("org").map { String($0.prefix(128)) } ?? ""
        event.experimentID = fields.text("xid").map { String($0.prefix(128)) } ?? ""
        event.variant = fields.text("split").map { String($0.prefix(128)) } ?? ""
        event.threadID = fields.text("tid").map { String($0.prefix(128)) } ?? ""
        event.properties = properties(fields, scrubber: scrubber)
        return event
    }

    /// The unmapped fields as one JSON object of strings (numbers and booleans as their text, nested values as
    /// JSON text), personal data left out; empty when nothing is left.
    static func properties(
        _ fields: APIFields, adding extra: [(String, String)] = [], scrubber: QueryScrubber = .standard
    ) -> String {
        var buffer = ByteBuffer()
        var first = true
        func add(_ key: String, _ value: String) {
            buffer.writeInteger(UInt8(ascii: first ? "{" : ","))
            first = false
            buffer.writeJSONString(key)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeJSONString(value)
        }
        let mappedDevice = deviceClass(fields) != nil
        for (key, value) in fields.entries
        where !mappedFields.contains(key) && !personalFields.contains(key) && !TrafficSource.clickIDNames.contains(key)
            && !scrubber.isPersonal(name: key, value: value.text) && !(key == "device" && mappedDevice)
            && !(key == "truncated" && !fields.truncated.isEmpty)
        {
            add(key, value.text)
        }
        for (key, value) in extra { add(key, value) }
        // Which values were cut to the limit, so a report can tell a short value from a shortened one.
        if !fields.truncated.isEmpty { add("truncated", fields.truncated.joined(separator: ",")) }
        guard !first else { return "" }
        buffer.writeInteger(UInt8(ascii: "}"))
        return String(buffer: buffer)
    }

    // MARK: - Answers

    /// Client events set the visitor cookie when cookies are on and the caller has none.
    private func issueCookie(_ event: inout TrackingEvent, _ request: APIRequest, into headers: inout HTTPHeaders) {
        guard let enrichment, enrichment.visitors.cookies, request.issuesCookies else { return }
        let name = enrichment.visitors.cookieName
        if let cookie = request.cookie, let present = Enricher.cookieValue(cookie, name: name), Enricher.acceptableVisitorID(present) {
            return
        }
        if event.visitorID.isEmpty {
            var generator = EventIDGenerator()
            event.visitorID = EventID(high: (generator.nextRandom() & ~0xF000) | 0x4000, low: (generator.nextRandom() & ~(3 << 62)) | (2 << 62)).description
        }
        headers.add(name: "Set-Cookie", value: Enricher.cookie(event.visitorID, visitors: enrichment.visitors, secureTransport: request.isTLS))
    }

    /// Headers every answer gets: CORS, no caching (a cached pixel or redirect is a lost event), length.
    func finish(_ response: inout APIResponse, _ request: APIRequest) {
        response.headers.add(contentsOf: corsHeaders(request))
        response.headers.add(name: "Cache-Control", value: "no-store, max-age=0")
        // HEAD announces the length GET would send (RFC 9110 §9.3.2), without the bytes.
        response.headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        if request.method == .HEAD { response.body.clear() }
    }

    func refusal(_ status: HTTPResponseStatus, _ reason: String, _ request: APIRequest) -> APIResponse {
        var response = APIResponse(status: status, body: ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(reason)\n"))
        response.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        finish(&response, request)
        return response
    }

    func methodNotAllowed(_ allow: String, _ request: APIRequest) -> APIOutcome {
        var response = refusal(.methodNotAllowed, "expected \(allow)", request)
        response.headers.add(name: "Allow", value: allow + ", OPTIONS")
        return .respond(response, events: [])
    }

    /// CORS for browsers: `*` only when configured and then without credentials; otherwise the caller's origin when
    /// it is allowed, with credentials (the visitor cookie) and `Vary: Origin`.
    func corsHeaders(_ request: APIRequest) -> HTTPHeaders {
        var headers = HTTPHeaders()
        guard let origin = request.origin else { return headers }
        if configuration.corsOrigins.contains("*") {
            headers.add(name: "Access-Control-Allow-Origin", value: "*")
            return headers
        }
        headers.add(name: "Vary", value: "Origin")
        let allowed: Bool
        if configuration.corsOrigins.isEmpty {
            let host = TrafficSource.host(ofURL: origin.lowercased()) ?? ""
            let bare = origin.lowercased().split(separator: "/").last.map(String.init) ?? ""
            allowed = request.siteHosts.contains { $0 == host || $0 == "www." + host || $0 == bare }
        } else {
            allowed = configuration.corsOrigins.contains(origin)
        }
        guard allowed else { return headers }
        headers.add(name: "Access-Control-Allow-Origin", value: origin)
        headers.add(name: "Access-Control-Allow-Credentials", value: "true")
        return headers
    }

    private func preflight(_ request: APIRequest) -> APIResponse {
        var response = APIResponse(status: .noContent)
        let cors = corsHeaders(request)
        response.headers.add(contentsOf: cors)
        if cors.contains(name: "Access-Control-Allow-Origin") {
            response.headers.add(name: "Access-Control-Allow-Methods", value: "GET, POST, OPTIONS")
            response.headers.add(name: "Access-Control-Allow-Headers", value: "Content-Type, Authorization, User")
            response.headers.add(name: "Access-Control-Max-Age", value: "86400")
        }
        response.headers.add(name: "Cache-Control", value: "no-store, max-age=0")
        response.headers.add(name: "Content-Length", value: "0")
        return response
    }

    /// Whether `rdr` may send a client to `target`.
    func allowsRedirect(to target: String, signature: String?, siteHosts: [String]) -> Bool {
        guard !target.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) else { return false }
        if target.hasPrefix("/") && !target.hasPrefix("//") { return true }
        let lowered = target.lowercased()
        guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"), let host = TrafficSource.host(ofURL: lowered)
        else { return false }
        if let key = configuration.redirectKey, let signature {
            let expected = HMAC<SHA256>.authenticationCode(for: Array(target.utf8), using: SymmetricKey(data: key))
            if Signatures.equal(signature.lowercased(), Signatures.hex(expected)) { return true }
        }
        // `host(ofURL:)` drops a leading www.
        let candidates = siteHosts + configuration.redirectHosts
        return candidates.contains { allowed in
            let allowed = allowed.lowercased()
            if allowed.hasPrefix("*.") {
                let suffix = allowed.dropFirst(2)
                return host == suffix || host.hasSuffix("." + suffix)
            }
            return allowed == host || allowed == "www." + host
        }
    }

    /// The signature `rdr` accepts for `target` with `key`: hex HMAC-SHA256 (what `vantage api sign-url` prints).
    public static func signature(for target: String, key: [UInt8]) -> String {
        Signatures.hex(HMAC<SHA256>.authenticationCode(for: Array(target.utf8), using: SymmetricKey(data: key)))
    }

    /// A 1×1 transparent GIF (43 bytes: a two-colour table and a Graphic Control Extension marking colour 0 as
    /// transparent, which the older tracker's 35-byte pixel lacked).
    public static let transparentGIF: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]
}

/// A page URL reported by a client: absolute (`https://host/path?q`) or a path.
struct PageURL {
    var host = ""
    var target = ""

    init(_ text: String) {
        var rest = Substring(text)
        if let scheme = rest.range(of: "://") {
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            host = String(rest[..<authorityEnd].lowercased().split(separator: "@").last ?? "")
            rest = rest[authorityEnd...]
        } else if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            host = rest[..<authorityEnd].lowercased()
            rest = rest[authorityEnd...]
        }
        if let fragment = rest.firstIndex(of: "#") { rest = rest[..<fragment] }
        if rest.isEmpty || rest.first == "?" { rest = "/" + rest }
        target = String(rest)
    }
}
