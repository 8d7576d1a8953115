import Config
import HeaderRules
import NIOHTTP1
import Proxy
import RequestTarget
import Static
import Tracking

/// One site: the host names it answers for and its routes.
///
/// Keys: `hosts` (exact names, `*.example.com` wildcards, or `*`/omitted for the default site), `routes`,
/// `redirect_https`, `hsts`, `max_body_size`, `headers`, `errors`.
public struct SiteConfiguration: Sendable {
    /// Lower-cased host names and `*.suffix` wildcards.
    public var hosts: [String]
    /// Whether this site answers hosts no other site claims.
    public var isDefault: Bool
    /// Routes in file order; matching picks the longest path prefix.
    public var routes: [RouteConfiguration]
    /// Answer plain-HTTP requests with a 308 to the same URL on HTTPS.
    public var redirectHTTPS = false
    /// `Strict-Transport-Security` value sent on HTTPS answers, or nil.
    public var hsts: String?
    /// `headers:` changes to every answer of the site (its routes' rules come after these).
    public var responseHeaders = HeaderRules()
    /// `errors:` pages for the answers Vantage makes itself.
    public var errorPages: ErrorPages?
    /// `rewrites:` tried on the path before routing.
    var rewrites: RewriteRules?
    /// `compat:` the older systems whose endpoints this site answers; nil: `tracking.compat`.
    public var compat: [CompatProfile]?

    static let keys = ["hosts", "routes", "redirect_https", "hsts", "max_body_size", "headers", "errors", "rewrites", "compat"]

    /// The name events carry as their `site`: the first host, or `default`.
    public var name: String { hosts.first ?? "default" }

    init(from node: ConfigNode, limits: Limits) throws {
        var problems = ConfigProblems()
        let map = try node.mapping(keys: Self.keys, problems: &problems)
        let hostList = try map["hosts"]?.stringList().map { $0.lowercased() } ?? []
        isDefault = hostList.isEmpty || hostList.contains("*")
        hosts = hostList.filter { $0 != "*" }
        if let hostsNode = map["hosts"] {
            for (index, host) in hosts.enumerated() {
                let name = host.hasPrefix("*.") ? String(host.dropFirst(2)) : host
                let valid = !name.isEmpty && !name.contains("*")
                    && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == ":" }
                if !valid {
                    let item = (try? hostsNode.list())?[safe: index] ?? hostsNode
                    throw item.error("expected a host name such as example.com or *.example.com, found \"\(host)\"")
                }
            }
        }
        var siteBodyLimit = limits.maxBodySize
        if let value = map["max_body_size"] { siteBodyLimit = try value.byteSize() }
        if let value = map["redirect_https"] { redirectHTTPS = try problems.collect { try value.bool() } ?? false }
        if let value = map["hsts"] { hsts = try problems.collect { try Self.readHSTS(value) } ?? nil }
        if let value = map["headers"] {
            responseHeaders = try problems.collect { try HeaderRules(from: value, direction: .response) } ?? HeaderRules()
        }
        if let value = map["errors"] { errorPages = try problems.collect { try ErrorPages(from: value) } ?? nil }
        if let value = map["rewrites"] { rewrites = try problems.collect { try RewriteRules(from: value) } ?? nil }
        if let value = map["compat"] { compat = try problems.collect { try CompatProfile.list(from: value) } ?? nil }
        let routesNode = try map.required("routes", expected: "a list of routes")
        let routeNodes = try routesNode.list()
        if routeNodes.isEmpty { throw routesNode.error("expected at least one route") }
        // Every route is read, so a site's broken routes are all reported at once.
        routes = try routeNodes.compactMap { node in
            try problems.collect { try RouteConfiguration(from: node, defaultBodyLimit: siteBodyLimit) }
        }
        try problems.throwIfAny()
        // One route per prefix, except after a `links` route that falls through: unknown slugs go on to the route
        // listed after it with the same prefix (links on a site's main domain).
        var seen: [String: Bool] = [:]  // prefix: its route falls through
        for (index, route) in routes.enumerated() {
            if let fallsThrough = seen[route.pathPrefix], !fallsThrough {
                throw routeNodes[index].error("another route of this site already has path \"\(route.pathPrefix)\"")
            }
            if case .links(let links) = route.handler { seen[route.pathPrefix] = links.fallsThrough } else { seen[route.pathPrefix] = false }
        }
    }

    /// `hsts: true` (one year), a duration such as `180d`, or a mapping with `max_age`, `include_subdomains`, `preload`.
    static func readHSTS(_ node: ConfigNode) throws -> String? {
        var maxAge: Duration = .seconds(31_536_000)
        var includeSubdomains = false
        var preload = false
        if let text = try? node.string() {
            if let flag = try? node.bool() {
                if !flag { return nil }
            } else {
                _ = text
                maxAge = try node.duration()
            }
        } else {
            let map = try node.mapping(keys: ["max_age", "include_subdomains", "preload"])
            if let value = map["max_age"] { maxAge = try value.duration() }
            if let value = map["include_subdomains"] { includeSubdomains = try value.bool() }
            if let value = map["preload"] {
                preload = try value.bool()
                // hstspreload.org refuses a site whose header lacks these; say so now rather than after a rejection.
                if preload && (maxAge < .seconds(31_536_000) || !includeSubdomains) {
                    throw value.error("preload needs max_age of at least 365d and include_subdomains: true (the preload list's rules)")
                }
            }
        }
        var header = "max-age=\(maxAge.components.seconds)"
        if includeSubdomains { header += "; includeSubDomains" }
        if preload { header += "; preload" }
        return header
    }
}

/// One route: a path prefix and what answers it.
///
/// Keys: `path` (prefix, default `/`), exactly one of `static`, `proxy`, `respond`, `redirect`, plus `max_body_size` and
/// `access_log` (false silences the access log for the route, e.g. health checks).
public struct RouteConfiguration: Sendable {
    /// What answers the route.
    public enum Handler: Sendable {
        case staticFiles(StaticConfiguration)
        case proxy(ProxyConfiguration)
        case respond(RespondConfiguration)
        case redirect(RedirectConfiguration)
        /// Short links: `links: true` or `links: { fallthrough: true }`.
        case links(LinksRouteConfiguration)
        /// The reports' pages (dashboard, live view, sign-in, APIs, share links): `insights: {}`.
        case insights
        /// The edge's health for load balancers: `health: true` (`{"status":"ok"}`; 503 when nothing can be served).
        case health
        /// Webhooks in: every call an event, signed sources checked (`webhook: true` or its settings).
        case webhook(WebhookConfiguration)

        /// The configuration key that chose it (`static`, `proxy`, ...).
        public var kind: String {
            switch self {
            case .staticFiles: "static"
            case .proxy: "proxy"
            case .respond: "respond"
            case .redirect: "redirect"
            case .links: "links"
            case .insights: "insights"
            case .health: "health"
            case .webhook: "webhook"
            }
        }
    }

    /// The path prefix; `/api/` matches `/api/` and below, `/api` also matches `/api` itself and `/api-v2`.
    public var pathPrefix: String
    public var handler: Handler
    /// Largest request body for this route.
    public var maxBodySize: Int
    /// Whether requests of this route are written to the access log.
    public var accessLog = true
    /// Whether requests of this route become tracking events.
    public var track = true
    /// `rate_limit:` for the route.
    public var rateLimit: RateLimitConfiguration?
    /// `headers:` changes to the route's answers, after its site's.
    public var responseHeaders = HeaderRules()

    static let handlerKeys = ["static", "proxy", "respond", "redirect", "links", "insights", "health", "webhook"]
    static let keys = ["path", "max_body_size", "access_log", "track", "rate_limit", "headers"] + handlerKeys

    init(from node: ConfigNode, defaultBodyLimit: Int) throws {
        let map = try node.mapping(keys: Self.keys)
        pathPrefix = "/"
        if let value = map["path"] {
            pathPrefix = try value.nonEmptyString()
            if !pathPrefix.hasPrefix("/") { throw value.error("expected a path starting with /, found \"\(pathPrefix)\"") }
            // Requests are routed on their normal form, so a prefix in any other form would never match.
            switch NormalizedPath.normalize(Substring(pathPrefix), encodedSlashes: .keep) {
            case .success(nil):
                break
            case .success(let normal?):
                throw value.error("requests are matched in normal form, so this path would never match: write \"\(normal)\"")
            case .failure(let rejection):
                throw value.error("\(rejection.rawValue): \"\(pathPrefix)\"")
            }
        }
        maxBodySize = defaultBodyLimit
        if let value = map["max_body_size"] { maxBodySize = try value.byteSize() }
        if let value = map["access_log"] { accessLog = try value.bool() }
        if let value = map["track"] { track = try value.bool() }
        if let value = map["rate_limit"] { rateLimit = try RateLimitConfiguration(from: value) }
        if let value = map["headers"] { responseHeaders = try HeaderRules(from: value, direction: .response) }
        let present = Self.handlerKeys.filter { map.has($0) }
        guard present.count == 1 else {
            if present.isEmpty {
                throw node.error("expected one handler: \(Self.handlerKeys.joined(separator: ", "))")
            }
            throw node.error("expected one handler, found \(present.joined(separator: " and "))")
        }
        switch present[0] {
        case "static": handler = .staticFiles(try StaticConfiguration(from: map["static"]!))
        case "proxy": handler = .proxy(try ProxyConfiguration(from: map["proxy"]!))
        case "respond": handler = .respond(try RespondConfiguration(from: map["respond"]!))
        case "links": handler = .links(try LinksRouteConfiguration(from: map["links"]!))
        case "webhook":
            handler = .webhook(try WebhookConfiguration(from: map["webhook"]!))
            // The body is read whole (a signature covers all of it): 1 MB unless the route says otherwise.
            if map["max_body_size"] == nil { maxBodySize = min(maxBodySize, 1 << 20) }
        case "health", "insights":
            // Kinds without settings: `true` or `{}`.
            let node = map[present[0]]!
            if let enabled = try? node.bool() {
                guard enabled else { throw node.error("expected true or {}") }
            } else {
                _ = try node.mapping(keys: [])
            }
            handler = present[0] == "health" ? .health : .insights
            // A load balancer's checks and the team reading its reports are not the site's traffic.
            if map["track"] == nil { track = false }
        default: handler = .redirect(try RedirectConfiguration(from: map["redirect"]!))
        }
    }
}

/// A `links` route: the path after the prefix is a slug of the request's host. Unknown slugs answer 404, or with
/// `fallthrough: true` go to the next route that matches (so links can live on a site's main domain).
public struct LinksRouteConfiguration: Sendable {
    public var fallsThrough = false

    init(from node: ConfigNode) throws {
        if let enabled = try? node.bool() {
            guard enabled else { throw node.error("expected true or { fallthrough: true|false }") }
            return
        }
        let map = try node.mapping(keys: ["fallthrough"])
        if let value = map["fallthrough"] { fallsThrough = try value.bool() }
    }
}

/// A fixed answer: `respond: { status: 200, body: "ok", headers: {...}, content_type: text/plain }`, or just
/// `respond: "text"` for a 200 with that body.
public struct RespondConfiguration: Sendable {
    public var status: HTTPResponseStatus = .ok
    public var body = ""
    public var headers: [(String, String)] = []

    init(from node: ConfigNode) throws {
        if let text = try? node.string() {
            body = text
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            return
        }
        let map = try node.mapping(keys: ["status", "body", "headers", "content_type"])
        if let value = map["status"] { status = HTTPResponseStatus(statusCode: try value.int(in: 100...599)) }
        if let value = map["body"] { body = try value.string() }
        var contentType = "text/plain; charset=utf-8"
        if let value = map["content_type"] { contentType = try value.nonEmptyString() }
        headers = [("Content-Type", contentType)]
        if let value = map["headers"] {
            for (name, child) in try value.entries() {
                guard name.utf8.allSatisfy(isTokenByte) else { throw child.error("\"\(name)\" is not a valid header name") }
                let text = try child.string()
                if text.contains("\r") || text.contains("\n") { throw child.error("header values may not contain line breaks") }
                if name.lowercased() == "content-length" { throw child.error("Content-Length is computed from the body") }
                headers.removeAll { $0.0.lowercased() == name.lowercased() }
                headers.append((name, text))
            }
        }
    }
}

/// A fixed redirect: `redirect: { to: "https://example.com{uri}", status: 301 }` or `redirect: "https://..."`.
///
/// Placeholders (``Placeholder``): `{uri}` the request path and query, `{path}` the path alone, `{rest}` the path
/// after the route's prefix, `{query}`, `{host}` the request's host name, `{scheme}`, ...
public struct RedirectConfiguration: Sendable {
    public var target: String
    /// `target` parsed once.
    public var template: Template
    public var status: HTTPResponseStatus = .found

    init(from node: ConfigNode) throws {
        var targetNode = node
        if (try? node.string()) == nil {
            let map = try node.mapping(keys: ["to", "status"])
            targetNode = try map.required("to", expected: "the redirect target URL")
            if let value = map["status"] {
                let code = try value.int(in: 300...308)
                guard [301, 302, 303, 307, 308].contains(code) else {
                    throw value.error("expected 301, 302, 303, 307 or 308, found \(code)")
                }
                status = HTTPResponseStatus(statusCode: code)
            }
        }
        target = try targetNode.nonEmptyString()
        if target.contains("\r") || target.contains("\n") { throw targetNode.error("the target may not contain line breaks") }
        guard target.hasPrefix("https://") || target.hasPrefix("http://") || (target.hasPrefix("/") && !target.hasPrefix("//"))
            || ["{path}", "{uri}", "{scheme}://"].contains(where: target.hasPrefix)
        else {
            throw targetNode.error("expected an absolute http(s) URL or a path starting with a single /, found \"\(target)\"")
        }
        do {
            template = try Template(parsing: target)
        } catch {
            throw targetNode.error(error.description)
        }
    }
}

func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
