import Config
import Foundation
import NIOCore
import NIOHTTP1

/// The older systems whose clients a site keeps answering (`compat:` on a site, or `tracking.compat` for every
/// site): each profile mounts that system's endpoints, maps its field names onto Vantage's columns (the rest goes
/// to `props`) and answers as its clients expect. The mappings are tabled in docs/COMPAT.md.
public enum CompatProfile: String, Sendable, CaseIterable, Equatable {
    /// The Go tracker's extras beside `/tr/v1/` (which `tracking.api` mounts): `/health`, `/ping`, `/status`,
    /// `/metrics` (its JSON: batching figures, no Prometheus text and nothing about requests or visitors).
    case tracker
    /// Pushtech: `GET /t/<event>?k=v` and `GET /event?k=v`, answered `{"status":"ok"}`.
    case pushtech
    /// Alcolytics: `POST /track` (alcojs JSON under any content type), `GET /img` and `GET /track` (GIF),
    /// `/webhook/<project>/<service>/<action>` (any method), the numeric `uid` cookie.
    case alcolytics
    /// TraceGlider: `POST /api/events`, `POST /api/navigation`, `GET /api/tracking-cookie`, the `tracking_id` cookie.
    case traceglider

    /// One path a profile answers.
    public struct Mount: Sendable, Equatable {
        public var path: String
        /// Only this path, not the paths under it (`/track` must not take `/tracking.html`).
        public var exact: Bool
        /// Who answers: the tracking API, or the edge itself (health, ping, status).
        public var answer: Answer
    }

    public enum Answer: Sendable, Equatable {
        case trackingAPI
        case health
        case ping
        case status
        case metrics
        case webhook(WebhookConfiguration.Layout)
    }

    public var mounts: [Mount] {
        switch self {
        case .tracker:
            [Mount(path: "/health", exact: true, answer: .health), Mount(path: "/ping", exact: true, answer: .ping),
             Mount(path: "/status", exact: true, answer: .status), Mount(path: "/metrics", exact: true, answer: .metrics)]
        case .pushtech:
            [Mount(path: "/t/", exact: false, answer: .trackingAPI), Mount(path: "/event", exact: true, answer: .trackingAPI)]
        case .alcolytics:
            [Mount(path: "/track", exact: true, answer: .trackingAPI), Mount(path: "/img", exact: true, answer: .trackingAPI),
             Mount(path: "/webhook/", exact: false, answer: .webhook(.alcolytics))]
        case .traceglider:
            ["/api/events", "/api/navigation", "/api/tracking-cookie"].map {
                Mount(path: $0, exact: true, answer: .trackingAPI)
            }
        }
    }

    /// A `compat:` list: profile names, each at most once.
    public static func list(from node: ConfigNode) throws -> [CompatProfile] {
        var profiles: [CompatProfile] = []
        for item in try node.list() {
            let name = try item.oneOf(allCases.map(\.rawValue))
            let profile = CompatProfile(rawValue: name)!
            guard !profiles.contains(profile) else { throw item.error("\(name) is listed twice") }
            profiles.append(profile)
        }
        return profiles
    }
}

/// What a compatibility path is, once routed.
public enum CompatEndpoint: Equatable, Sendable {
    /// Pushtech: the event is the last path segment.
    case pushtech(event: String)
    case alcolyticsTrack
    case alcolyticsPixel
    case traceGliderEvent
    case traceGliderNavigation
    case traceGliderCookie

    /// The endpoint of a path outside `/tr/v1/` (only paths a site mounted reach the API).
    static func route(_ path: Substring) -> CompatEndpoint? {
        switch path {
        case "/track": return .alcolyticsTrack
        case "/img": return .alcolyticsPixel
        case "/api/events": return .traceGliderEvent
        case "/api/navigation": return .traceGliderNavigation
        case "/api/tracking-cookie": return .traceGliderCookie
        case "/event": return .pushtech(event: "event")
        default:
            guard path.hasPrefix("/t/") else { return nil }
            // Pushtech took the last non-empty segment as the event type (`/t/app_open`, `/t/a/b` → b).
            let segment = path.split(separator: "/").last.map { APIFields.percentDecode($0, plusIsSpace: false) } ?? "t"
            return .pushtech(event: segment)
        }
    }
}

extension TrackingAPI {
    /// Answers a compatibility endpoint: the older system's fields mapped onto the API's, the event made as
    /// `tr`, `img` or nothing would make it, the answer in the older system's shape.
    func handleCompat(_ endpoint: CompatEndpoint, _ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        let allowed: [HTTPMethod] = switch endpoint {
        case .pushtech, .alcolyticsPixel, .traceGliderCookie: [.GET, .HEAD]
        case .alcolyticsTrack: [.GET, .HEAD, .POST]
        case .traceGliderEvent, .traceGliderNavigation: [.POST]
        }
        guard allowed.contains(request.method) else {
            return methodNotAllowed(allowed.map(\.rawValue).joined(separator: ", "), request)
        }
        if endpoint == .traceGliderCookie { return .respond(traceGliderCookie(request), events: []) }
        var fields = APIFields(limits: configuration.limits)
        do {
            switch endpoint {
            case .pushtech(let name):
                try fields.addQuery(request.query)
                fields.rename("deviceid", to: "vid")
                fields.rename("referrer", to: "last")
                try fields.set("ename", .text(name))
            case .alcolyticsTrack where request.method == .POST:
                try Self.readAlcolytics(try body(request), query: nil, request, into: &fields)
            case .alcolyticsTrack, .alcolyticsPixel:
                var query = APIFields(limits: configuration.limits)
                try query.addQuery(request.query)
                // `j=<json>`: the whole event as JSON in one parameter, beside plain parameters.
                let object = try query.text("j").map { try APIFields.jsonObject(ByteBuffer(string: $0)) } ?? [:]
                query.remove("j")
                try Self.readAlcolytics(object, query: query, request, into: &fields)
            case .traceGliderEvent, .traceGliderNavigation:
                try Self.readTraceGlider(try body(request), navigation: endpoint == .traceGliderNavigation, request, into: &fields)
            case .traceGliderCookie:
                break
            }
        } catch let problem as APIFields.Refusal {
            return .respond(refusal(.badRequest, problem.description, request), events: [])
        } catch let tooLarge as BodyTooLarge {
            return .respond(refusal(.payloadTooLarge, tooLarge.description, request), events: [])
        } catch {
            return .respond(refusal(.badRequest, "unreadable input", request), events: [])
        }
        let isPixel = endpoint == .alcolyticsPixel || (endpoint == .alcolyticsTrack && request.method != .POST)
        var event = Self.event(kind: isPixel ? .pixelOpen : .track, fields: fields, id: makeID(), now: now, scrubber: scrubber)
        do {
            try Self.applyMoney(fields, amountKeys: Self.amountKeys, to: &event)
        } catch {
            return .respond(refusal(.badRequest, error.description, request), events: [])
        }
        var response: APIResponse
        switch endpoint {
        case .pushtech:
            response = Self.json(#"{"status":"ok"}"#)
        case .alcolyticsTrack, .alcolyticsPixel:
            response = isPixel ? APIResponse(status: .ok, body: ByteBuffer(bytes: Self.transparentGIF)) : Self.json(#"{"result":"queued"}"#)
            if isPixel { response.headers.add(name: "Content-Type", value: "image/gif") }
            issueProfileCookie(&event, name: "uid", maxAge: 2 * 365 * 86_400, sameSiteNone: false, makeValue: Self.numericID, request, into: &response.headers)
        case .traceGliderEvent, .traceGliderNavigation, .traceGliderCookie:
            response = Self.json(#"{"status":"success"}"#)
            // The seed dropped a visitor's first event while it set the cookie; here it is kept.
            issueProfileCookie(&event, name: "tracking_id", maxAge: 365 * 86_400, sameSiteNone: true, makeValue: Self.uuid, request, into: &response.headers)
        }
        finish(&response, request)
        return .respond(response, events: [event])
    }

    struct BodyTooLarge: Error, CustomStringConvertible {
        var description: String
    }

    /// The JSON object of a POST body, under any content type (sendBeacon sends `text/plain`).
    private func body(_ request: APIRequest) throws -> [String: Any] {
        guard let body = request.body, body.readableBytes > 0 else { throw APIFields.Refusal(description: "expected a JSON body") }
        guard body.readableBytes <= configuration.maxBodyBytes else {
            throw BodyTooLarge(description: "the body is larger than \(configuration.maxBodyBytes) bytes")
        }
        return try APIFields.jsonObject(body)
    }

    /// alcojs: `name` is the event, `uid` (body, `?uid=` or the `uid` cookie) the visitor, `page.url` and
    /// `page.referrer` the page and referrer, `user.id` the user, `projectId` the tenant (`oid`), `session` goes to
    /// `session_info`, `data`'s members are fields of their own; the rest goes to `props`.
    static func readAlcolytics(_ object: [String: Any], query: APIFields?, _ request: APIRequest, into fields: inout APIFields) throws {
        var object = object
        let page = object.removeValue(forKey: "page") as? [String: Any]
        let user = object.removeValue(forKey: "user") as? [String: Any]
        let data = object.removeValue(forKey: "data") as? [String: Any]
        try fields.addJSONObject(object, foldingIn: nil)
        for (key, value) in query?.entries ?? [] { try fields.set(key, value) }
        if let data { try fields.addJSONObject(data, foldingIn: nil, overwrite: false) }
        fields.rename("name", to: "ename")
        // The project is the tenant: the `oid` column.
        fields.rename("projectid", to: "oid")
        // alcojs' `session` (type, number, marks) is analytics, not a secret; the name alone would have it dropped
        // as a session token.
        fields.rename("session", to: "session_info")
        if let url = page?["url"] as? String { try fields.set("url", .text(url)) }
        if let referrer = page?["referrer"] as? String, !referrer.isEmpty { try fields.set("last", .text(referrer)) }
        if var rest = page {
            rest["url"] = nil
            rest["referrer"] = nil
            if !rest.isEmpty, let value = try APIFields.value(rest) { try fields.set("page", value) }
        }
        // Alcolytics' `uid` names the visitor (its numeric simpleflake id), not a signed-in user.
        let visitor = fields.text("uid") ?? request.cookie.flatMap { Enricher.cookieValue($0, name: "uid") }.map(String.init)
        fields.remove("uid")
        if let visitor { try fields.set("vid", .text(visitor)) }
        if let id = user?["id"], let value = try APIFields.value(id) { try fields.set("uid", value) }
        if let traits = user?["traits"], let value = try APIFields.value(traits) { try fields.set("user_traits", value) }
    }

    /// TraceGlider: `type` is the event (`navigation` for the navigation endpoint), the visitor is `trackingId`,
    /// `X-Tracking-ID` or the `tracking_id` cookie, `pageDetails.url`/`url` the page and `pageDetails.referrer`/
    /// `referrer` the referrer. Keystrokes are never stored (they may be passwords), nor the user agent the request
    /// already carries.
    static func readTraceGlider(_ object: [String: Any], navigation: Bool, _ request: APIRequest, into fields: inout APIFields) throws {
        var object = object
        for key in ["keystroke", "userAgent"] { object[key] = nil }
        let details = (object.removeValue(forKey: "pageDetails") as? [String: Any]) ?? [:]
        try fields.addJSONObject(object, foldingIn: nil)
        if navigation {
            try fields.set("ename", .text("navigation"))
        } else {
            fields.rename("type", to: "ename")
        }
        if let url = details["url"] as? String { try fields.set("url", .text(url)) }
        fields.rename("referrer", to: "last")
        if let referrer = details["referrer"] as? String, !referrer.isEmpty { try fields.set("last", .text(referrer)) }
        var rest = details
        for key in ["url", "referrer", "userAgent"] { rest[key] = nil }
        if !rest.isEmpty, let value = try APIFields.value(rest) { try fields.set("pagedetails", value) }
        let visitor = fields.text("trackingid") ?? request.headers.first(name: "x-tracking-id")
            ?? request.cookie.flatMap { Enricher.cookieValue($0, name: "tracking_id") }.map(String.init)
        fields.remove("trackingid")
        if let visitor, !visitor.isEmpty { try fields.set("vid", .text(visitor)) }
    }

    /// `GET /api/tracking-cookie`: a new `tracking_id` (UUID) as JSON, and as a cookie when cookies are on.
    private func traceGliderCookie(_ request: APIRequest) -> APIResponse {
        let id = Self.uuid()
        var response = Self.json(#"{"tracking_id":"\#(id)"}"#)
        if let enrichment, enrichment.visitors.cookies {
            response.headers.add(
                name: "Set-Cookie",
                value: Self.profileCookie(name: "tracking_id", value: id, maxAge: 365 * 86_400, sameSiteNone: true, secure: request.isTLS))
        }
        finish(&response, request)
        return response
    }

    /// A profile's own visitor cookie, when cookies are on and the caller has none: the event's visitor id if the
    /// call named one the profile accepts, else a new one.
    private func issueProfileCookie(
        _ event: inout TrackingEvent, name: String, maxAge: Int, sameSiteNone: Bool, makeValue: () -> String,
        _ request: APIRequest, into headers: inout HTTPHeaders
    ) {
        guard let enrichment, enrichment.visitors.cookies else { return }
        if let cookie = request.cookie, Enricher.cookieValue(cookie, name: name) != nil { return }
        if event.visitorID.isEmpty { event.visitorID = makeValue() }
        headers.add(
            name: "Set-Cookie",
            value: Self.profileCookie(name: name, value: event.visitorID, maxAge: maxAge, sameSiteNone: sameSiteNone, secure: request.isTLS))
    }

    /// HttpOnly always; Secure over TLS; `SameSite=None` (the older system's, for calls from other sites) only
    /// with Secure, as browsers require, else Lax.
    static func profileCookie(name: String, value: String, maxAge: Int, sameSiteNone: Bool, secure: Bool) -> String {
        var cookie = "\(name)=\(value); Max-Age=\(maxAge); Path=/; HttpOnly"
        if secure { cookie += "; Secure" }
        cookie += sameSiteNone && secure ? "; SameSite=None" : "; SameSite=Lax"
        return cookie
    }

    /// A new Alcolytics-style uid: 19 decimal digits (a random 63-bit number above 10^18).
    static func numericID() -> String {
        String(UInt64.random(in: 1_000_000_000_000_000_000...UInt64(Int64.max)))
    }

    static func uuid() -> String { UUID().uuidString.lowercased() }

    static func json(_ text: String) -> APIResponse {
        var response = APIResponse(status: .ok, body: ByteBuffer(string: text))
        response.headers.add(name: "Content-Type", value: "application/json")
        return response
    }
}
