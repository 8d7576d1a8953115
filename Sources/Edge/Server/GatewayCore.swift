import ACME
import Config
import Logging
import NIOCore
import NIOPosix
import Proxy
import Static
import Synchronization
import Tracking

/// Everything a request needs that changes only on reload: routes, limits, trusted proxies, the HTTPS port.
final class RuntimeSnapshot: Sendable {
    let table: RouteTable
    let limits: Limits
    let trustedProxies: [CIDR]
    /// Port of the first HTTPS listener, for `redirect_https` (nil when there is none).
    let httpsPort: Int?

    init(table: RouteTable, limits: Limits, trustedProxies: [CIDR], httpsPort: Int?) {
        self.table = table
        self.limits = limits
        self.trustedProxies = trustedProxies
        self.httpsPort = httpsPort
    }
}

/// The shared core of the data plane: the current snapshot, per-loop contexts, file I/O, metrics and logger.
final class GatewayCore: Sendable {
    private let current: Mutex<RuntimeSnapshot>
    private let generation = Atomic<Int>(0)
    let loopContexts: [ObjectIdentifier: LoopContext]
    let fileIO: NonBlockingFileIO
    /// For the rare disk read on a request path (an ACME challenge another process started).
    let blockingPool: NIOThreadPool
    let logger: Logger
    let metrics = GatewayMetrics.shared
    let openConnections = Atomic<Int>(0)
    /// The connection cap was reached once (it is logged once).
    let overCapacityLogged = Atomic<Bool>(false)
    let proxy: ProxyService
    /// ACME HTTP-01 answers, served on every listener ahead of the sites.
    let acmeChallenges: HTTP01Responder

    /// Metrics of requests that matched no site or route, or were refused before routing.
    let unroutedMetrics: RouteMetrics

    /// The reports' pages, for sites' `insights` routes.
    let insightsWeb = InsightsWebHook()
    let health = HealthHook()

    init(snapshot: RuntimeSnapshot, loops: [any EventLoop], accessLog: AccessLogWriter?, threadPool: NIOThreadPool,
         routeMetrics: RouteMetricsRegistry, proxy: ProxyService, tracking: TrackingPipeline? = nil,
         acmeChallenges: HTTP01Responder = HTTP01Responder(), logger: Logger)
    {
        self.proxy = proxy
        self.acmeChallenges = acmeChallenges
        current = Mutex(snapshot)
        var contexts: [ObjectIdentifier: LoopContext] = [:]
        for (index, loop) in loops.enumerated() {
            contexts[ObjectIdentifier(loop)] = LoopContext(
                eventLoop: loop, index: index, accessLogWriter: accessLog, events: tracking?.recorder(forLoop: index),
                enricher: tracking?.enricher(forLoop: index),
                flushCoalescer: proxy.flushCoalescer(for: loop))
        }
        unroutedMetrics = routeMetrics.metrics(site: "-", route: "-")
        loopContexts = contexts
        fileIO = NonBlockingFileIO(threadPool: threadPool)
        blockingPool = threadPool
        self.logger = logger
    }

    /// The snapshot requests start with.
    var snapshot: RuntimeSnapshot { current.withLock { $0 } }

    /// Changes whenever the snapshot is replaced; handlers compare it to skip the lock.
    var snapshotGeneration: Int { generation.load(ordering: .acquiring) }

    /// Installs a new snapshot; requests already running keep theirs.
    func replaceSnapshot(_ snapshot: RuntimeSnapshot) {
        current.withLock { $0 = snapshot }
        generation.add(1, ordering: .releasing)
    }

    func loopContext(for loop: any EventLoop) -> LoopContext {
        loopContexts[ObjectIdentifier(loop)]!
    }
}

/// One connection's view of the current snapshot, shared by all its requests (and all streams of an HTTP/2
/// connection): the snapshot is fetched under the lock only when the generation counter moved, and the last Host
/// and its site are remembered, since a connection nearly always repeats its Host.
///
/// Loop-confined: only touched on the connection's event loop.
final class SnapshotView {
    private let core: GatewayCore
    private var snapshot: RuntimeSnapshot
    private var generation: Int
    private var lastHost: String?
    private var lastSite: Site?

    init(core: GatewayCore) {
        self.core = core
        generation = core.snapshotGeneration
        snapshot = core.snapshot
    }

    /// The snapshot a request starting now uses.
    var current: RuntimeSnapshot {
        let latest = core.snapshotGeneration
        if latest != generation {
            generation = latest
            snapshot = core.snapshot
            lastHost = nil
            lastSite = nil
        }
        return snapshot
    }

    /// The site for a Host value in the current snapshot (call `current` first).
    func site(forHost host: String?) -> Site? {
        if let host, let lastHost, host == lastHost, let lastSite { return lastSite }
        let site = snapshot.table.site(forHost: host)
        lastHost = host
        lastSite = site
        return site
    }
}
