import ACME
import Foundation
import Insights
import Links
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Prometheus
import Proxy
import Static
import Synchronization
import Tracking

/// The running gateway: event loops, listeners, certificates, the route snapshot, and reload and shutdown.
///
/// ```swift
/// let gateway = try Gateway(configuration: configuration, logger: logger, registry: registry)
/// try gateway.start()
/// // ... SIGHUP:
/// try gateway.reload()
/// // ... SIGTERM:
/// await gateway.shutdown()
/// ```
public final class Gateway: Sendable {
    enum ListenerKind: String, Sendable {
        case http, https, admin
    }

    struct ListenerKey: Hashable, Sendable {
        var kind: ListenerKind
        var address: ListenAddress
    }

    struct State: Sendable {
        var configuration: GatewayConfiguration
        var listeners: [ListenerKey: any Channel] = [:]
        /// One quiescing helper per listener (a helper follows a single server channel).
        var quiescers: [ListenerKey: ServerQuiescingHelper] = [:]
        var reloadedAt = Date()
        var housekeeping: [RepeatedTask] = []
        /// Why the last reload was refused, until one succeeds (for `/health`).
        var lastReloadError: String?
        /// The configured certificates' names and expiry (for `/health`).
        var staticCertificates: [HealthVerdict.Certificate] = []
    }

    private let group: MultiThreadedEventLoopGroup
    let threadPool: NIOThreadPool
    private let cache: FileCache
    /// Certificates by SNI name: the config's files and what ACME obtains.
    public let certificates: CertificateStore
    private let automaticCertificates: AutomaticCertificates
    private let accessLog: AccessLogWriter?
    private let core: GatewayCore
    private let registry: PrometheusCollectorRegistry?
    private let routeMetrics: RouteMetricsRegistry
    private let proxy: ProxyService
    /// Events: nil when `tracking.enabled` is false.
    public let tracking: TrackingPipeline?
    /// Short links: nil unless `links:` or a `links` route is configured.
    public let links: LinkService?
    private let logger: Logger
    private let state: Mutex<State>
    private let startedAt = Date()
    /// Seconds since the gateway started.
    var uptimeSeconds: Double { Date().timeIntervalSince(startedAt) }

    /// Prepares everything that does not listen yet: loops, certificates, routes. Fails on anything a config
    /// validation could not catch (a key that does not match its certificate, say).
    public init(configuration: GatewayConfiguration, logger: Logger, registry: PrometheusCollectorRegistry?) throws {
        self.logger = logger
        self.registry = registry
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        threadPool = NIOThreadPool(numberOfThreads: max(2, System.coreCount))
        threadPool.start()
        cache = FileCache(maxBytes: configuration.staticCache.maxBytes, maxEntries: configuration.staticCache.maxEntries)
        certificates = CertificateStore(minimumVersion: configuration.tls.minimumVersion == "1.3" ? .tlsv13 : .tlsv12)
        let staticKeys = try Self.loadCertificates(configuration, logger: logger)
        try certificates.replaceStatic(with: staticKeys)
        automaticCertificates = AutomaticCertificates(certificates: certificates, logger: logger)
        do {
            try automaticCertificates.configure(configuration)
        } catch {
            throw GatewayError(message: "tls.acme: \(error)")
        }
        accessLog = try AccessLogWriter(output: configuration.accessLog.output, format: configuration.accessLog.format, logger: logger)
        routeMetrics = RouteMetricsRegistry(loops: configuration.threads)
        proxy = ProxyService(loops: Array(group.makeIterator()), logger: logger)
        do {
            tracking = configuration.tracking.enabled
                ? try TrackingPipeline(
                    configuration: configuration.tracking, loops: Array(group.makeIterator()), blockingPool: threadPool,
                    logger: logger)
                : nil
        } catch {
            throw GatewayError(message: "tracking: \(error)")
        }
        do {
            let pool = threadPool
            links = try configuration.links.map {
                try LinkService(configuration: $0, clickHouse: configuration.tracking.clickHouse, pool: pool, logger: logger)
            }
        } catch {
            throw GatewayError(message: "links: \(error)")
        }
        let snapshot = try Self.makeSnapshot(
            configuration, cache: cache, threadPool: threadPool, proxy: proxy, metrics: routeMetrics,
            trackingAPI: tracking?.api, links: links)
        core = GatewayCore(snapshot: snapshot, loops: Array(group.makeIterator()), accessLog: accessLog,
                           threadPool: threadPool, routeMetrics: routeMetrics, proxy: proxy, tracking: tracking,
                           acmeChallenges: automaticCertificates.responder, logger: logger)
        state = Mutex(State(configuration: configuration, staticCertificates: Self.expiries(of: staticKeys)))
        shareLinks = ShareLinks(path: configuration.tracking.spool.directory + "/shares")
        reports = ReportCache(logger: logger)
        adminSessions = AdminSessions(logger: logger)
        let pool = threadPool
        liveFeed = LiveFeed(spool: configuration.tracking.spool.directory, logger: logger) { reader, sink in
            // Read on the blocking pool; a failed read (the folder gone) is tried again at the next refresh.
            (try? await pool.runIfActive {
                var advanced = reader
                try advanced.readNew(sink)
                return advanced
            }) ?? reader
        }
        core.insightsWeb.attach(self)
        core.health.attach(self)
    }

    /// Swaps in the local authority's certificate when it issued a new one (blocking: on the thread pool).
    func renewInternalCertificate() {
        let configuration = state.withLock { $0.configuration }
        guard configuration.tls.internalAuthority != nil else { return }
        do {
            let keys = try Self.loadCertificates(configuration)
            let expiries = Self.expiries(of: keys)
            guard expiries != state.withLock({ $0.staticCertificates }) else { return }
            try certificates.replaceStatic(with: keys)
            state.withLock { $0.staticCertificates = expiries }
            logger.notice("tls internal: the local authority issued a new certificate")
        } catch {
            logger.error("tls internal: the certificate could not be issued again: \(error)")
        }
    }

    /// Names and expiry of configured certificates (the leaf of each chain).
    static func expiries(of keys: [CertifiedKey]) -> [HealthVerdict.Certificate] {
        keys.compactMap { key in
            guard let leaf = key.chain.first else { return nil }
            return HealthVerdict.Certificate(
                name: key.names.first ?? "a configured certificate", notAfter: Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter)))
        }
    }

    /// The configured certificates, then the local authority's for the sites' names (`tls.internal`; issued when
    /// `issuing`, else only the files already there are read, for `vantage validate`).
    static func loadCertificates(_ configuration: GatewayConfiguration, issuing: Bool = true, logger: Logger? = nil) throws -> [CertifiedKey] {
        let tls = configuration.tls
        var keys = try tls.certificates.map { files in
            do {
                return try CertifiedKey.load(certificatePath: files.certificatePath, keyPath: files.keyPath, names: files.hosts)
            } catch {
                throw GatewayError(message: "cannot load certificate \(files.certificatePath) with key \(files.keyPath): \(error)")
            }
        }
        if let folder = tls.internalAuthority, issuing {
            do {
                let authority = try LocalAuthority.open(folder: folder)
                let names = configuration.sites.flatMap(\.hosts)
                let files = try authority.certificate(for: names)
                keys.append(try CertifiedKey.load(certificatePath: files.certificatePath, keyPath: files.keyPath))
                logger?.notice("tls internal: certificates from the local authority \(authority.rootPath); trust it once: sudo cp \(authority.rootPath) /usr/local/share/ca-certificates/vantage-local.crt && sudo update-ca-certificates")
            } catch {
                throw GatewayError(message: "tls.internal: the local authority in \(folder) cannot issue a certificate: \(error)")
            }
        }
        return keys
    }

    static func makeSnapshot(
        _ configuration: GatewayConfiguration, cache: FileCache, threadPool: NIOThreadPool, proxy: ProxyService,
        metrics: RouteMetricsRegistry, trackingAPI: TrackingAPI? = nil, links: LinkService? = nil,
        previous: RouteTable? = nil
    ) throws -> RuntimeSnapshot {
        let table = try RouteTable.build(
            from: configuration, cache: cache, threadPool: threadPool, proxy: proxy, metrics: metrics,
            trackingAPI: trackingAPI, links: links, previous: previous)
        return RuntimeSnapshot(
            table: table, limits: configuration.limits, trustedProxies: configuration.trustedProxies,
            httpsPort: configuration.httpsListeners.first?.port)
    }

    // MARK: - Listening

    /// Binds every configured listener and starts the per-loop housekeeping. Blocking: call it off the event loops.
    public func start() throws {
        let proxy = self.proxy
        var tasks = group.makeIterator().map { loop in
            let context = core.loopContext(for: loop)
            return loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                context.refreshClock()
                context.accessLog?.flush()
                proxy.housekeeping(on: loop)
            }
        }
        let shared = core
        let reclaimer = MemoryReclaimer(openConnections: { shared.openConnections.load(ordering: .relaxed) }, logger: logger)
        tasks.append(reclaimer.start(on: group.next(), pool: threadPool))
        // `tls.internal`: the local authority's certificate is issued again well before it expires, also in a
        // process that runs for months without a reload.
        let pool = threadPool
        let gateway = WeakGateway(self)
        tasks.append(group.next().scheduleRepeatedTask(initialDelay: .hours(6), delay: .hours(6)) { _ in
            pool.submit { _ in gateway.value?.renewInternalCertificate() }
        })
        proxy.activate(core.snapshot.table.proxyRoutes)
        tracking?.start()
        links?.start(on: group.next())
        state.withLock { $0.housekeeping = tasks }
        let configuration = state.withLock { $0.configuration }
        try bindListeners(for: configuration)
        publishHTTPSPort()
        automaticCertificates.start()
    }

    /// When the HTTPS listener asked for port 0, redirects must name the port the kernel picked.
    private func publishHTTPSPort() {
        let bound = state.withLock { state in
            state.listeners.first { $0.key.kind == .https }?.value.localAddress?.port
        }
        let current = core.snapshot
        guard let bound, current.httpsPort != bound else { return }
        core.replaceSnapshot(RuntimeSnapshot(
            table: current.table, limits: current.limits, trustedProxies: current.trustedProxies, httpsPort: bound))
    }

    /// Addresses actually bound (with the real port when 0 was asked for), as `kind://host:port`.
    public var boundAddresses: [String] {
        state.withLock { state in
            state.listeners.compactMap { key, channel in
                guard let address = channel.localAddress, let port = address.port else { return nil }
                let host = address.ipAddress ?? key.address.host
                return "\(key.kind.rawValue)://\(host.contains(":") ? "[\(host)]" : host):\(port)"
            }.sorted()
        }
    }

    private func wantedListeners(_ configuration: GatewayConfiguration) -> [ListenerKey] {
        var keys = configuration.httpListeners.map { ListenerKey(kind: .http, address: $0) }
        keys += configuration.httpsListeners.map { ListenerKey(kind: .https, address: $0) }
        if let admin = configuration.admin.listen { keys.append(ListenerKey(kind: .admin, address: admin)) }
        return keys
    }

    /// Binds every wanted listener not bound yet, then announces them: all or none, so `listening on` lines mean
    /// the process is ready (a taken admin port used to end a process that had already announced its HTTP
    /// listener). On a failure the listeners bound by this call are closed again and the error names the one that
    /// failed.
    private func bindListeners(for configuration: GatewayConfiguration) throws {
        let wanted = wantedListeners(configuration)
        let existing = state.withLock { $0.listeners }
        var bound: [(key: ListenerKey, channel: any Channel, quiesce: ServerQuiescingHelper)] = []
        for key in wanted where existing[key] == nil {
            let quiesce = ServerQuiescingHelper(group: group)
            do {
                let channel = try bootstrap(for: key.kind, quiesce: quiesce).bind(to: try key.address.socketAddress()).wait()
                bound.append((key, channel, quiesce))
            } catch {
                for listener in bound { try? listener.channel.close().wait() }
                throw GatewayError(listening: key.address.description, kind: key.kind.rawValue, port: key.address.port, error)
            }
        }
        for (key, channel, quiesce) in bound {
            state.withLock {
                $0.listeners[key] = channel
                $0.quiescers[key] = quiesce
            }
            if let port = channel.localAddress?.port {
                let host = key.address.host.contains(":") ? "[\(key.address.host)]" : key.address.host
                let scheme = key.kind == .https ? "https" : (key.kind == .admin ? "admin" : "http")
                logger.info("listening on \(scheme)://\(host):\(port)")
            }
        }
        let stale = state.withLock { state -> [(ListenerKey, any Channel)] in
            let gone = state.listeners.filter { !wanted.contains($0.key) }
            for key in gone.keys {
                state.listeners.removeValue(forKey: key)
                state.quiescers.removeValue(forKey: key)
            }
            return gone.map { ($0.key, $0.value) }
        }
        for (key, channel) in stale {
            logger.info("no longer listening on \(key.address) (\(key.kind.rawValue))")
            channel.close(promise: nil)
        }
    }

    private func bootstrap(for kind: ListenerKind, quiesce: ServerQuiescingHelper) -> ServerBootstrap {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 4096)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
        let core = self.core
        switch kind {
        case .http:
            return bootstrap.childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.configureHTTP1(channel: channel, core: core, isTLS: false)
                }
            }
        case .https:
            let certificates = self.certificates
            return bootstrap.childChannelInitializer { channel in
                Self.configureTLS(channel: channel, core: core, certificates: certificates)
            }
        case .admin:
            let admin = AdminEndpoints(gateway: self)
            return bootstrap.childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // A connection that neither sends nor receives for a minute is closed (an event stream writes every
                    // second, so it stays).
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(60)))
                    try channel.pipeline.syncOperations.addHandler(IdleConnectionCloser())
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(endpoints: admin))
                }
            }
        }
    }

    static func configureHTTP1(channel: any Channel, core: GatewayCore, isTLS: Bool, connection: ConnectionInfo? = nil)
        throws
    {
        let sync = channel.pipeline.syncOperations
        let connection = connection ?? ConnectionInfo(channel: channel, isTLS: isTLS, core: core)
        let limits = connection.snapshots.current.limits
        if !isTLS {
            try ConnectionAccounting.admit(channel, core: core, connection: connection, maxConnections: limits.maxConnections)
        }
        // The decoder (with the connection's guard inside it) and the request handler: the request handler writes
        // response bytes itself and keeps pipelined requests in order (see RequestHandler). Bytes after an upgrade
        // request stay in the decoder and go to the WebSocket tunnel when it is removed.
        let connectionGuard = ConnectionGuard(limits: limits)
        let requestHandler = RequestHandler(
            core: core, loop: core.loopContext(for: channel.eventLoop),
            connection: connection, connectionGuard: connectionGuard, isHTTP2: false)
        try sync.addHandler(HTTP1RequestDecoder(limits: limits, connectionGuard: connectionGuard, requestHandler: requestHandler))
        try sync.addHandler(requestHandler)
    }

    static func configureTLS(channel: any Channel, core: GatewayCore, certificates: CertificateStore)
        -> EventLoopFuture<Void>
    {
        guard let context = certificates.currentContext else {
            return channel.close()
        }
        let connection = ConnectionInfo(channel: channel, isTLS: true, core: core)
        let limits = connection.snapshots.current.limits
        do {
            try ConnectionAccounting.admit(channel, core: core, connection: connection, maxConnections: limits.maxConnections)
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(NIOSSLServerHandler(context: context))
            try sync.addHandler(IdleHandshakeTimeoutHandler(timeout: limits.headerTimeout))
            try sync.addHandler(TLSEventsHandler(connection: connection, core: core))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.configureHTTP2SecureUpgrade(
            h2ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureHTTP2(channel: channel, core: core, connection: connection, limits: limits)
                }
            },
            http1ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureHTTP1(channel: channel, core: core, isTLS: true, connection: connection)
                }
            })
    }

    static func configureHTTP2(channel: any Channel, core: GatewayCore, connection: ConnectionInfo, limits: Limits) throws {
        let loop = core.loopContext(for: channel.eventLoop)
        // libnghttp2 speaks the protocol; every stream is served on this pipeline (no per-stream child channels).
        try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(limits: limits, connection: connection, loop: loop) {
            RequestHandler(core: core, loop: loop, connection: connection, connectionGuard: nil, isHTTP2: true)
        })
    }

    // MARK: - Reload

    /// Settings a reload cannot change in a running process; a change is logged so nobody waits for it in vain.
    private func warnAboutRestartOnlyChanges(from old: GatewayConfiguration, to new: GatewayConfiguration) {
        var changed: [String] = []
        if old.threads != new.threads { changed.append("threads") }
        if old.staticCache != new.staticCache { changed.append("static_cache") }
        if old.accessLog != new.accessLog { changed.append("access_log") }
        if old.tls.minimumVersion != new.tls.minimumVersion { changed.append("tls.min_version") }
        if !changed.isEmpty {
            logger.warning("\(changed.joined(separator: ", ")) changed: these take effect at the next restart")
        }
    }

    /// Checks the `tracking` and `links` sections of a reload: refused (nothing changed) when a key that needs a
    /// restart changed; otherwise the tracking settings, staged for ``TrackingPipeline/commitReload(_:)``.
    private func stageTrackingReload(to new: GatewayConfiguration) throws -> TrackingPipeline.StagedReload? {
        let old = state.withLock { $0.configuration }
        var restartOnly = LinksConfiguration.restartOnlyChanges(from: old.links, to: new.links)
        if old.links?.store == "clickhouse", old.tracking.clickHouse != new.tracking.clickHouse {
            // The ClickHouse link store was made at start from these settings.
            restartOnly.append("tracking.clickhouse (links.store: clickhouse uses it)")
        }
        guard let tracking else {
            if new.tracking.enabled { restartOnly.insert("tracking.enabled", at: 0) }
            guard restartOnly.isEmpty else { throw TrackingPipeline.RestartNeeded(keys: restartOnly) }
            return nil
        }
        restartOnly = tracking.configuration.restartOnlyChanges(to: new.tracking) + restartOnly
        guard restartOnly.isEmpty else { throw TrackingPipeline.RestartNeeded(keys: restartOnly) }
        return try tracking.stageReload(to: new.tracking)
    }

    /// Re-reads the config file and certificates and swaps them in; on any error the running configuration stays and
    /// the error is thrown. Blocking: call it off the event loops.
    public func reload() throws {
        let path = state.withLock { $0.configuration.sourcePath }
        do {
            let configuration = try GatewayConfiguration.load(path: path)
            try configuration.checkServingSecrets()
            let staged = try stageTrackingReload(to: configuration)
            let keys = try Self.loadCertificates(configuration, logger: logger)
            let snapshot = try Self.makeSnapshot(
                configuration, cache: cache, threadPool: threadPool, proxy: proxy, metrics: routeMetrics,
                trackingAPI: tracking?.api, links: links, previous: core.snapshot.table)
            try certificates.replaceStatic(with: keys)
            try automaticCertificates.configure(configuration)
            core.replaceSnapshot(snapshot)
            proxy.activate(snapshot.table.proxyRoutes)
            if let staged { tracking?.commitReload(staged) }
            warnAboutRestartOnlyChanges(from: state.withLock { $0.configuration }, to: configuration)
            state.withLock {
                $0.configuration = configuration
                $0.reloadedAt = Date()
                $0.lastReloadError = nil
                $0.staticCertificates = Self.expiries(of: keys)
            }
            try bindListeners(for: configuration)
            publishHTTPSPort()
            accessLog?.reopen()
            core.metrics.reloads.increment()
            logger.info("configuration reloaded from \(path)")
        } catch {
            core.metrics.failedReloads.increment()
            logger.error("reload refused, the running configuration stays: \(error)")
            let firstLine = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            state.withLock { $0.lastReloadError = firstLine }
            throw error
        }
    }

    /// Runs `reload()` on the blocking pool.
    public func reloadInBackground() async throws {
        try await threadPool.runIfActive { try self.reload() }
    }

    // MARK: - Shutdown

    /// Stops accepting, lets in-flight requests finish up to `timeout`, then closes everything.
    public func shutdown(timeout: Duration? = nil) async {
        let limit = timeout ?? state.withLock { $0.configuration.shutdownTimeout }
        logger.info("shutting down: no new connections, waiting up to \(limit) for requests in flight")
        let drained = initiateQuiescing()
        let timer = group.next().scheduleTask(in: TimeAmount(limit)) {}
        let finished = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let once = Mutex(false)
            drained.whenComplete { _ in
                if once.withLock({ let first = !$0; $0 = true; return first }) { continuation.resume(returning: true) }
            }
            timer.futureResult.whenComplete { _ in
                if once.withLock({ let first = !$0; $0 = true; return first }) { continuation.resume(returning: false) }
            }
        }
        timer.cancel()
        if !finished { logger.warning("shutdown timeout reached; closing the remaining connections") }
        for task in state.withLock({ $0.housekeeping }) { task.cancel() }
        proxy.shutdown()
        // Let the listeners finish closing and the quiescing helpers go (each completes a promise when released)
        // while the loops still run.
        let listeners = state.withLock { state in
            defer {
                state.quiescers.removeAll()
                state.listeners.removeAll()
            }
            return Array(state.listeners.values)
        }
        for channel in listeners { try? await channel.closeFuture.get() }
        for loop in group.makeIterator() {
            let context = core.loopContext(for: loop)
            try? await loop.submit { context.accessLog?.flush() }.get()
        }
        await automaticCertificates.stop()
        await tracking?.shutdown()
        await links?.shutdown()
        try? await group.shutdownGracefully()
        try? await threadPool.shutdownGracefully()
        accessLog?.flushAndStop()
        logger.info("shutdown complete")
    }

    /// Asks every listener's quiescing helper to stop accepting and drain; the future completes when all are done.
    private func initiateQuiescing() -> EventLoopFuture<Void> {
        let futures = state.withLock { state in
            state.quiescers.values.map { quiesce in
                let promise = group.next().makePromise(of: Void.self)
                quiesce.initiateShutdown(promise: promise)
                return promise.futureResult
            }
        }
        return EventLoopFuture.andAllComplete(futures, on: group.next())
    }

    // MARK: - Admin data

    /// The facts `/health` is decided from, gathered now.
    var healthVerdict: HealthVerdict {
        let (configuration, lastReloadError, staticCertificates, listeners) = state.withLock {
            ($0.configuration, $0.lastReloadError, $0.staticCertificates, $0.listeners.keys.filter { $0.kind != .admin }.count)
        }
        var facts = HealthVerdict.Facts()
        facts.listeners = listeners
        let table = core.snapshot.table
        facts.pools = table.proxyRoutes.map { route in
            let pool = route.pool
            return HealthVerdict.Pool(route: "\(route.pathPrefix) (\(pool.addresses.joined(separator: ", ")))",
                                      members: pool.addresses.count, healthy: pool.healthy)
        }
        // Routes a person is served by without an upstream (the tracking API on every site and the probes'
        // routes do not count).
        facts.routesWithoutUpstreams = table.allRoutes.filter { route in
            switch route.handler {
            case .proxy, .trackingAPI, .health, .status, .ping, .trackerMetrics, .webhook, .legacyLinks: false
            default: true
            }
        }.count
        if let tracking = tracking?.healthFacts {
            facts.clickHouseConfigured = tracking.clickHouseConfigured
            facts.clickHouseFailure = tracking.clickHouseFailure
            facts.backlogSeconds = tracking.backlogSeconds
            facts.spoolProblem = tracking.spoolProblem
        }
        facts.maxBacklogSeconds = Double(configuration.admin.maxBacklogAge.components.seconds)
        facts.certificateWarning = TimeInterval(configuration.admin.certificateWarning.components.seconds)
        facts.lastReloadError = lastReloadError
        facts.certificates = staticCertificates + automaticCertificates.expiries
        facts.linksProblem = links?.storeProblem
        return HealthVerdict.decide(facts)
    }

    var healthReport: [String: any Sendable] {
        let (configuration, reloadedAt) = state.withLock { ($0.configuration, $0.reloadedAt) }
        let stats = cache.statistics
        let trackingReport = tracking?.healthReport
        let linksProblem = links?.storeProblem
        let verdict = healthVerdict
        var report: [String: any Sendable] = [
            "status": verdict.status.rawValue, "reasons": verdict.reasons,
            "version": VantageRuntime.version,
            "uptime_seconds": Int(Date().timeIntervalSince(startedAt)),
            "open_connections": core.openConnections.load(ordering: .relaxed),
            "config": configuration.sourcePath,
            "reloaded_at": ISO8601DateFormatter().string(from: reloadedAt),
            "static_cache_entries": stats.entries,
            "static_cache_bytes": stats.bytes,
            "tracking": trackingReport ?? ["enabled": false],
            "certificates": automaticCertificates.healthReport,
            "upstreams": proxy.upstreams.map { upstream -> [String: any Sendable] in
                let statistics = upstream.statistics
                return [
                    "address": upstream.address, "healthy": statistics.healthy,
                    "active_requests": statistics.activeRequests, "open_connections": statistics.openConnections,
                    "requests": statistics.requests, "connection_reuse_rate": statistics.reuseRate,
                ]
            },
        ]
        if links != nil { report["links"] = ["store_error": linksProblem ?? ""] as [String: any Sendable] }
        return report
    }

    var adminToken: String? { state.withLock { $0.configuration.admin.token } }

    /// The dashboard's signed-in browsers and refused sign-ins.
    let adminSessions: AdminSessions

    /// Read-only links to one site's reports (kept in the data folder).
    let shareLinks: ShareLinks

    /// The live view's events: the spool followed as it is written.
    let liveFeed: LiveFeed

    /// Reports computed in the last seconds (the dashboard and the stats API).
    let reports: ReportCache

    /// Every configured site's name (the dashboard's site menu).
    var siteNames: [String] { state.withLock { $0.configuration.sites.map(\.name) } }

    /// The first site's name: a report's `site` when the request names none.
    var defaultReportSite: String? { state.withLock { $0.configuration.sites.first?.name } }

    /// The hosts of the site named `name` (none for a site without hosts, or no such site).
    func siteHosts(named name: String) -> [String] {
        state.withLock { state in state.configuration.sites.first { $0.name == name }?.hosts ?? [] }
    }

    /// The spool folder (reports read it without ClickHouse).
    var spoolFolder: String { state.withLock { $0.configuration.tracking.spool.directory } }

    /// The logger of control-plane work.
    var controlLogger: Logger { logger }

    func metricsText() -> String {
        var buffer: [UInt8] = []
        registry?.emit(into: &buffer)
        let stats = cache.statistics
        var text = String(decoding: buffer, as: UTF8.self)
        routeMetrics.render(into: &text)
        proxy.renderMetrics(into: &text)
        tracking?.renderMetrics(into: &text)
        automaticCertificates.renderMetrics(into: &text)
        let staticCertificates = state.withLock { $0.staticCertificates }
        if !staticCertificates.isEmpty {
            text += "# HELP vantage_certificate_expiry_timestamp_seconds When a configured certificate file expires.\n"
            text += "# TYPE vantage_certificate_expiry_timestamp_seconds gauge\n"
            for certificate in staticCertificates {
                let name = certificate.name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                text += "vantage_certificate_expiry_timestamp_seconds{name=\"\(name)\",source=\"file\"} \(Int(certificate.notAfter.timeIntervalSince1970))\n"
            }
        }
        let limiters = core.snapshot.table.limiters
        if !limiters.isEmpty {
            text += "# HELP vantage_ratelimit_limited_total Requests refused by a route's rate limit.\n"
            text += "# TYPE vantage_ratelimit_allowed_total counter\n# TYPE vantage_ratelimit_limited_total counter\n"
            text += "# TYPE vantage_ratelimit_dry_run_total counter\n# TYPE vantage_ratelimit_keys gauge\n"
            text += "# TYPE vantage_ratelimit_evictions_total counter\n# TYPE vantage_ratelimit_concurrency_limited_total counter\n"
            text += "# TYPE vantage_ratelimit_in_flight gauge\n# TYPE vantage_ratelimit_in_flight_keys gauge\n"
            text += "# TYPE vantage_ratelimit_untracked_total counter\n"
            for limiter in limiters { limiter.render(into: &text) }
        }
        text += "# TYPE vantage_static_cache_hits_total counter\nvantage_static_cache_hits_total \(stats.hits)\n"
        text += "# TYPE vantage_static_cache_misses_total counter\nvantage_static_cache_misses_total \(stats.misses)\n"
        text += "# TYPE vantage_static_cache_evictions_total counter\nvantage_static_cache_evictions_total \(stats.evictions)\n"
        text += "# HELP vantage_reports_evicted_total Reports dropped from the 5-second report cache to make room.\n"
        text += "# TYPE vantage_reports_evicted_total counter\nvantage_reports_evicted_total \(reports.evictions.load(ordering: .relaxed))\n"
        text += "# HELP vantage_live_events_dropped_total Events the live view let go early (it keeps 100,000).\n"
        text += "# TYPE vantage_live_events_dropped_total counter\nvantage_live_events_dropped_total \(liveFeed.dropped.load(ordering: .relaxed))\n"
        text += "# HELP vantage_admin_signin_addresses_forgotten_total Addresses with wrong tokens forgotten early (the table of 10,000 was full).\n"
        text += "# TYPE vantage_admin_signin_addresses_forgotten_total counter\nvantage_admin_signin_addresses_forgotten_total \(adminSessions.forgotten.load(ordering: .relaxed))\n"
        text += "# TYPE vantage_static_cache_entries gauge\nvantage_static_cache_entries \(stats.entries)\n"
        text += "# TYPE vantage_static_cache_bytes gauge\nvantage_static_cache_bytes \(stats.bytes)\n"
        return text
    }
}

/// Closes a TLS connection whose handshake does not finish in time (a client that connects and sends nothing).
final class IdleHandshakeTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let timeout: TimeAmount
    private var task: Scheduled<Void>?

    init(timeout: Duration) {
        self.timeout = TimeAmount(timeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        task = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        task?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is TLSUserEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        task?.cancel()
        task = nil
        // Pass the event on before leaving: the ALPN handler further down builds the HTTP pipeline from it.
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

extension GatewayConfiguration {
    /// Loads every certificate and key the configuration names, so `vantage validate` catches a key that does not
    /// parse before a deploy does.
    public static func checkCertificates(_ configuration: GatewayConfiguration) throws {
        _ = try Gateway.loadCertificates(configuration, issuing: false)
    }
}

/// The gateway, not kept alive by a timer.
private final class WeakGateway: Sendable {
    private struct Reference {
        weak var gateway: Gateway?
    }

    private let reference: Mutex<Reference>

    init(_ gateway: Gateway) { reference = Mutex(Reference(gateway: gateway)) }

    var value: Gateway? { reference.withLock { $0.gateway } }
}
