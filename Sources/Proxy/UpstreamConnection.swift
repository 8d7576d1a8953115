import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection to an upstream, last handler of its pipeline (after NIO's request encoder and
/// response decoder). It serves one ``ProxyExchange`` at a time and sits in its loop's pool between exchanges.
///
/// It also owns the exchange's timer: one scheduled task per connection, re-armed only when it fires early, so
/// moving a deadline on every read or write costs a store instead of a timer.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let target: UpstreamTarget
    let pool: PoolSettingsKey
    /// The loop's pool this connection returns to.
    unowned let home: ProxyLoop
    private(set) var context: ChannelHandlerContext?
    /// The exchange being served; nil while idle in the pool.
    var exchange: ProxyExchange?
    /// When the connection went idle (for the pool's idle sweep).
    var idleSince = NIODeadline.now()
    /// Exchanges served so far; the first one ran on a fresh connection.
    var served = 0
    private(set) var isClosed = false
    /// Reads held while the client does not keep up with the response.
    private var readsPaused = false
    private var readPending = false

    /// When the current exchange's phase times out; nil while nothing is awaited from the upstream.
    var deadline: NIODeadline?
    private var timer: Scheduled<Void>?
    private var timerDue: NIODeadline?

    init(target: UpstreamTarget, pool: PoolSettingsKey, home: ProxyLoop) {
        self.target = target
        self.pool = pool
        self.home = home
    }

    var channel: (any Channel)? { context?.channel }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    // MARK: Writing

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        guard !isClosed else { return }
        context?.close(promise: nil)
    }

    // MARK: Reading and backpressure

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if let exchange {
            exchange.upstreamRead(part, from: self)
        }
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
        timer?.cancel()
        timer = nil
        target.openConnections.subtract(1, ordering: .relaxed)
        let exchange = self.exchange
        self.exchange = nil
        if let exchange {
            exchange.upstreamClosed(self, error: nil)
        }
        home.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let exchange = self.exchange
        self.exchange = nil
        exchange?.upstreamClosed(self, error: error)
        context.close(promise: nil)
    }

    // MARK: Timer

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
        let now = NIODeadline.now()
        if deadline > now {
            setDeadline(deadline)
            return
        }
        self.deadline = nil
        exchange?.upstreamTimedOut(self)
    }
}

/// Identifies the pool settings a connection was opened under (idle limits differ per route).
struct PoolSettingsKey: Sendable {
    var maxIdle: Int
    var idleTimeout: TimeAmount
    var maxConnections: Int
}
