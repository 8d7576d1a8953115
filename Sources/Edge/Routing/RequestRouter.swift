import ACME
import HTTP1Parser
import NIOHTTP1
import RegexSet
import RequestTarget
import Static

/// Decides what a request head gets, without a channel: the checks of ``RequestAdmission``, ACME HTTP-01 answers,
/// the site by Host, its HTTPS redirect and rewrites, the route by path, the route's rate limit, body limit and
/// `Expect`. ``RequestHandler`` acts on the decision; tests call the router directly.
///
/// Routing decides on the admitted head: its target in normal form, `Host` from an absolute-form target.
struct RequestRouter {
    /// The configuration the request started with.
    let snapshot: RuntimeSnapshot
    /// The connection: its TLS, whether it is over capacity, its peer and its view of the sites.
    let connection: ConnectionInfo
    let challenges: HTTP01Responder
    let isHTTP2: Bool

    /// What the request gets.
    enum Decision {
        case refuse(Refusal)
        /// An ACME HTTP-01 key authorization (nil: no challenge of that token here: 404).
        case challengeAnswer(String?)
        /// A token this process did not start but another sharing the ACME storage may have: look on disk.
        case challengeLookup(token: Substring)
        case redirect(location: String, status: HTTPResponseStatus)
        case route(RoutedRequest)
    }

    /// A request a route takes.
    struct RoutedRequest {
        var route: Route
        /// Its place under the route's per-key `concurrency`, given back when the answer is complete.
        var lease: RouteLimiter.Lease?
        /// `RateLimit-Policy` and `RateLimit` values, for a limit with `headers: true`.
        var rateLimitHeaders: (policy: String, quota: String)?
        /// The client waits for `100 Continue` before sending its body.
        var sendsContinue = false
    }

    /// A decision and what the exchange keeps of the routing whatever it is.
    struct Outcome {
        var decision: Decision
        /// The site the Host named: its error pages, header rules and HSTS apply to any answer, refusals included.
        var site: Site?
        /// The route the path chose (its metrics, limits and header rules apply to its refusals too).
        var route: Route?
        /// The target as the client sent it, when admission or a rewrite changed it (the access log keeps it).
        var originalTarget: String?
        /// `rate_limited`, or `rate_limited_dry_run` for a limit that only reports.
        var rateLimitFlag = ""

        init(_ decision: Decision, site: Site? = nil, route: Route? = nil, originalTarget: String? = nil, rateLimitFlag: String = "") {
            self.decision = decision
            self.site = site
            self.route = route
            self.originalTarget = originalTarget
            self.rateLimitFlag = rateLimitFlag
        }
    }

    /// Routes `head` (its target and Host rewritten to what routing decided on: admission's normal form, a
    /// rewrite's target). `facts` fill rewrite templates from the admitted head.
    func route(
        _ head: inout RequestHead, headers: inout RequestHeaderSummary,
        facts: (RequestHead, RequestHeaderSummary) -> ExchangeFacts, scratch: @autoclosure () -> MatchScratch,
        nowMilliseconds: () -> Int64
    ) -> Outcome {
        if connection.overCapacity { return Outcome(.refuse(.overCapacity)) }
        let limits = snapshot.limits
        let sentTarget = head.uri
        if let refusal = RequestAdmission.admit(&head, headers: &headers, limits: limits, isHTTP2: isHTTP2) {
            return Outcome(.refuse(.inadmissible(status: refusal.status, reason: refusal.reason)))
        }
        var originalTarget = head.uri != sentTarget ? sentTarget : nil
        var (path, query) = Self.split(head.uri)
        if path.hasUTF8Prefix(HTTP01Responder.pathPrefix) {
            // An ACME HTTP-01 check (RFC 8555 §8.3), for any host: the CA asks before a site has a certificate.
            if let answer = challenges.answer(forPath: path) {
                return Outcome(.challengeAnswer(answer), originalTarget: originalTarget)
            }
            if challenges.ownsChallengePaths {
                return Outcome(.challengeLookup(token: Substring(String(path))), originalTarget: originalTarget)
            }
        }
        guard let site = connection.snapshots.site(forHost: headers.host) else {
            return Outcome(.refuse(.unknownHost), originalTarget: originalTarget)
        }
        if site.redirectHTTPS && !connection.isTLS, let httpsPort = snapshot.httpsPort, !path.hasUTF8Prefix(HTTP01Responder.pathPrefix) {
            guard let host = headers.host, let authority = Self.redirectAuthority(host: host, port: httpsPort) else {
                return Outcome(.refuse(.invalidRedirectHost), site: site, originalTarget: originalTarget)
            }
            return Outcome(
                .redirect(location: "https://\(authority)\(head.uri)", status: .permanentRedirect), site: site,
                originalTarget: originalTarget)
        }
        if let rewrites = site.rewrites {
            switch rewrites.apply(path: path, query: query, facts: facts(head, headers), scratch: scratch(), encodedSlashes: limits.encodedSlashes) {
            case .redirect(let location, let status)?:
                return Outcome(.redirect(location: location, status: status), site: site, originalTarget: originalTarget)
            case .refused(let reason)?:
                return Outcome(.refuse(.rewriteRefused(reason: reason)), site: site, originalTarget: originalTarget)
            case .rewrite(let target)?:
                // Routing, handlers and the upstream see the new target; the access log keeps the one sent.
                if originalTarget == nil { originalTarget = sentTarget }
                head.uri = target
                (path, query) = Self.split(head.uri)
            case nil:
                break
            }
        }
        guard let route = site.route(for: path) else {
            return Outcome(.refuse(.noRoute), site: site, originalTarget: originalTarget)
        }
        // Each outcome is built once where it is returned: an outcome changed on the way was copied and destroyed
        // with all its references (about 1% of a small request's CPU).
        func refused(_ refusal: Refusal, rateLimitFlag: String) -> Outcome {
            Outcome(.refuse(refusal), site: site, route: route, originalTarget: originalTarget, rateLimitFlag: rateLimitFlag)
        }
        var lease: RouteLimiter.Lease?
        var rateLimitHeaders: (policy: String, quota: String)?
        var rateLimitFlag = ""
        if let limiter = route.limiter {
            switch limiter.check(clientAddress: connection.clientAddress(head.headers, trusted: snapshot.trustedProxies), headers: head.headers, nowMilliseconds: nowMilliseconds()) {
            case .pass(let granted, let quota):
                lease = granted
                if let quota { rateLimitHeaders = (limiter.policyHeader, quota) }
            case .passDryRun(let granted):
                lease = granted
                rateLimitFlag = "rate_limited_dry_run"
            case .refuse(let retry, let status, let message):
                return refused(.rateLimited(status: status, message: message, headers: retry), rateLimitFlag: "rate_limited")
            }
        }
        if let length = headers.contentLength.flatMap(Int.init), length > route.maxBodySize {
            lease?.release()
            return refused(.bodyTooLarge(limit: route.maxBodySize), rateLimitFlag: rateLimitFlag)
        }
        var sendsContinue = false
        if let expectation = headers.expect, !isHTTP2 {
            // The client waits for a go-ahead before sending its body: it gets one now that the request fits.
            guard expectation.lowercased() == "100-continue" else {
                lease?.release()
                return refused(.unsupportedExpectation, rateLimitFlag: rateLimitFlag)
            }
            sendsContinue = head.version.minor >= 1
        }
        let routed = RoutedRequest(route: route, lease: lease, rateLimitHeaders: rateLimitHeaders, sendsContinue: sendsContinue)
        return Outcome(.route(routed), site: site, route: route, originalTarget: originalTarget, rateLimitFlag: rateLimitFlag)
    }

    /// The path and the query (without its `?`) of an origin-form target.
    static func split(_ target: String) -> (path: Substring, query: Substring?) {
        guard let mark = target.firstIndex(ofASCII: UInt8(ascii: "?")) else { return (target[...], nil) }
        return (target[..<mark], target[target.index(after: mark)...])
    }

    /// `host[:port]` for an HTTPS redirect, or nil when the Host value has characters no host name has.
    static func redirectAuthority(host: String, port: Int) -> String? {
        let bare = RouteTable.normalizeHost(host)
        guard !bare.isEmpty, bare.utf8.allSatisfy({ byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
                || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
        }) else { return nil }
        return port == 443 ? bare : "\(bare):\(port)"
    }
}
