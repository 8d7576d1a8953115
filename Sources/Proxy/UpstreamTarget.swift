import NIOCore
import Synchronization

/// One upstream server as every route and event loop sees it: health and counters, shared through atomics.
///
/// A target outlives configuration reloads as long as some route still names its address, so a reload keeps its
/// health state, its counters and its pooled connections.
public final class UpstreamTarget: Sendable {
    public let address: UpstreamAddress
    /// How TLS is spoken to an `https://` upstream; nil for plain HTTP.
    let tls: UpstreamTLS?
    /// The SNI and certificate name for `tls` (nil: none sent, the certificate must name the IP address).
    let serverName: String?
    /// Creation order, so targets sharing an address (over TLS with different settings) are listed and labelled
    /// in a stable order: the one named first in the configuration first.
    let serial: Int
    private static let made = Atomic<Int>(0)

    // Passive health: consecutive failures and the uptime (ns) until which the target is out.
    private let consecutiveFailures = Atomic<Int>(0)
    private let downUntil = Atomic<UInt64>(0)
    /// Active health: false once the health check failed `fails` times in a row.
    private let checkedHealthy = Atomic<Bool>(true)

    /// Requests in flight, for `least_conn`.
    let activeRequests = Atomic<Int>(0)
    /// Connections open (idle or busy), for `pool.max_connections`.
    let openConnections = Atomic<Int>(0)

    let requests = Atomic<Int>(0)
    let newConnections = Atomic<Int>(0)
    let reusedConnections = Atomic<Int>(0)
    let connectFailures = Atomic<Int>(0)
    let resets = Atomic<Int>(0)
    let timeouts = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let poolRejections = Atomic<Int>(0)
    let healthCheckFailures = Atomic<Int>(0)

    init(address: UpstreamAddress, tls: UpstreamTLS? = nil) {
        self.address = address
        self.tls = tls
        serverName = tls?.serverName(for: address)
        serial = Self.made.add(1, ordering: .relaxed).newValue
    }

    /// Whether requests may go to the target now.
    @inline(__always)
    func isAvailable(now: UInt64) -> Bool {
        checkedHealthy.load(ordering: .relaxed) && downUntil.load(ordering: .relaxed) <= now
    }

    /// Whether the target is up as the health output reports it.
    public var isHealthy: Bool { isAvailable(now: NIODeadline.now().uptimeNanoseconds) }

    /// Nanoseconds until the passive cool-down ends (0 when not cooling down).
    func cooldownRemaining(now: UInt64) -> UInt64 {
        let until = downUntil.load(ordering: .relaxed)
        return until > now ? until - now : 0
    }

    /// A request reached the upstream and got a response head.
    @inline(__always)
    func recordSuccess() {
        if consecutiveFailures.load(ordering: .relaxed) != 0 { consecutiveFailures.store(0, ordering: .relaxed) }
    }

    /// A request failed at the connection level; the target goes out for `cooldown` once `maxFails` are reached in a
    /// row. Returns true when this failure took it out.
    @discardableResult
    func recordFailure(settings: ProxyConfiguration.PassiveHealthSettings, now: UInt64) -> Bool {
        guard settings.maxFails > 0 else { return false }
        let failures = consecutiveFailures.add(1, ordering: .relaxed).newValue
        guard failures >= settings.maxFails else { return false }
        let cooldown = UInt64(settings.cooldown.components.seconds) * 1_000_000_000
            + UInt64(settings.cooldown.components.attoseconds / 1_000_000_000)
        downUntil.store(now + cooldown, ordering: .relaxed)
        return true
    }

    /// Sets the active health state; returns true when it changed.
    func setChecked(healthy: Bool) -> Bool {
        let old = checkedHealthy.exchange(healthy, ordering: .relaxed)
        if healthy && !old {
            // Back from an active-check outage: start the passive count afresh.
            consecutiveFailures.store(0, ordering: .relaxed)
            downUntil.store(0, ordering: .relaxed)
        }
        return old != healthy
    }

    /// Counters and state for metrics and the health output.
    public struct Statistics: Sendable {
        public var healthy: Bool
        public var activeRequests: Int
        public var openConnections: Int
        public var requests: Int
        public var newConnections: Int
        public var reusedConnections: Int
        public var connectFailures: Int
        public var resets: Int
        public var timeouts: Int
        public var retries: Int
        public var poolRejections: Int
        public var healthCheckFailures: Int

        /// Share of requests that went out on an already open connection.
        public var reuseRate: Double {
            let total = newConnections + reusedConnections
            return total == 0 ? 0 : Double(reusedConnections) / Double(total)
        }
    }

    public var statistics: Statistics {
        Statistics(
            healthy: isHealthy, activeRequests: activeRequests.load(ordering: .relaxed),
            openConnections: openConnections.load(ordering: .relaxed), requests: requests.load(ordering: .relaxed),
            newConnections: newConnections.load(ordering: .relaxed),
            reusedConnections: reusedConnections.load(ordering: .relaxed),
            connectFailures: connectFailures.load(ordering: .relaxed), resets: resets.load(ordering: .relaxed),
            timeouts: timeouts.load(ordering: .relaxed), retries: retries.load(ordering: .relaxed),
            poolRejections: poolRejections.load(ordering: .relaxed),
            healthCheckFailures: healthCheckFailures.load(ordering: .relaxed))
    }
}
