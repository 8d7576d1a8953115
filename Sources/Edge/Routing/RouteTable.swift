import HeaderRules
import Links
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import RequestTarget
import Static
import Tracking

/// What answers a route, prepared once per configuration load.
public enum RouteHandler: Sendable {
    case staticFiles(StaticFileServer)
    case proxy(ProxyRoute)
    case respond(PreparedResponse)
    case redirect(RedirectConfiguration)
    /// The tracking API (`/tr/v1/...` and the legacy paths), mounted on every site by `tracking.api`.
    case trackingAPI(TrackingAPI)
    /// Short links of the request's host.
    case links(LinkRoute)
    /// The reports' pages, mounted at the route's path (`Gateway.insightsWeb`).
    case insights
    /// The edge's health for load balancers (`Gateway.healthVerdict`, status only).
    case health
    /// The older tracker's `/status`: the caller's address and the connections open (`compat: [tracker]`).
    case status
    /// The older tracker's `/ping`: `pong`.
    case ping(PreparedResponse)
    /// The older tracker's `/metrics` JSON (batching figures).
    case trackerMetrics
    /// Webhooks in (a `webhook` route, or Alcolytics' `/webhook/`).
    case webhook(WebhookReceiver)
    /// The Go tracker's `rpi` short-link API (`links.legacy_api`).
    case legacyLinks(LegacyShortLinkAPI)
}

/// A `links` route, ready to serve.
public struct LinkRoute: Sendable {
    public let service: LinkService
    /// Unknown slugs go to the next matching route instead of a 404.
    public let fallsThrough: Bool
}

/// A fixed response with its body already in a buffer.
public struct PreparedResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    init(_ configuration: RespondConfiguration) {
        status = configuration.status
        body = ByteBuffer(string: configuration.body)
        headers = HTTPHeaders(configuration.headers)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
    }

    /// A fixed text answer (the older tracker's `/ping`).
    init(text: String) {
        status = .ok
        body = ByteBuffer(string: text)
        headers = ["Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", "Content-Length": String(body.readableBytes)]
    }
}

/// One route of a site, ready to serve.
public final class Route: Sendable {
    public let pathPrefix: String
    public let handler: RouteHandler
    public let maxBodySize: Int
    public let accessLog: Bool
    /// Whether requests of this route become tracking events.
    public let track: Bool
    /// `site path` label used in logs and metrics.
    public let label: String
    let metrics: RouteMetrics
    /// The route's rate limiter, if it has one.
    let limiter: RouteLimiter?
    /// Header changes to the route's answers (its site's, then its own), nil without any.
    let responseHeaders: ResponseHeaderRules?
    /// Only `pathPrefix` itself, not the paths under it (a compatibility endpoint such as `/track`).
    let exactPath: Bool

    init(pathPrefix: String, handler: RouteHandler, maxBodySize: Int, accessLog: Bool, track: Bool = true,
         metrics: RouteMetrics, limiter: RouteLimiter? = nil, responseHeaders: ResponseHeaderRules? = nil,
         exactPath: Bool = false)
    {
        self.exactPath = exactPath
        self.limiter = limiter
        self.responseHeaders = responseHeaders
        self.pathPrefix = pathPrefix
        self.handler = handler
        self.maxBodySize = maxBodySize
        self.accessLog = accessLog
        self.track = track
        self.label = pathPrefix
        self.metrics = metrics
    }

    /// Whether a `POST` body is read whole before the handler answers (the tracking API; the reports' sign-in form).
    var collectsBody: Bool {
        switch handler {
        case .trackingAPI, .insights, .webhook, .legacyLinks: true
        default: false
        }
    }

    /// Whether the route covers `path` (a plain prefix match on the normalized path, or equality for an exact one).
    @inline(__always)
    func matches(_ path: Substring) -> Bool {
        exactPath ? path.utf8Equals(pathPrefix) : path.hasUTF8Prefix(pathPrefix)
    }
}

/// One site, ready to serve.
public final class Site: Sendable {
    /// First host name, or `default`.
    public let name: String
    /// Every host name of the site (referrals from them count as internal).
    public let hosts: [String]
    public let redirectHTTPS: Bool
    public let hsts: String?
    /// Routes, longest prefix first.
    public let routes: [Route]
    /// Header changes to the site's answers that no route makes (no route for the path, HTTPS redirects).
    let responseHeaders: ResponseHeaderRules?
    /// The site's pages for the errors Vantage answers itself.
    let errorPages: ErrorPages?
    /// `rewrites:` tried on the path before routing.
    let rewrites: RewriteRules?

    init(name: String, hosts: [String] = [], redirectHTTPS: Bool, hsts: String?, routes: [Route],
         responseHeaders: ResponseHeaderRules? = nil, errorPages: ErrorPages? = nil, rewrites: RewriteRules? = nil)
    {
        self.rewrites = rewrites
        self.name = name
        self.responseHeaders = responseHeaders
        self.errorPages = errorPages
        self.hosts = hosts.map { $0.hasPrefix("*.") ? String($0.dropFirst(2)) : $0 }
        self.redirectHTTPS = redirectHTTPS
        self.hsts = hsts
        // Longest prefix first; among equal prefixes the configured order (a falling-through links route first).
        self.routes = routes.enumerated().sorted {
            ($0.element.pathPrefix.utf8.count, -$0.offset) > ($1.element.pathPrefix.utf8.count, -$1.offset)
        }.map(\.element)
    }

    /// The route with the longest prefix covering `path`.
    func route(for path: Substring) -> Route? {
        for route in routes where route.matches(path) { return route }
        return nil
    }

    /// The next route covering `path` after `previous` (a `links` route falling through).
    func route(for path: Substring, after previous: Route) -> Route? {
        guard let position = routes.firstIndex(where: { $0 === previous }) else { return nil }
        for route in routes[(position + 1)...] where route.matches(path) { return route }
        return nil
    }
}

/// The immutable routing snapshot: host to site, then longest path prefix to route.
///
/// A reload builds a new table and swaps it in atomically; a request keeps the table it started with.
public final class RouteTable: Sendable {
    let exact: [String: Site]
    /// Wildcard suffixes (`example.com` for `*.example.com`), longest first.
    let wildcards: [(suffix: String, site: Site)]
    let defaultSite: Site?
    /// Every proxy route of the table, for the proxy service to activate.
    let proxyRoutes: [ProxyRoute]

    init(exact: [String: Site], wildcards: [(suffix: String, site: Site)], defaultSite: Site?, proxyRoutes: [ProxyRoute] = []) {
        self.exact = exact
        self.proxyRoutes = proxyRoutes
        self.wildcards = wildcards.sorted { $0.suffix.count > $1.suffix.count }
        self.defaultSite = defaultSite
    }

    /// Builds the table from configuration, creating one static file server per static route and one proxy route
    /// per proxy route. Rate limiters of `previous` (the table a reload replaces) whose route and limit are unchanged
    /// carry over with their keys.
    static func build(
        from configuration: GatewayConfiguration, cache: FileCache, threadPool: NIOThreadPool,
        proxy: ProxyService? = nil, metrics: RouteMetricsRegistry = RouteMetricsRegistry(loops: 1),
        trackingAPI: TrackingAPI? = nil, links: LinkService? = nil, previous: RouteTable? = nil
    ) throws -> RouteTable {
        var previousLimiters: [String: RouteLimiter] = [:]
        for limiter in previous?.limiters ?? [] { previousLimiters[limiter.label] = limiter }
        func limiter(_ settings: RateLimitConfiguration?, label: String) -> RouteLimiter? {
            guard let settings else { return nil }
            if let kept = previousLimiters[label], kept.configuration == settings { return kept }
            return RouteLimiter(configuration: settings, label: label)
        }
        var proxyRoutes: [ProxyRoute] = []
        var exact: [String: Site] = [:]
        var wildcards: [(String, Site)] = []
        var defaultSite: Site?
        for siteConfiguration in configuration.sites {
            let name = siteConfiguration.name
            // Two routes on one path (a `links` route falling through to the site) are told apart in metrics by
            // their kind: `/ (links)` and `/ (static)`.
            let sharedPrefixes = Set(Dictionary(grouping: siteConfiguration.routes, by: \.pathPrefix).filter { $0.value.count > 1 }.keys)
            let routes = try siteConfiguration.routes.map { route -> Route in
                let metricsLabel = sharedPrefixes.contains(route.pathPrefix) ? "\(route.pathPrefix) (\(route.handler.kind))" : route.pathPrefix
                let handler: RouteHandler
                switch route.handler {
                case .staticFiles(let settings):
                    handler = .staticFiles(try StaticFileServer(
                        configuration: settings, cache: cache, cacheSettings: configuration.staticCache,
                        threadPool: threadPool))
                case .proxy(let settings):
                    guard let proxy else { throw GatewayError(message: "proxy routes need the proxy service") }
                    let proxyRoute = proxy.makeRoute(settings, pathPrefix: route.pathPrefix)
                    proxyRoutes.append(proxyRoute)
                    handler = .proxy(proxyRoute)
                case .respond(let settings):
                    handler = .respond(PreparedResponse(settings))
                case .redirect(let settings):
                    handler = .redirect(settings)
                case .links(let settings):
                    guard let links else { throw GatewayError(message: "links routes need the links service") }
                    handler = .links(LinkRoute(service: links, fallsThrough: settings.fallsThrough))
                case .insights:
                    handler = .insights
                case .health:
                    handler = .health
                case .webhook(let settings):
                    handler = .webhook(WebhookReceiver(configuration: settings, pathPrefix: route.pathPrefix))
                }
                return Route(
                    pathPrefix: route.pathPrefix, handler: handler, maxBodySize: route.maxBodySize,
                    accessLog: route.accessLog, track: route.track, metrics: metrics.metrics(site: name, route: metricsLabel),
                    limiter: limiter(route.rateLimit, label: "\(name) \(route.pathPrefix)"),
                    responseHeaders: ResponseHeaderRules(siteConfiguration.responseHeaders.merged(with: route.responseHeaders)))
            }
            var apiRoutes: [Route] = []
            // Longer than a `/` route, so the APIs win over a site's catch-all; a route the site configures with the
            // same path keeps it.
            let siteHeaders = ResponseHeaderRules(siteConfiguration.responseHeaders)
            func mount(_ path: String, _ handler: RouteHandler, exact: Bool, track: Bool, maxBodySize: Int) {
                guard !routes.contains(where: { $0.pathPrefix == path }), !apiRoutes.contains(where: { $0.pathPrefix == path })
                else { return }
                apiRoutes.append(Route(
                    pathPrefix: path, handler: handler, maxBodySize: maxBodySize, accessLog: true, track: track,
                    metrics: metrics.metrics(site: name, route: path), responseHeaders: siteHeaders, exactPath: exact))
            }
            if let trackingAPI {
                func mountAPI(_ path: String, _ handler: RouteHandler, exact: Bool, track: Bool) {
                    mount(path, handler, exact: exact, track: track, maxBodySize: trackingAPI.configuration.maxBodyBytes)
                }
                if trackingAPI.configuration.enabled {
                    for prefix in TrackingAPIPaths.prefixes { mountAPI(prefix, .trackingAPI(trackingAPI), exact: false, track: true) }
                }
                for profile in siteConfiguration.compat ?? configuration.tracking.compat {
                    for endpoint in profile.mounts {
                        switch endpoint.answer {
                        case .trackingAPI: mountAPI(endpoint.path, .trackingAPI(trackingAPI), exact: endpoint.exact, track: true)
                        // Probes are not visits: no events for them.
                        case .health: mountAPI(endpoint.path, .health, exact: endpoint.exact, track: false)
                        case .ping: mountAPI(endpoint.path, .ping(PreparedResponse(text: "pong")), exact: endpoint.exact, track: false)
                        case .status: mountAPI(endpoint.path, .status, exact: endpoint.exact, track: false)
                        case .metrics: mountAPI(endpoint.path, .trackerMetrics, exact: endpoint.exact, track: false)
                        case .webhook(let layout):
                            var settings = WebhookConfiguration()
                            settings.layout = layout
                            mountAPI(endpoint.path, .webhook(WebhookReceiver(configuration: settings, pathPrefix: endpoint.path)),
                                     exact: endpoint.exact, track: true)
                        }
                    }
                }
            }
            // The older short-link API manages links: it needs the links service, not tracking.
            if let legacy = configuration.links?.legacyAPI, let links {
                let blocking: LinkAdminAPI.Blocking = { work in try await threadPool.runIfActive(work) }
                let api = LegacyShortLinkAPI(configuration: legacy, admin: LinkAdminAPI(links: links, blocking: blocking))
                for prefix in LegacyShortLinkAPI.prefixes {
                    mount(prefix, .legacyLinks(api), exact: false, track: true, maxBodySize: LegacyShortLinkAPI.maxBodyBytes)
                }
            }
            let site = Site(
                name: name, hosts: siteConfiguration.hosts, redirectHTTPS: siteConfiguration.redirectHTTPS, hsts: siteConfiguration.hsts,
                routes: routes + apiRoutes, responseHeaders: ResponseHeaderRules(siteConfiguration.responseHeaders),
                errorPages: siteConfiguration.errorPages, rewrites: siteConfiguration.rewrites)
            for host in siteConfiguration.hosts {
                if host.hasPrefix("*.") { wildcards.append((String(host.dropFirst(2)), site)) } else { exact[host] = site }
            }
            if siteConfiguration.isDefault { defaultSite = site }
        }
        return RouteTable(exact: exact, wildcards: wildcards, defaultSite: defaultSite, proxyRoutes: proxyRoutes)
    }

    /// Every site once.
    var allSites: [Site] {
        var seen = Set<ObjectIdentifier>()
        var sites = Array(exact.values) + wildcards.map(\.site)
        if let defaultSite { sites.append(defaultSite) }
        return sites.filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    /// Every route of every site.
    var allRoutes: [Route] { allSites.flatMap(\.routes) }

    /// Every route's rate limiter (for `/metrics`).
    var limiters: [RouteLimiter] { allRoutes.compactMap(\.limiter) }

    /// The site for a `Host` value (port and trailing dot ignored, case-insensitive).
    public func site(forHost rawHost: String?) -> Site? {
        guard let rawHost, !rawHost.isEmpty else { return defaultSite }
        let host = Self.normalizeHost(rawHost)
        if let site = exact[host] { return site }
        for (suffix, site) in wildcards where host.count > suffix.count + 1 && host.hasSuffix("." + suffix) {
            return site
        }
        return defaultSite
    }

    /// Lower-cases and strips the port and a trailing dot: `Example.COM.:443` becomes `example.com`.
    static func normalizeHost(_ raw: String) -> String {
        var utf8 = Substring(raw).utf8
        if utf8.first == UInt8(ascii: "[") {
            if let close = utf8.firstIndex(of: UInt8(ascii: "]")) { utf8 = utf8[...close] }
        } else if let colon = utf8.lastIndex(of: UInt8(ascii: ":")) {
            utf8 = utf8[..<colon]
        }
        if utf8.last == UInt8(ascii: ".") { utf8 = utf8.dropLast() }
        let host = Substring(utf8)
        if utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) {
            return host.lowercased()
        }
        return String(host)
    }
}
