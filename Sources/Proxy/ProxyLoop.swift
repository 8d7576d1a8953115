import Clocks
import FlushCoalescing
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The proxy's state on one event loop: idle connections per upstream, balancer positions, and requests waiting
/// for a connection when an upstream is at its connection limit.
///
/// Pools are per loop, as nginx keeps them per worker: a client connection and its upstream connections share a
/// loop, so handing a connection from one exchange to the next needs no lock and no thread hop. The connection limit
/// is global (an atomic count per upstream).
///
/// `@unchecked Sendable` so the service can hold one per loop; every member is used on its own loop only.
public final class ProxyLoop: @unchecked Sendable {
    public let eventLoop: any EventLoop
    /// Idle connections per upstream. Each upstream's stack is an object so taking and returning a connection mutate
    /// it through a plain dictionary read: mutating an array in place inside the dictionary goes through its `modify`
    /// accessors, whose coroutine frames were three `malloc`s per proxied request.
    private var idle: [ObjectIdentifier: IdleStack] = [:]
    private var balancerStates: [ObjectIdentifier: Balancer.State] = [:]
    private var waiters: [ObjectIdentifier: [ProxyExchange]] = [:]
    let logger: Logger
    private var warnedWaitersFull = false
    /// Where request heads sent upstream are written and handed to their connections: a buffer the socket has taken
    /// is reused instead of allocating (and, past 512 bytes, reallocating) one per proxied request. A ring, as the
    /// heads of one tick all wait for its end (``FlushCoalescer``).
    var upstreamHeads = WriteBufferRing(count: 32)
    /// Where an upstream request's flush waits for the end of the loop's tick.
    let flushCoalescer: FlushCoalescer

    /// Requests that may wait for a connection per upstream on one loop; more get 503 at once.
    static let maxWaiters = 1024

    init(eventLoop: any EventLoop, flushCoalescer: FlushCoalescer, logger: Logger) {
        self.eventLoop = eventLoop
        self.flushCoalescer = flushCoalescer
        self.logger = logger
    }

    // MARK: Balancing

    func withBalancerState<Result>(for group: ObjectIdentifier, count: Int, _ body: (inout Balancer.State) -> Result)
        -> Result
    {
        // Changed in place in the table (one lookup; taking the state out and putting it back was two, and a removal
        // shifts the entries after it). `body` only picks an upstream: it never reaches back into this table.
        body(&balancerStates[group, default: Balancer.State(count: count)])
    }

    // MARK: Connections

    enum Acquisition {
        case reused(UpstreamConnection)
        case connecting(EventLoopFuture<UpstreamConnection>)
        /// At the connection limit: the exchange was queued and will be called back.
        case queued
        /// At the limit with a full queue.
        case refused
    }

    /// An idle connection to `target`, or a new one, or a place in the queue. `fresh` skips the idle ones (and
    /// closes them: they are as old as one that just failed).
    func acquire(
        _ target: UpstreamTarget, settings: PoolSettingsKey, connectTimeout: TimeAmount, fresh: Bool = false,
        for exchange: ProxyExchange
    ) -> Acquisition {
        let key = ObjectIdentifier(target)
        if fresh, let stale = idle.removeValue(forKey: key) {
            for connection in stale.connections { connection.close() }
        }
        if let stack = idle[key] {
            while let connection = stack.connections.popLast() {
                if connection.isClosed { continue }
                target.reusedConnections.add(1, ordering: .relaxed)
                return .reused(connection)
            }
        }
        let open = target.openConnections.add(1, ordering: .relaxed).newValue
        if open > settings.maxConnections {
            target.openConnections.subtract(1, ordering: .relaxed)
            guard (waiters[key]?.count ?? 0) < Self.maxWaiters else {
                target.poolRejections.add(1, ordering: .relaxed)
                if !warnedWaitersFull {
                    warnedWaitersFull = true
                    logger.warning("upstream \(target.address) is at max_connections and its wait queue is full: answering 503 (logged once)")
                }
                return .refused
            }
            waiters[key, default: []].append(exchange)
            return .queued
        }
        target.newConnections.add(1, ordering: .relaxed)
        return .connecting(connect(target, settings: settings, timeout: connectTimeout))
    }

    private func connect(_ target: UpstreamTarget, settings: PoolSettingsKey, timeout: TimeAmount)
        -> EventLoopFuture<UpstreamConnection>
    {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        var bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls = target.tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: target.serverName))
                    }
                    try pipeline.addHandler(UpstreamConnection(target: target, pool: settings, home: bound.value))
                }
            }
        if target.address.socketAddress.protocol != .unix {
            bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
        }
        return bootstrap.connect(to: target.address.socketAddress).flatMapErrorThrowing { error in
            // Never active, so the connection's channelInactive (which counts it closed) does not run.
            target.openConnections.subtract(1, ordering: .relaxed)
            throw error
        }.flatMapThrowing { channel in
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self), eventLoop: channel.eventLoop)
        }.flatMap { connection in
            connection.value.ready(within: timeout).map { connection }
        }.map { $0.value }
    }

    /// The exchange is done with the connection and it may serve another.
    func release(_ connection: UpstreamConnection) {
        connection.exchange = nil
        connection.setDeadline(nil)
        connection.setReadsPaused(false)
        guard !connection.isClosed else { return }
        let key = ObjectIdentifier(connection.target)
        if waiters[key]?.isEmpty == false {
            let next = waiters[key]!.removeFirst()
            connection.target.reusedConnections.add(1, ordering: .relaxed)
            next.connectionAvailable(connection)
            return
        }
        let stack: IdleStack
        if let existing = idle[key] {
            stack = existing
        } else {
            stack = IdleStack()
            idle[key] = stack
        }
        guard stack.connections.count < connection.pool.maxIdle else {
            connection.close()
            return
        }
        connection.idleSince = .progressNow
        stack.connections.append(connection)
    }

    /// A connection closed (by either side); a waiting exchange may now open one.
    func connectionClosed(_ connection: UpstreamConnection) {
        let key = ObjectIdentifier(connection.target)
        if let stack = idle[key], let index = stack.connections.firstIndex(where: { $0 === connection }) {
            stack.connections.remove(at: index)
        }
        if waiters[key]?.isEmpty == false {
            let next = waiters[key]!.removeFirst()
            next.retryAcquire()
        }
    }

    /// A queued exchange gave up (timed out or its client left).
    func removeWaiter(_ exchange: ProxyExchange, target: UpstreamTarget) {
        let key = ObjectIdentifier(target)
        waiters[key]?.removeAll { $0 === exchange }
    }

    /// Closes connections idle for longer than their pool's idle timeout. Run once a second.
    func sweepIdle(now: NIODeadline = .progressNow) {
        // Stacks left empty go too, so upstreams a reload removed leave no entry behind.
        var emptied: [ObjectIdentifier] = []
        for (key, stack) in idle {
            // Filtered from a copy: closing a connection can call back into `connectionClosed`, which edits the stack.
            let current = stack.connections
            let keep = current.filter { connection in
                if connection.isClosed { return false }
                guard now - connection.idleSince >= connection.pool.idleTimeout else { return true }
                connection.close()
                return false
            }
            if keep.count != current.count { stack.connections = keep }
            if stack.connections.isEmpty { emptied.append(key) }
        }
        for key in emptied { idle[key] = nil }
    }

    /// Closes every idle connection (shutdown).
    func closeIdle() {
        for stack in idle.values { for connection in stack.connections { connection.close() } }
        idle.removeAll()
    }
}

/// One upstream's idle connections on one loop, the most recently used last.
private final class IdleStack {
    var connections: [UpstreamConnection] = []
}
