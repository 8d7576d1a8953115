import NIOCore

/// A WebSocket connection after the upgrade: bytes copied both ways between the client and upstream channels
/// (both on one event loop), with backpressure each way and an idle timeout. A tunnel keeps no reference to the
/// configuration, so it outlives reloads; on shutdown it closes when the server asks connections to quiesce.
public final class ProxyTunnel {
    private let upstream: UpstreamConnection
    private let idleTimeout: TimeAmount
    private var clientSide: TunnelHandler?
    private var upstreamSide: TunnelHandler?
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var closed = false

    private let upstreamChannel: (any Channel)?

    init(upstream: UpstreamConnection, idleTimeout: TimeAmount) {
        self.upstream = upstream
        upstreamChannel = upstream.channel
        self.idleTimeout = idleTimeout
    }

    /// The handler the edge puts in the client pipeline in place of its HTTP handlers, right after the request
    /// decoder (whose buffered bytes it then receives when the decoder is removed).
    public func makeClientHandler() -> any ChannelHandler {
        let handler = TunnelHandler(tunnel: self, isClient: true)
        clientSide = handler
        return handler
    }

    /// Switches the upstream pipeline to raw bytes and starts copying. Call after the client handler is in place.
    public func start() {
        guard let channel = upstream.channel else {
            clientSide?.close()
            return
        }
        // Created now so client bytes have somewhere to go; it holds them until it joins the pipeline.
        upstreamSide = TunnelHandler(tunnel: self, isClient: false)
        let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        // Rebuilt on the next tick: this runs inside the upstream connection's own read callback.
        channel.eventLoop.execute {
            let tunnel = bound.value
            guard let handler = tunnel.upstreamSide else { return }
            guard channel.isActive else {
                // The upstream hung up right after its 101.
                tunnel.close()
                return
            }
            do {
                let sync = channel.pipeline.syncOperations
                let early = tunnel.upstream.takeUnparsed()
                // Out first: it holds reads back, and would swallow the read the tunnel handler asks for.
                sync.removeHandler(tunnel.upstream, promise: nil)
                try sync.addHandler(handler)
                if let early, early.readableBytes > 0 {
                    // What the upstream sent right after its 101 goes to the client first.
                    tunnel.clientSide?.send(NIOAny(early))
                    tunnel.clientSide?.flushIfNeeded()
                }
            } catch {
                tunnel.close()
            }
        }
        armIdleTimer(on: channel.eventLoop)
    }

    fileprivate func peer(of handler: TunnelHandler) -> TunnelHandler? {
        handler === clientSide ? upstreamSide : clientSide
    }

    /// The upstream side closed: it no longer counts against the upstream's connection limit.
    fileprivate func upstreamClosedCount() {
        upstream.target.openConnections.subtract(1, ordering: .relaxed)
    }

    fileprivate func touched() {
        lastActivity = .now()
    }

    /// Closes both sides once what was written has left.
    public func close() {
        guard !closed else { return }
        closed = true
        idleTimer?.cancel()
        clientSide?.close()
        if let upstreamSide, upstreamSide.isAttached {
            upstreamSide.close()
        } else {
            upstreamChannel?.close(promise: nil)
        }
    }

    private func armIdleTimer(on eventLoop: any EventLoop) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        idleTimer = eventLoop.scheduleTask(deadline: lastActivity + idleTimeout) {
            let tunnel = bound.value
            guard !tunnel.closed else { return }
            if NIODeadline.now() - tunnel.lastActivity >= tunnel.idleTimeout {
                tunnel.close()
            } else {
                tunnel.armIdleTimer(on: eventLoop)
            }
        }
    }
}

/// One side of a ``ProxyTunnel``.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let tunnel: ProxyTunnel
    private let isClient: Bool
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var pendingFlush = false
    /// Bytes for this side that came before it joined its pipeline.
    private var early: [NIOAny] = []

    init(tunnel: ProxyTunnel, isClient: Bool) {
        self.tunnel = tunnel
        self.isClient = isClient
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if !early.isEmpty {
            for data in early { context.write(data, promise: nil) }
            early.removeAll()
            context.flush()
        }
        // The HTTP handlers this one replaces may have been holding reads back.
        context.read()
    }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    private var peer: TunnelHandler? { tunnel.peer(of: self) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel.touched()
        guard let peer else { return }
        peer.send(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peer?.flushIfNeeded()
        context.fireChannelReadComplete()
    }

    fileprivate func send(_ data: NIOAny) {
        guard let context else {
            early.append(data)
            return
        }
        context.write(data, promise: nil)
        pendingFlush = true
    }

    fileprivate func flushIfNeeded() {
        guard pendingFlush else { return }
        pendingFlush = false
        context?.flush()
    }

    /// Reads only while the other side can take what is read.
    func read(context: ChannelHandlerContext) {
        if let peer, !peer.isWritable {
            readPending = true
            return
        }
        context.read()
    }

    var isAttached: Bool { context != nil }

    fileprivate var isWritable: Bool { context?.channel.isWritable ?? true }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { peer?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    fileprivate func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isClient {
            // The upstream connection was counted open until now.
            tunnel.upstreamClosedCount()
        }
        tunnel.close()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            tunnel.close()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        tunnel.close()
    }

    /// Closes after everything written has left.
    func close() {
        guard let context else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(ByteBuffer())).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
