import NIOHTTP1

/// What makes an answered request a page view (DESIGN.md §4): a GET answered 2xx or 304 with `text/html` that is
/// not a prefetch, prerender or preview. Everything else the edge answers is a `request` event.
public enum PageView {
    public static func qualifies(method: HTTPMethod, status: Int, isHTML: Bool, isPrefetch: Bool) -> Bool {
        guard case .GET = method else { return false }
        return isHTML && ((200..<300).contains(status) || status == 304) && !isPrefetch
    }
}

/// The request facts the visitor-cookie rule reads.
public struct CookieRequest {
    public var site: String
    /// The route tracks its requests (`track: false` issues no cookie).
    public var tracked: Bool
    public var isPageView: Bool
    public var cookie: String?
    public var doNotTrack: Bool
    public var globalPrivacyControl: Bool
    public var userAgent: String?
    public var secureTransport: Bool

    public init(
        site: String, tracked: Bool, isPageView: Bool, cookie: String?, doNotTrack: Bool, globalPrivacyControl: Bool,
        userAgent: String?, secureTransport: Bool
    ) {
        self.site = site
        self.tracked = tracked
        self.isPageView = isPageView
        self.cookie = cookie
        self.doNotTrack = doNotTrack
        self.globalPrivacyControl = globalPrivacyControl
        self.userAgent = userAgent
        self.secureTransport = secureTransport
    }
}

extension Enricher {
    /// With visitor cookies on: the visitor id and `Set-Cookie` value for a tracked page view of a visitor without an
    /// acceptable cookie, unless a DNT or GPC signal the configuration honours says no. The id is the browser's
    /// cookieless id, so what it did before returning the cookie (and its requests that never carry it) stays one
    /// visitor. `clientAddress` is asked only when a cookie is issued.
    public func visitorCookieToIssue(
        for request: @autoclosure () -> CookieRequest, clientAddress: @autoclosure () -> String, nowMilliseconds: Int64
    ) -> (visitorID: String, setCookie: String)? {
        // Most sites run without visitor cookies: then nothing about the request is gathered.
        let visitors = visitors
        guard visitors.cookies else { return nil }
        let request = request()
        guard request.tracked, request.isPageView else { return nil }
        if (visitors.honorDoNotTrack && request.doNotTrack)
            || (visitors.honorGlobalPrivacyControl && request.globalPrivacyControl)
        {
            return nil
        }
        if let cookie = request.cookie, let present = Self.cookieValue(cookie, name: visitors.cookieName),
            Self.acceptableVisitorID(present)
        {
            return nil
        }
        let visitorID = visitorIDForCookie(
            site: request.site, clientAddress: clientAddress(), userAgent: request.userAgent, timeMilliseconds: nowMilliseconds)
        return (visitorID, visitorCookie(visitorID, secureTransport: request.secureTransport))
    }
}

/// Turns a request's event into another kind (a short-link click is one): ``prepare(_:)`` before enrichment,
/// ``classify(_:)`` after it, when the visitor is known.
public protocol EventReclassification {
    func prepare(_ event: inout TrackingEvent)
    func classify(_ event: inout TrackingEvent)
}

extension EventRecorder {
    /// Records what an answered request became: its own event, enriched (flagged when a rate limit refused it or
    /// would have); or the events a tracking API call made, each completed by the request's fields; or the request
    /// as another kind of event (`reclassification`: a short-link click). Without an enricher the request's event
    /// goes in as it is. Returns the id of the first event recorded (the access log names it).
    ///
    /// `event` is enriched where the caller keeps it (`inout`): the event is several hundred bytes, and passing it
    /// on by value had the compiler copy it whole four times a request.
    public func recordAnswered(
        _ event: inout TrackingEvent, facts: @autoclosure () -> RequestFacts, enricher: Enricher?, apiEvents: [TrackingEvent],
        reclassification: (any EventReclassification)?, rateLimitFlag: String, nowMilliseconds: Int64
    ) -> EventID {
        guard let enricher else {
            record(inPlace: &event, nowMilliseconds: nowMilliseconds)
            return event.id
        }
        let facts = facts()
        if let reclassification {
            reclassification.prepare(&event)
            enricher.enrich(&event, facts: facts)
            reclassification.classify(&event)
            record(inPlace: &event, nowMilliseconds: nowMilliseconds)
            return event.id
        }
        guard !apiEvents.isEmpty else {
            enricher.enrich(&event, facts: facts)
            if !rateLimitFlag.isEmpty { event.eventType = rateLimitFlag }
            record(inPlace: &event, nowMilliseconds: nowMilliseconds)
            return event.id
        }
        // A tracking API call records what it was sent instead of the plain request.
        var first: EventID?
        for apiEvent in apiEvents {
            var completed = apiEvent.completed(byRequest: event)
            if first == nil { first = completed.id }
            enricher.enrich(&completed, facts: facts)
            record(inPlace: &completed, nowMilliseconds: nowMilliseconds)
        }
        return first ?? event.id
    }
}
