import NIOCore
import NIOHTTP1

/// One `proxy` route, ready to serve: its upstreams (shared targets), weights and settings in the units the data
/// plane uses. Built by ``ProxyService/makeRoute(_:pathPrefix:)`` for every configuration load.
public final class ProxyRoute: Sendable {
    public let configuration: ProxyConfiguration
    /// The route's path prefix, for `strip_prefix` and `rewrite_prefix`.
    public let pathPrefix: String
    let targets: [UpstreamTarget]
    let weights: [Int]
    let poolSettings: PoolSettingsKey
    let connectTimeout: TimeAmount
    let responseHeaderTimeout: TimeAmount
    let readTimeout: TimeAmount
    let writeTimeout: TimeAmount
    let retryWindow: TimeAmount
    /// `request_headers`, nil without any.
    let requestHeaders: UpstreamHeaderRules?

    init(configuration: ProxyConfiguration, pathPrefix: String, targets: [UpstreamTarget]) {
        self.configuration = configuration
        requestHeaders = UpstreamHeaderRules(configuration.requestHeaders, routePrefix: pathPrefix)
        self.pathPrefix = pathPrefix
        self.targets = targets
        weights = configuration.servers.map(\.weight)
        poolSettings = PoolSettingsKey(
            maxIdle: configuration.pool.maxIdle, idleTimeout: TimeAmount(configuration.pool.idleTimeout),
            maxConnections: configuration.pool.maxConnections)
        connectTimeout = TimeAmount(configuration.timeouts.connect)
        responseHeaderTimeout = TimeAmount(configuration.timeouts.responseHeader)
        readTimeout = TimeAmount(configuration.timeouts.read)
        writeTimeout = TimeAmount(configuration.timeouts.write)
        retryWindow = TimeAmount(configuration.retries.timeout)
    }

    /// The route's upstreams and those in service (for `/health`).
    public var pool: (addresses: [String], healthy: Int) {
        (targets.map(\.address.description), targets.filter { $0.statistics.healthy }.count)
    }

    /// The request target sent upstream: the client's, with the route prefix stripped or replaced when configured.
    public func upstreamTarget(for uri: String) -> String {
        if configuration.stripPrefix || configuration.rewritePrefix != nil {
            guard uri.utf8.starts(with: pathPrefix.utf8) else { return uri }
            let rest = uri.utf8.dropFirst(pathPrefix.utf8.count)
            if let replacement = configuration.rewritePrefix {
                if replacement.hasSuffix("/") && rest.first == UInt8(ascii: "/") {
                    return replacement + String(Substring(rest.dropFirst()))
                }
                return replacement + String(Substring(rest))
            }
            let remainder = String(Substring(rest))
            return remainder.hasPrefix("/") ? remainder : "/" + remainder
        }
        return uri
    }

    /// The `Host` sent upstream.
    func hostValue(clientHost: String?, target: UpstreamTarget) -> String {
        switch configuration.host {
        case .pass: return clientHost ?? target.address.authority
        case .upstream: return target.address.authority
        case .fixed(let value): return value
        }
    }

    /// Seconds a client should wait before trying again when no upstream is available (for `Retry-After`).
    func retryAfterSeconds(now: UInt64) -> Int {
        var soonest = UInt64.max
        for target in targets {
            let remaining = target.cooldownRemaining(now: now)
            if remaining > 0 { soonest = min(soonest, remaining) }
        }
        if soonest == .max {
            // Out through active checks: the next check may bring one back.
            let interval = configuration.healthCheck?.interval ?? .seconds(1)
            return max(1, Int(interval.components.seconds))
        }
        return max(1, Int((soonest + 999_999_999) / 1_000_000_000))
    }
}
