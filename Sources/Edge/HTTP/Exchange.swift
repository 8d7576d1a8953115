import Config
import Foundation
import Links
import HTTP1Parser
import NIOCore
import NIOHTTP1
import Proxy
import RequestTarget
import Static
import Tracking

/// The request being answered, from its head to its access-log line. A class so the many small updates along the way
/// mutate one object instead of copying a large struct (with a retain per field) in and out of an optional.
final class Exchange {
    /// The head as routed: its target in normal form (``RequestAdmission``).
    var head: RequestHead
    var headers: RequestHeaderSummary
    /// The target as the client sent it, when admission rewrote it (for the access log).
    var originalTarget: String?
    /// Refused before routing (a malformed, ambiguous or overlong request): its event is of kind `refused`.
    var refusedBeforeRouting = false
    /// The configuration the request started with, kept to its end.
    let snapshot: RuntimeSnapshot
    let startNanoseconds: UInt64
    var route: Route?
    /// The site the Host named, nil when none did. Kept whole (its name, hosts, HSTS and error pages are read from
    /// it) rather than copied field by field: each copy was a retain at the head and a release at the end.
    var site: Site?
    /// The answer is `text/html` (with a GET and a 2xx/304 status: a page view).
    var isHTML = false
    /// A visitor id this answer issued in a cookie.
    var issuedVisitorID: String?
    /// The request body, collected for handlers that read it (the tracking API).
    var collectedBody: ByteBuffer?
    /// Events a tracking API call produced (recorded instead of the plain request event).
    var apiEvents: [TrackingEvent] = []
    /// `rate_limited` or `rate_limited_dry_run` when the route's limiter refused (or would have refused) it.
    var rateLimitFlag = ""
    /// `RateLimit-Policy` and `RateLimit` values for an answer that passed a limit with `headers: true`.
    var rateLimitHeaders: (policy: String, quota: String)?
    /// The request's place under its route's per-key `concurrency`, given back when the response is complete or
    /// the client is gone.
    var lease: RouteLimiter.Lease?
    /// The short link this request clicked: the request's event becomes the click (one event, built once).
    var click: LinkClick?
    var bodyBytes = 0
    var bodyLimit: Int
    /// Where the request and the answer are, and whether the connection stays.
    var lifecycle: ExchangeLifecycle
    var status: HTTPResponseStatus = .ok
    var sentBytes = 0
    /// The site's, then the route's, `headers:` rules for the answer.
    var responseHeaders: ResponseHeaderRules?
    /// `intercept_errors`: the upstream's error answer is read and dropped, the site's page goes out at its end.
    var interceptedStatus: HTTPResponseStatus?
    /// The route chosen at the head, answered once the request (and any body) has arrived (its site is ``site``).
    var pending: Route?
    /// The upstream side of a proxied request.
    var proxy: ProxyExchange?
    var requestID: RequestID?
    /// The proxy was told to stop reading the upstream until the client catches up.
    var proxyResponsePaused = false
    /// A body still leaving after the exchange finished (a file sent with `sendfile`): the connection is not idle
    /// until it has.
    var bodyWritten: EventLoopFuture<Void>?

    init(head: RequestHead, headers: RequestHeaderSummary, snapshot: RuntimeSnapshot, startNanoseconds: UInt64,
         bodyLimit: Int, keepAlive: Bool, requestEnded: Bool = false)
    {
        self.head = head
        self.headers = headers
        self.snapshot = snapshot
        self.startNanoseconds = startNanoseconds
        self.bodyLimit = bodyLimit
        lifecycle = ExchangeLifecycle(keepsConnection: keepAlive, requestEnded: requestEnded)
    }

    func releaseLease() {
        lease?.release()
        lease = nil
    }

    /// A 101 went out: the exchange is over and the connection is a WebSocket now, holding no place under
    /// `concurrency` (it is a connection, not a request in flight).
    func switchedProtocols() {
        lifecycle.switchedProtocols()
        status = .switchingProtocols
        releaseLease()
    }

    /// A safety net: every path that ends an exchange releases explicitly, but an exchange dropped some other
    /// way must not hold its key's place forever.
    deinit { lease?.release() }
}

extension Exchange {
    /// The site's name for events, logs and cookies (`-` when no site took the request).
    var siteName: String { site?.name ?? "-" }
    /// The site's host names (referrals from them count as internal).
    var siteHosts: [String] { site?.hosts ?? [] }
    /// The site's `Strict-Transport-Security` value.
    var hsts: String? { site?.hsts }
    /// The site's `errors:` pages.
    var errorPages: ErrorPages? { site?.errorPages }

    /// A GET answered 2xx or 304 with `text/html` that is not a prefetch, prerender or preview.
    var isPageView: Bool {
        PageView.qualifies(method: head.method, status: Int(status.code), isHTML: isHTML, isPrefetch: headers.isPrefetch)
    }

    var eventKind: TrackingEvent.Kind {
        if refusedBeforeRouting { return .refused }
        return isPageView ? .pageview : .request
    }

    /// The protocol as logs and events name it: literals, so no string is made per request.
    var protocolName: String {
        switch (head.version.major, head.version.minor) {
        case (2, _): "HTTP/2.0"
        case (1, 1): "HTTP/1.1"
        default: "HTTP/1.0"
        }
    }
}

extension RequestHeaderSummary {
    /// The client's own `X-Request-Id` when it is acceptable (answers, the upstream and the event then carry it).
    var acceptableRequestID: RequestID? {
        guard let requestID = self.requestID, HeaderRewriter.acceptableRequestID(requestID) else { return nil }
        return RequestID(requestID)
    }
}

extension ConnectionInfo {
    /// The client an exchange serves (see ``clientAddress(_:trusted:)``), by the configuration it started with.
    func clientAddress(of exchange: Exchange) -> String {
        clientAddress(exchange.head.headers, trusted: exchange.snapshot.trustedProxies)
    }

    /// The client address: the peer, or the right-most untrusted `X-Forwarded-For` hop when the peer is a trusted
    /// proxy (so a client cannot spoof its address by sending the header itself).
    func clientAddress(_ headers: RequestFields, trusted: [CIDR]) -> String {
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(remoteIP) }),
            headers.contains(name: "x-forwarded-for")
        else { return remoteAddress }
        let hops = headers[canonicalForm: "x-forwarded-for"].map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let bytes = parseIPAddress(hop) else { return remoteAddress }
            if !trusted.contains(where: { $0.contains(bytes) }) { return hop }
        }
        return hops.first ?? remoteAddress
    }
}
