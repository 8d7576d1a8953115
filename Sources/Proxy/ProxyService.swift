import FlushCoalescing
import Foundation
import HTTP1Parser
import Logging
import NIOCore
import NIOHTTP1
import RequestTarget
import Synchronization

/// The reverse proxy as the edge uses it: upstream targets that survive reloads, per-loop connection pools,
/// active health checks, metrics and the health report.
///
/// ```swift
/// let proxy = ProxyService(loops: loops, logger: logger)
/// let route = try proxy.makeRoute(configuration, pathPrefix: "/api/")   // while building a snapshot
/// proxy.activate([route])                                               // once the snapshot is live
/// let exchange = proxy.makeExchange(route: route, on: loop, head: head, client: client, requestID: id, downstream: handler)
/// exchange.start()
/// ```
public final class ProxyService: Sendable {
    /// What makes two routes' upstreams the same target: the address and, over TLS, the same TLS settings (a
    /// pooled connection made with one client certificate must not serve a route configured with another).
    struct TargetKey: Hashable {
        var address: UpstreamAddress
        var tls: UpstreamTLS?

        init(_ target: UpstreamTarget) {
            address = target.address
            tls = target.tls
        }

        init(_ server: ProxyConfiguration.Server) {
            address = server.address
            tls = server.tls
        }
    }

    private struct State {
        var targets: [TargetKey: UpstreamTarget] = [:]
        var checkers: [TargetKey: HealthChecker] = [:]
    }

    private let loops: [ObjectIdentifier: ProxyLoop]
    private let loopList: [any EventLoop]
    private let state = Mutex(State())
    private let logger: Logger

    public init(loops: [any EventLoop], logger: Logger) {
        var map: [ObjectIdentifier: ProxyLoop] = [:]
        for loop in loops {
            map[ObjectIdentifier(loop)] = ProxyLoop(
                eventLoop: loop, flushCoalescer: FlushCoalescer(eventLoop: loop, logger: logger), logger: logger)
        }
        self.loops = map
        loopList = loops
        self.logger = logger
    }

    /// The loop's ``FlushCoalescer``, for the edge's answers to share with the upstream requests: a tick's writes
    /// leave together.
    public func flushCoalescer(for loop: any EventLoop) -> FlushCoalescer {
        loops[ObjectIdentifier(loop)]!.flushCoalescer
    }

    /// Prepares a route: its targets are the running ones for addresses already in use (keeping their health,
    /// counters and pooled connections), new ones otherwise.
    public func makeRoute(_ configuration: ProxyConfiguration, pathPrefix: String) -> ProxyRoute {
        let targets = state.withLock { state in
            configuration.servers.map { server in
                let key = TargetKey(server)
                if let existing = state.targets[key] { return existing }
                let target = UpstreamTarget(address: server.address, tls: server.tls)
                state.targets[key] = target
                return target
            }
        }
        return ProxyRoute(configuration: configuration, pathPrefix: pathPrefix, targets: targets)
    }

    /// Makes `routes` the live set: forgets targets no route names any more and runs the health checks the routes
    /// ask for (the first route naming an upstream decides its check).
    public func activate(_ routes: [ProxyRoute]) {
        var wanted: [TargetKey: (UpstreamTarget, ProxyConfiguration.HealthCheckSettings?)] = [:]
        for route in routes {
            for target in route.targets {
                let key = TargetKey(target)
                wanted[key] = (target, wanted[key]?.1 ?? route.configuration.healthCheck)
            }
        }
        let (stopped, started) = state.withLock { state -> ([HealthChecker], [HealthChecker]) in
            state.targets = state.targets.filter { wanted[$0.key] != nil }
            var stopped: [HealthChecker] = []
            var started: [HealthChecker] = []
            for (key, checker) in state.checkers where wanted[key]?.1 != checker.settings {
                stopped.append(checker)
                state.checkers.removeValue(forKey: key)
            }
            for (key, (target, settings)) in wanted {
                guard let settings, state.checkers[key] == nil else { continue }
                let loop = loopList[Int(UInt(bitPattern: key.hashValue) % UInt(loopList.count))]
                let checker = HealthChecker(target: target, settings: settings, eventLoop: loop, logger: logger)
                state.checkers[key] = checker
                started.append(checker)
            }
            return (stopped, started)
        }
        for checker in stopped {
            checker.stop()
            // Without a check the upstream is judged by requests alone again.
            if wanted[TargetKey(checker.target)]?.1 == nil { _ = checker.target.setChecked(healthy: true) }
        }
        for checker in started { checker.start() }
    }

    /// Starts a proxied exchange on the client connection's loop. `host` and `chunked` come from the edge's one
    /// pass over the request headers (the Host value, and a body of unannounced length), so the proxy does not
    /// search the headers for them again.
    public func makeExchange(
        route: ProxyRoute, on eventLoop: any EventLoop, head: RequestHead, host: String?, chunked: Bool,
        client: ClientInfo, requestID: RequestID, downstream: any ProxyDownstream
    ) -> ProxyExchange {
        ProxyExchange(
            route: route, loop: loops[ObjectIdentifier(eventLoop)]!, head: head, host: host, chunked: chunked,
            client: client, requestID: requestID, downstream: downstream)
    }

    /// Once a second on every loop: close connections idle for too long.
    public func housekeeping(on eventLoop: any EventLoop) {
        loops[ObjectIdentifier(eventLoop)]?.sweepIdle()
    }

    /// Stops health checks and closes idle connections (shutdown).
    public func shutdown() {
        let checkers = state.withLock { state in
            defer { state.checkers.removeAll() }
            return Array(state.checkers.values)
        }
        for checker in checkers { checker.stop() }
        for loop in loops.values {
            loop.eventLoop.execute { loop.closeIdle() }
        }
    }

    /// Upstreams by address with their statistics, sorted by address.
    /// The same `https://` address reached with two routes' different TLS settings is two targets; the second is
    /// labelled `address#2` so metric series stay distinct.
    public var upstreams: [(address: String, statistics: UpstreamTarget.Statistics)] {
        let sorted = state.withLock { state in
            state.targets.values.map { ($0.address.description, $0.serial, $0.statistics) }
        }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var seen: [String: Int] = [:]
        return sorted.map { address, _, statistics in
            let count = seen[address, default: 0] + 1
            seen[address] = count
            return (count == 1 ? address : "\(address)#\(count)", statistics)
        }
    }

    /// Appends the upstream metrics in Prometheus text format.
    public func renderMetrics(into text: inout String) {
        let upstreams = self.upstreams
        guard !upstreams.isEmpty else { return }
        func family(_ name: String, _ type: String, _ help: String, _ value: (UpstreamTarget.Statistics) -> String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (address, statistics) in upstreams {
                text += "\(name){upstream=\"\(address)\"} \(value(statistics))\n"
            }
        }
        family("vantage_upstream_healthy", "gauge", "1 while the upstream takes requests.") { $0.healthy ? "1" : "0" }
        family("vantage_upstream_requests_total", "counter", "Attempts sent to the upstream.") { "\($0.requests)" }
        family("vantage_upstream_active_requests", "gauge", "Requests in flight.") { "\($0.activeRequests)" }
        family("vantage_upstream_open_connections", "gauge", "Connections open, idle or busy.") { "\($0.openConnections)" }
        text += "# HELP vantage_upstream_connections_total Connections used per request: new or reused from the pool.\n"
        text += "# TYPE vantage_upstream_connections_total counter\n"
        for (address, statistics) in upstreams {
            text += "vantage_upstream_connections_total{upstream=\"\(address)\",kind=\"new\"} \(statistics.newConnections)\n"
            text += "vantage_upstream_connections_total{upstream=\"\(address)\",kind=\"reused\"} \(statistics.reusedConnections)\n"
        }
        family("vantage_upstream_connection_reuse_ratio", "gauge", "Reused / all connections taken for requests.") {
            String(format: "%.4f", $0.reuseRate)
        }
        text += "# HELP vantage_upstream_failures_total Failed attempts by kind.\n# TYPE vantage_upstream_failures_total counter\n"
        for (address, statistics) in upstreams {
            text += "vantage_upstream_failures_total{upstream=\"\(address)\",kind=\"connect\"} \(statistics.connectFailures)\n"
            text += "vantage_upstream_failures_total{upstream=\"\(address)\",kind=\"reset\"} \(statistics.resets)\n"
            text += "vantage_upstream_failures_total{upstream=\"\(address)\",kind=\"timeout\"} \(statistics.timeouts)\n"
            text += "vantage_upstream_failures_total{upstream=\"\(address)\",kind=\"health_check\"} \(statistics.healthCheckFailures)\n"
            text += "vantage_upstream_failures_total{upstream=\"\(address)\",kind=\"pool_full\"} \(statistics.poolRejections)\n"
        }
        family("vantage_upstream_retries_total", "counter", "Attempts that were retried after failing here.") { "\($0.retries)" }
    }
}
