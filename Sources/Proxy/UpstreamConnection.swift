import Clocks
import FlushCoalescing
import NIOCore
import NIOHTTP1
import NIOTLS

/// One keep-alive HTTP/1.1 connection to an upstream, the only handler of its pipeline (behind NIOSSL's client
/// handler for an `https://` upstream): it writes request bytes the exchange serialized and parses responses with
/// ``UpstreamResponseParser`` (no codec handlers, no boxed parts).
/// It serves one ``ProxyExchange`` at a time and sits in its loop's pool between exchanges.
///
/// It also owns the exchange's timer: one scheduled task per connection, re-armed only when it fires early, so
/// moving a deadline on every read or write costs a store instead of a timer.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let target: UpstreamTarget
    let pool: PoolSettingsKey
    /// The loop's pool this connection returns to.
    unowned let home: ProxyLoop
    private(set) var context: ChannelHandlerContext?
    /// The exchange being served; nil while idle in the pool.
    var exchange: ProxyExchange?
    /// When the connection went idle (for the pool's idle sweep).
    var idleSince = NIODeadline.now()
    private(set) var isClosed = false
    /// False once the upstream sent bytes past the end of a response: the connection cannot be trusted again.
    private(set) var isReusable = true
    private var parser = UpstreamResponseParser()
    /// Bytes received but not parsed yet (a partial head or chunk line); after an upgrade, the tunnel's first bytes.
    private var unparsed: ByteBuffer?
    /// Reads held while the client does not keep up with the response.
    private var readsPaused = false
    private var readPending = false

    /// When the current exchange's phase times out; nil while nothing is awaited from the upstream.
    var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerDue: NIODeadline?

    /// Over TLS: settled when the handshake completes or fails; the connection joins the pool only after it.
    private var handshake: EventLoopPromise<Void>?
    /// How the handshake ended, when it ended before anyone waited for it.
    private var handshakeOutcome: Result<Void, UpstreamHandshakeError>?

    init(target: UpstreamTarget, pool: PoolSettingsKey, home: ProxyLoop) {
        self.target = target
        self.pool = pool
        self.home = home
    }

    /// Succeeds once the connection can carry a request: at once in plain HTTP, after the handshake over TLS. A
    /// failed handshake fails it (with ``UpstreamHandshakeError``) and closes the connection.
    func ready(within timeout: TimeAmount) -> EventLoopFuture<Void> {
        guard let context else { return home.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        guard target.tls != nil else { return context.eventLoop.makeSucceededVoidFuture() }
        if let handshakeOutcome { return context.eventLoop.makeCompletedFuture(handshakeOutcome.mapError { $0 }) }
        let promise = handshake ?? context.eventLoop.makePromise()
        handshake = promise
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: timeout) {
            bound.value.handshakeEnded(.failure(ChannelError.connectTimeout(timeout)))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    private func handshakeEnded(_ result: Result<Void, any Error>) {
        guard target.tls != nil, handshakeOutcome == nil else { return }
        let outcome = result.mapError { UpstreamHandshakeError(underlying: $0) }
        handshakeOutcome = outcome
        if case .failure = outcome {
            isReusable = false
            context?.close(promise: nil)
        }
        handshake?.completeWith(outcome.mapError { $0 })
        handshake = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            handshakeEnded(.success(()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    var channel: (any Channel)? { context?.channel }
    var isWritable: Bool { context?.channel.isWritable ?? false }
    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    // MARK: Writing

    /// Requests written on this connection so far; above 1 it came from the pool.
    private(set) var requestsServed = 0

    /// Writes a serialized request head; its response is parsed next.
    func writeHead(_ bytes: ByteBuffer, isHeadRequest: Bool) {
        requestsServed += 1
        parser.expectResponse(toHead: isHeadRequest)
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    /// Flushes once the loop has handled the rest of its tick (``FlushCoalescer``).
    func flush(atEndOfTick coalescer: FlushCoalescer) {
        if let context { coalescer.flushAtEndOfTick(context.channel) }
    }

    func close() {
        guard !isClosed else { return }
        context?.close(promise: nil)
    }

    // MARK: Reading and backpressure

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffered = unparsed {
            unparsed = nil
            buffered.writeBuffer(&incoming)
            parse(&buffered)
        } else {
            parse(&incoming)
        }
    }

    private func parse(_ buffer: inout ByteBuffer) {
        do {
            while let exchange, let event = try parser.next(&buffer) {
                if case .end = event, buffer.readableBytes > 0 {
                    // More bytes than the response framed: never reuse this connection.
                    isReusable = false
                }
                exchange.upstreamEvent(event, from: self)
                if case .upgraded = event { break }
            }
            if buffer.readableBytes > 0 {
                if exchange == nil && !parser.isBusy && !isUpgraded {
                    throw UpstreamResponseParser.ParseError(description: "bytes from the upstream with no request outstanding")
                }
                unparsed = buffer
            }
        } catch {
            failed(error)
        }
    }

    /// Set once a 101 went to the exchange: the connection is about to become a tunnel.
    private(set) var isUpgraded = false

    func markUpgraded() {
        isUpgraded = true
    }

    /// Bytes that came after the 101 head (the tunnel's first), handed over once.
    func takeUnparsed() -> ByteBuffer? {
        defer { unparsed = nil }
        return unparsed
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
            return
        }
        context.read()
    }

    /// Stops or resumes reading the response (the client is slower than the upstream).
    func setReadsPaused(_ paused: Bool) {
        readsPaused = paused
        if !paused && readPending {
            readPending = false
            context?.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        exchange?.upstreamWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        handshakeEnded(.failure(ChannelError.eof))
        timer?.cancel()
        timer = nil
        target.openConnections.subtract(1, ordering: .relaxed)
        if let exchange, let end = parser.connectionClosed() {
            // A body that runs until the connection closes has ended.
            exchange.upstreamEvent(end, from: self)
        }
        let exchange = self.exchange
        self.exchange = nil
        exchange?.upstreamClosed(self, error: nil)
        home.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if target.tls != nil && handshakeOutcome == nil {
            handshakeEnded(.failure(error))
            return
        }
        failed(error)
    }

    private func failed(_ error: any Error) {
        isReusable = false
        let exchange = self.exchange
        self.exchange = nil
        exchange?.upstreamClosed(self, error: error)
        context?.close(promise: nil)
    }

    // MARK: Timer

    /// Moves the deadline to `timeout` from now, by ``ProgressClock`` (timeouts are seconds long; the tick's time
    /// will do). `armingTimer: false` only records it: a timer already armed finds it when it fires.
    func setDeadline(after timeout: TimeAmount, armingTimer: Bool = true) {
        let newDeadline = NIODeadline.progressNow + timeout
        if armingTimer { setDeadline(newDeadline) } else { deadline = newDeadline }
    }

    /// Moves the deadline; arms the timer only if none is due before it.
    func setDeadline(_ newDeadline: NIODeadline?) {
        deadline = newDeadline
        guard let newDeadline, let context else { return }
        if let timerDue, timerDue <= newDeadline { return }
        timer?.cancel()
        timerDue = newDeadline
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: newDeadline) { bound.value.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerDue = nil
        guard let deadline, context != nil else { return }
        if deadline > NIODeadline.now() {
            setDeadline(deadline)
            return
        }
        self.deadline = nil
        exchange?.upstreamTimedOut(self)
    }
}

/// A TLS handshake with an upstream that failed (or did not finish within the connect timeout): a connect failure,
/// since no request reached the upstream.
struct UpstreamHandshakeError: Error {
    var underlying: any Error
}

/// The pool settings a connection was opened under (idle limits differ per route).
struct PoolSettingsKey: Sendable {
    var maxIdle: Int
    var idleTimeout: TimeAmount
    var maxConnections: Int
}
