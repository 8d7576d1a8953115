import Clocks
import FlushCoalescing
import NIOCore
import NIOHTTP1
import HTTP1Parser
import PlainErrors
import RequestTarget

/// The client side of a proxied request, implemented by the edge's request handler. Every call comes on the
/// client connection's event loop.
public protocol ProxyDownstream: AnyObject {
    /// The upstream answered; its headers go to the client through ``ProxyResponseHead/forEachHeader(_:)``, which
    /// leaves out the hop-by-hop ones.
    func proxyResponseHead(_ head: ProxyResponseHead)
    /// A piece of the response body. Returns false when the client is not keeping up: the exchange stops reading
    /// the upstream until ``ProxyExchange/downstreamWritable()``.
    func proxyResponseBody(_ buffer: ByteBuffer) -> Bool
    func proxyResponseEnd(trailers: HTTPHeaders?)
    /// The upstream read burst is over: send what was written.
    func proxyResponseFlush()
    /// The exchange failed. Before the response head: answer `failure.status`; after: abort the response.
    func proxyFailed(_ failure: ProxyFailure)
    /// Stop (true) or resume (false) reading the request body from the client.
    func proxyRequestBody(paused: Bool)
    /// The upstream switched to WebSocket: send the 101 head, then hand the connection to the tunnel.
    func proxyUpgraded(_ head: ProxyResponseHead, tunnel: ProxyTunnel)
}

/// Why a proxied request got no (complete) answer.
public struct ProxyFailure: Sendable, Error {
    public var status: HTTPResponseStatus
    public var reason: String
    /// For 503: when to try again.
    public var retryAfterSeconds: Int?
    /// Whether part of the response already went to the client (the edge can then only abort).
    public var responseStarted: Bool
    /// The underlying error, for the log only (clients get `reason`).
    public var detail: String?

    public init(status: HTTPResponseStatus, reason: String, retryAfterSeconds: Int?, responseStarted: Bool) {
        self.status = status
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
        self.responseStarted = responseStarted
    }
}

/// What went wrong on one attempt, for the retry decision.
enum AttemptFailure: Equatable {
    /// The connection could not be made (refused, unreachable, connect timeout): nothing was sent.
    case connect(timedOut: Bool)
    /// The connection closed or reset before any response byte.
    case reset
    /// No response head (or no more body) in time.
    case timeout
}

/// Whether a failed attempt may be tried again, as a pure function of what happened so far.
enum RetryPolicy {
    struct Progress: Equatable {
        var attempts: Int
        var maxTries: Int
        var elapsed: TimeAmount
        var window: TimeAmount
        var responseStarted: Bool
        /// Some request body left for the upstream without a copy kept.
        var bodyPartlySentUnbuffered: Bool
        var idempotent: Bool
    }

    static func mayRetry(after failure: AttemptFailure, _ progress: Progress) -> Bool {
        guard progress.attempts < progress.maxTries, progress.elapsed < progress.window, !progress.responseStarted,
            !progress.bodyPartlySentUnbuffered
        else { return false }
        switch failure {
        case .connect: return true
        case .reset: return progress.idempotent
        case .timeout: return false
        }
    }

    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: return true
        default: return false
        }
    }
}

/// One proxied request: picks an upstream, takes a pooled connection, streams the body both ways with
/// backpressure, retries what may be retried, and reports to its ``ProxyDownstream``.
///
/// Confined to the client connection's event loop; upstream connections are made on the same loop.
public final class ProxyExchange {
    private let route: ProxyRoute
    private let loop: ProxyLoop
    private let clientHead: RequestHead
    private let client: ClientInfo
    private let requestID: RequestID
    private let upstreamPath: String
    /// The body goes upstream chunked (its length is unknown).
    private let chunked: Bool
    private let clientHost: String?
    private let hashKey: String?
    private let idempotent: Bool
    private let isWebSocket: Bool
    /// Held until the exchange ends (then let go by ``takeDownstream()`` or ``cancel()``), which breaks the cycle
    /// through the handler's exchange. Not weak: a weak reference gives the handler a side table for life, and
    /// every retain and release of it then takes the runtime's slow path (with the writer's, 1.4% of a proxied
    /// request's core in profiles).
    private var downstream: (any ProxyDownstream)?
    private let startedAt = NIODeadline.now()

    private var target: UpstreamTarget?
    private var connection: UpstreamConnection?
    private var tried = Balancer.IndexSet()
    private var attempts = 0
    /// Body parts not yet written to the current connection.
    private var pendingBody: [ByteBuffer] = []
    private var pendingBytes = 0
    /// Copies of the body parts sent, to replay on a retry.
    private var replay: RequestBodyReplay
    private var requestTrailers: HTTPHeaders?
    /// Where the exchange is (request, response, attempt, client pause): what to do at each event.
    private var state = ProxyExchangeState()
    private var upgradeHead: ProxyResponseHead?
    private var waitTimer: Scheduled<Void>?
    /// How the last attempt failed, the answer when no upstream is left to retry on.
    private var lastFailure: ProxyFailure?

    /// `host:port` of the upstream that answered (or was tried last).
    public private(set) var upstreamAddress: String?
    /// Nanoseconds from the start of the exchange to the upstream's response head.
    public private(set) var upstreamHeaderNanoseconds: UInt64?

    /// Pending body above this asks the client to pause until a connection takes it.
    static let pendingBodyLimit = 256 << 10

    init(route: ProxyRoute, loop: ProxyLoop, head: RequestHead, host: String?, chunked: Bool, client: ClientInfo,
         requestID: RequestID, downstream: any ProxyDownstream)
    {
        self.route = route
        self.loop = loop
        self.downstream = downstream
        clientHost = host
        self.chunked = chunked
        isWebSocket = HeaderRewriter.isWebSocketUpgrade(head) && head.version.minor >= 1 && head.version.major == 1
        idempotent = RetryPolicy.isIdempotent(head.method)
        replay = RequestBodyReplay(
            keeping: route.configuration.retries.tries > 1, limit: route.configuration.retries.buffer)
        clientHead = head
        self.client = client
        self.requestID = requestID
        upstreamPath = route.upstreamTarget(for: head.uri)
        switch route.configuration.balance {
        case .clientAddressHash: hashKey = client.address
        case .headerHash(let name): hashKey = head.headers.first(name: name)
        default: hashKey = nil
        }
    }

    // MARK: - Driven by the edge

    /// Starts the first attempt.
    public func start() {
        attempt()
    }

    /// A piece of the request body arrived from the client.
    public func requestBodyPart(_ buffer: ByteBuffer) {
        switch state.bodyPart(connected: connection != nil) {
        case .ignore, .drop:
            // Once the upstream answered (early, before the whole body), the rest of the body is dropped.
            return
        case .send:
            guard let connection else { return }
            send(buffer, on: connection)
            connection.flush()
            if !connection.isWritable {
                pauseClient()
                connection.setDeadline(after: route.writeTimeout)
            }
        case .queue:
            pendingBody.append(buffer)
            pendingBytes += buffer.readableBytes
            if pendingBytes > Self.pendingBodyLimit { pauseClient() }
        }
    }

    /// The client finished the request (with trailers, if any).
    public func requestEnd(trailers: HTTPHeaders?) {
        let action = state.requestDidEnd(connected: connection != nil)
        guard action != .ignore else { return }
        requestTrailers = trailers
        if action == .sendEnd, let connection {
            writeEnd(on: connection)
            connection.flush()
            connection.setDeadline(after: route.responseHeaderTimeout)
        }
    }

    /// The client caught up with the response: read from the upstream again.
    public func downstreamWritable() {
        guard let connection, !state.finished else { return }
        connection.setReadsPaused(false)
        connection.setDeadline(after: route.readTimeout)
    }

    /// The client went away or the edge gave up: drop the upstream side.
    public func cancel() {
        guard state.finish() else { return }
        waitTimer?.cancel()
        if let target { loop.removeWaiter(self, target: target) }
        if let connection {
            self.connection = nil
            connection.exchange = nil
            connection.close()
        }
        endAttempt()
        downstream = nil
    }

    // MARK: - Attempts

    private func attempt() {
        // Health windows are seconds long: the tick's time will do.
        let now = NIODeadline.progressNow
        let nowNanoseconds = now.uptimeNanoseconds
        let targets = route.targets
        let tried = self.tried
        let chosen = loop.withBalancerState(for: ObjectIdentifier(route), count: targets.count) { state -> Int? in
            let untried = Balancer.pick(
                route.configuration.balance, weights: route.weights, state: &state, key: hashKey,
                eligible: { !tried.contains($0) && targets[$0].isAvailable(now: nowNanoseconds) },
                active: { targets[$0].activeRequests.load(ordering: .relaxed) })
            if let untried { return untried }
            // Every healthy upstream was tried: a retry may go to one of them again (a stale pooled connection
            // on the only upstream, say); a fresh connection is taken below.
            guard !tried.isEmpty else { return nil }
            return Balancer.pick(
                route.configuration.balance, weights: route.weights, state: &state, key: hashKey,
                eligible: { targets[$0].isAvailable(now: nowNanoseconds) },
                active: { targets[$0].activeRequests.load(ordering: .relaxed) })
        }
        guard let index = chosen else {
            if let lastFailure {
                // Attempts were made and failed: their failure is the answer (502/504), not "nothing available".
                fail(lastFailure)
                return
            }
            fail(ProxyFailure(
                status: .serviceUnavailable, reason: "no healthy upstream is available",
                retryAfterSeconds: route.retryAfterSeconds(now: nowNanoseconds), responseStarted: false))
            return
        }
        let target = targets[index]
        self.tried.insert(index)
        attempts += 1
        self.target = target
        upstreamAddress = target.address.description
        target.requests.add(1, ordering: .relaxed)
        target.activeRequests.add(1, ordering: .relaxed)
        state.attemptStarted()
        acquire(target)
    }

    private func acquire(_ target: UpstreamTarget) {
        let fresh = state.takeFreshConnection()
        switch loop.acquire(
            target, settings: route.poolSettings, connectTimeout: route.connectTimeout, fresh: fresh, for: self)
        {
        case .reused(let connection):
            bind(connection)
        case .connecting(let future):
            let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
            future.whenComplete { result in bound.value.connected(result, target: target) }
        case .queued:
            let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
            waitTimer = loop.eventLoop.scheduleTask(in: route.connectTimeout) { bound.value.waitTimedOut(target) }
        case .refused:
            endAttempt()
            fail(ProxyFailure(
                status: .serviceUnavailable, reason: "the upstream is at its connection limit", retryAfterSeconds: 1,
                responseStarted: false))
        }
    }

    /// Called by the pool when a queued exchange gets a connection.
    func connectionAvailable(_ connection: UpstreamConnection) {
        waitTimer?.cancel()
        waitTimer = nil
        guard !state.finished else {
            loop.release(connection)
            return
        }
        bind(connection)
    }

    /// Called by the pool when a connection closed while this exchange waited: try to open one now.
    func retryAcquire() {
        waitTimer?.cancel()
        waitTimer = nil
        guard !state.finished, let target else { return }
        acquire(target)
    }

    private func waitTimedOut(_ target: UpstreamTarget) {
        waitTimer = nil
        guard !state.finished else { return }
        loop.removeWaiter(self, target: target)
        target.poolRejections.add(1, ordering: .relaxed)
        endAttempt()
        fail(ProxyFailure(
            status: .serviceUnavailable, reason: "no connection to the upstream became free in time",
            retryAfterSeconds: 1, responseStarted: false))
    }

    private func connected(_ result: Result<UpstreamConnection, any Error>, target: UpstreamTarget) {
        switch result {
        case .success(let connection):
            guard !state.finished else {
                loop.release(connection)
                return
            }
            bind(connection)
        case .failure(let error):
            guard !state.finished else { return }
            target.connectFailures.add(1, ordering: .relaxed)
            target.recordFailure(settings: route.configuration.passiveHealth, now: NIODeadline.now().uptimeNanoseconds)
            endAttempt()
            let handshake = error as? UpstreamHandshakeError
            let cause = handshake?.underlying ?? error
            let timedOut = (cause as? ChannelError).map { if case .connectTimeout = $0 { return true } else { return false } } ?? false
            let reason: String
            switch (handshake != nil, timedOut) {
            case (true, true): reason = "the upstream did not finish the TLS handshake in time"
            case (true, false): reason = "the TLS handshake with the upstream failed"
            case (false, true): reason = "the upstream did not accept the connection in time"
            case (false, false): reason = "the upstream refused the connection"
            }
            var failure = ProxyFailure(
                status: timedOut ? .gatewayTimeout : .badGateway, reason: reason, retryAfterSeconds: nil,
                responseStarted: false)
            failure.detail = handshake != nil
                ? "\(target.address): \(UserFacingError.describe(cause))"
                : UserFacingError.connecting(to: "\(target.address)", cause)
            retryOrFail(.connect(timedOut: timedOut), failure: failure)
        }
    }

    private func bind(_ connection: UpstreamConnection) {
        self.connection = connection
        connection.exchange = self
        let hostValue = target.map { route.hostValue(clientHost: clientHost, target: $0) } ?? clientHost ?? ""
        let head = loop.upstreamHeads.gather(minimumCapacity: 512) { buffer in
            HeaderRewriter.writeUpstreamRequest(
                clientHead, path: upstreamPath, hostValue: hostValue, client: client, requestID: requestID,
                webSocket: isWebSocket, chunked: chunked, underscores: route.configuration.underscoresInHeaders,
                rules: route.requestHeaders, into: &buffer)
        }
        // Matched by case: `==` on `HTTPMethod` is NIO's raw-value comparison, two strings per proxied request.
        connection.writeHead(head, isHeadRequest: clientHead.isHeadRequest)
        // A retry: the body sent on the failed attempt goes first.
        var body = replay.takeForRetry()
        if body.isEmpty { body = pendingBody } else { body += pendingBody }
        pendingBody.removeAll()
        pendingBytes = 0
        for part in body { send(part, on: connection) }
        if state.connectionBound() { writeEnd(on: connection) }
        // With the other answers and requests of this tick (``FlushCoalescer``): a bodiless request leaves here.
        connection.flush(atEndOfTick: loop.flushCoalescer)
        connection.setDeadline(after: route.responseHeaderTimeout)
        if connection.isWritable { resumeClient() }
    }

    private func send(_ part: ByteBuffer, on connection: UpstreamConnection) {
        replay.sent(part)
        guard chunked else {
            connection.write(part)
            return
        }
        var prefix = connection.allocator.buffer(capacity: 12)
        prefix.writeString(String(part.readableBytes, radix: 16))
        prefix.writeStaticString("\r\n")
        connection.write(prefix)
        connection.write(part)
        connection.write(ByteBuffer(staticString: "\r\n"))
    }

    /// Ends the request body: the last chunk and trailers when chunked, nothing otherwise.
    private func writeEnd(on connection: UpstreamConnection) {
        guard chunked else { return }
        var last = connection.allocator.buffer(capacity: 64)
        last.writeStaticString("0\r\n")
        for (name, value) in requestTrailers ?? [:] where HeaderRewriter.isForwardableTrailer(name) {
            last.writeString(name)
            last.writeStaticString(": ")
            last.writeString(value)
            last.writeStaticString("\r\n")
        }
        last.writeStaticString("\r\n")
        connection.write(last)
    }

    private func retryOrFail(_ kind: AttemptFailure, failure: ProxyFailure) {
        lastFailure = failure
        let progress = RetryPolicy.Progress(
            attempts: attempts, maxTries: route.configuration.retries.tries, elapsed: .now() - startedAt,
            window: route.retryWindow, responseStarted: state.responseStarted, bodyPartlySentUnbuffered: replay.sentUnkept,
            idempotent: idempotent)
        if RetryPolicy.mayRetry(after: kind, progress) {
            target?.retries.add(1, ordering: .relaxed)
            attempt()
        } else {
            fail(failure)
        }
    }

    /// The attempt on `target` is over (its in-flight count drops).
    private func endAttempt() {
        if state.attemptEnded(), let target {
            target.activeRequests.subtract(1, ordering: .relaxed)
        }
    }

    private func fail(_ failure: ProxyFailure) {
        guard state.finish() else { return }
        if let connection {
            self.connection = nil
            connection.exchange = nil
            connection.close()
        }
        report(failure)
        takeDownstream()?.proxyFailed(failure)
    }

    /// The downstream, for the exchange's last word to it: the exchange has ended and lets go of it.
    private func takeDownstream() -> (any ProxyDownstream)? {
        defer { downstream = nil }
        return downstream
    }

    /// One error-log line per failed exchange, as nginx writes to its error log: enough to find the request.
    private func report(_ failure: ProxyFailure) {
        loop.logger.warning(
            "proxy: \(failure.status.code) \(failure.reason)",
            metadata: [
                "request_id": "\(requestID)", "upstream": "\(upstreamAddress ?? "-")", "attempts": "\(attempts)",
                "method": "\(clientHead.method.rawValue)", "uri": "\(clientHead.uri)", "error": "\(failure.detail ?? "-")",
            ])
    }

    private func pauseClient() {
        if state.pauseClient() { downstream?.proxyRequestBody(paused: true) }
    }

    private func resumeClient() {
        if state.resumeClient() { downstream?.proxyRequestBody(paused: false) }
    }

    // MARK: - Driven by the upstream connection

    func upstreamEvent(_ event: UpstreamResponseParser.Event, from connection: UpstreamConnection) {
        guard !state.finished, connection === self.connection else { return }
        switch event {
        case .head(let head):
            upstreamHeaderNanoseconds = UInt64(max(0, (NIODeadline.now() - startedAt).nanoseconds))
            target?.recordSuccess()
            replay.answered()
            let upgrade = head.status == .switchingProtocols && isWebSocket
            state.responseHead(keepAlive: head.keepAlive, upgrade: upgrade)
            if upgrade {
                upgradeHead = head
                connection.setDeadline(nil)
                return
            }
            connection.setDeadline(after: route.readTimeout)
            downstream?.proxyResponseHead(head)
        case .upgraded:
            _ = state.finish()
            endAttempt()
            self.connection = nil
            connection.exchange = nil
            connection.markUpgraded()
            connection.setReadsPaused(true)
            guard let upgradeHead else {
                connection.close()
                downstream = nil
                return
            }
            let tunnel = ProxyTunnel(upstream: connection, idleTimeout: TimeAmount(route.configuration.webSocketIdleTimeout))
            takeDownstream()?.proxyUpgraded(upgradeHead, tunnel: tunnel)
        case .body(let buffer):
            connection.setDeadline(after: route.readTimeout, armingTimer: false)
            if downstream?.proxyResponseBody(buffer) == false {
                connection.setReadsPaused(true)
                connection.deadline = nil
            }
        case .end(let trailers):
            let actions = state.responseEnded(connectionReusable: connection.isReusable)
            endAttempt()
            self.connection = nil
            if actions.reuseConnection {
                loop.release(connection)
            } else {
                connection.exchange = nil
                connection.close()
            }
            if actions.resumeClient { downstream?.proxyRequestBody(paused: false) }
            takeDownstream()?.proxyResponseEnd(trailers: trailers)
        }
    }

    func upstreamReadComplete() {
        if state.responseStarted && !state.finished { downstream?.proxyResponseFlush() }
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        guard !state.finished, let connection else { return }
        if writable {
            if !state.responseStarted { connection.setDeadline(after: route.responseHeaderTimeout) }
            resumeClient()
        } else if !state.requestFullySent {
            pauseClient()
            connection.setDeadline(after: route.writeTimeout)
        }
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard !state.finished, connection === self.connection else { return }
        self.connection = nil
        endAttempt()
        if state.responseStarted {
            _ = state.finish()
            let failure = ProxyFailure(
                status: .badGateway, reason: "the upstream closed the connection in the middle of the response",
                retryAfterSeconds: nil, responseStarted: true)
            report(failure)
            takeDownstream()?.proxyFailed(failure)
            return
        }
        target?.resets.add(1, ordering: .relaxed)
        if connection.requestsServed > 1 {
            // A pooled connection that died before answering is most likely one the upstream closed while idle
            // (or a restarted upstream's): not a sign of a sick upstream, and its pool siblings are suspect too.
            // The retry takes a fresh connection, which tells the truth.
            state.pooledConnectionFailed()
        } else {
            target?.recordFailure(settings: route.configuration.passiveHealth, now: NIODeadline.now().uptimeNanoseconds)
        }
        // TLS 1.3 servers refuse a client certificate after the handshake, at the first read: say so.
        let refusedTLS = error.flatMap(UserFacingError.tlsProblem) != nil
        var failure = ProxyFailure(
            status: .badGateway,
            reason: refusedTLS ? "the upstream ended the TLS connection without answering"
                : "the upstream closed the connection without answering",
            retryAfterSeconds: nil, responseStarted: false)
        failure.detail = error.map(UserFacingError.describe)
        retryOrFail(.reset, failure: failure)
    }

    func upstreamTimedOut(_ connection: UpstreamConnection) {
        guard !state.finished, connection === self.connection else { return }
        target?.timeouts.add(1, ordering: .relaxed)
        target?.recordFailure(settings: route.configuration.passiveHealth, now: NIODeadline.now().uptimeNanoseconds)
        endAttempt()
        let started = state.responseStarted
        fail(ProxyFailure(
            status: .gatewayTimeout,
            reason: started ? "the upstream stopped sending the response" : "the upstream did not answer in time",
            retryAfterSeconds: nil, responseStarted: started))
    }
}
