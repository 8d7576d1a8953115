import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Tracking

/// One `/tr/v1/ws` connection after its upgrade: whole messages (the aggregator joins fragments, bounded) become
/// events through ``WebSocketIngest``, recorded on this loop as a POST's would be; pings are answered, a close is
/// echoed, a quiescing gateway says "going away". Bounded: message size (the frame decoder and the aggregator), a
/// per-connection rate (a token bucket: messages over it are dropped and counted), and an idle deadline (no frame
/// for `idleTimeout` closes the connection).
final class WebSocketIngestHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let ingest: WebSocketIngest
    private let loop: LoopContext
    /// The opening request, as each message's POST is made from it.
    private let upgrade: APIRequest
    /// The opening request's own event fields, completing each message's events.
    private var template: TrackingEvent
    private let facts: RequestFacts
    private let idleTimeout: TimeAmount
    private let logger: Logger
    private var tokens = WebSocketIngest.burst
    private var refilledAt = NIODeadline.now()
    private var lastFrame = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var closing = false

    init(ingest: WebSocketIngest, loop: LoopContext, upgrade: APIRequest, template: TrackingEvent, facts: RequestFacts,
         logger: Logger, idleTimeout: TimeAmount = .minutes(10))
    {
        self.logger = logger
        self.ingest = ingest
        self.loop = loop
        self.upgrade = upgrade
        self.template = template
        self.facts = facts
        self.idleTimeout = idleTimeout
    }

    /// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
    static func acceptValue(forKey key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }

    /// Puts the frame decoder, the aggregator, the encoder and this handler into a pipeline after `previous`.
    func install(after previous: any ChannelHandler, in pipeline: ChannelPipeline.SynchronousOperations) throws {
        let frames = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: ingest.maxMessageBytes))
        let aggregator = NIOWebSocketFrameAggregator(
            minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 64, maxAccumulatedFrameSize: ingest.maxMessageBytes)
        let encoder = WebSocketFrameEncoder()
        // frames → aggregator → encoder (outbound, so it is between this handler and the socket) → this handler.
        try pipeline.addHandler(frames, position: .after(previous))
        try pipeline.addHandler(aggregator, position: .after(frames))
        try pipeline.addHandler(encoder, position: .after(aggregator))
        try pipeline.addHandler(self, position: .after(encoder))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        ingest.api.webSockets.open.add(1, ordering: .relaxed)
        armIdleTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ingest.api.webSockets.open.subtract(1, ordering: .relaxed)
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        lastFrame = .now()
        switch frame.opcode {
        case .text, .binary:
            receive(frame.unmaskedData, binary: frame.opcode == .binary)
        case .ping:
            send(.pong, data: frame.unmaskedData, context: context)
        case .pong:
            break
        case .connectionClose:
            // Echo the peer's code (RFC 6455 §5.5.1), then close.
            var data = frame.unmaskedData
            let code = data.readSlice(length: min(2, data.readableBytes)) ?? ByteBuffer()
            close(code: code, context: context)
        default:
            var code = context.channel.allocator.buffer(capacity: 2)
            code.write(webSocketErrorCode: .protocolError)
            close(code: code, context: context)
        }
    }

    private func receive(_ message: ByteBuffer, binary: Bool) {
        let counters = ingest.api.webSockets
        guard takeToken() else {
            counters.rateLimited.add(1, ordering: .relaxed)
            if counters.firstRateLimit() {
                logger.warning(
                    "websocket ingest: a connection sent more than \(Int(WebSocketIngest.messagesPerSecond)) messages a second (burst \(Int(WebSocketIngest.burst))); the messages over it are dropped and counted in vantage_websocket_ingest_messages_total{result=\"rate_limited\"} (logged once)")
            }
            return
        }
        guard let events = loop.events else { return }
        let now = Int64(loop.refreshClock())
        switch ingest.events(message: message, binary: binary, upgrade: upgrade, now: now, makeID: { events.nextID(unixMilliseconds: now) }) {
        case .success(let made):
            template.bytesIn = message.readableBytes
            for event in made {
                var completed = event.completed(byRequest: template)
                loop.enricher?.enrich(&completed, facts: facts)
                events.record(completed, nowMilliseconds: now)
            }
            counters.recorded.add(made.count, ordering: .relaxed)
        case .failure:
            counters.refused.add(1, ordering: .relaxed)
        }
    }

    /// The token bucket: refilled at the allowed rate, up to the burst.
    private func takeToken() -> Bool {
        let now = NIODeadline.now()
        let elapsed = Double((now - refilledAt).nanoseconds) / 1e9
        refilledAt = now
        tokens = min(WebSocketIngest.burst, tokens + elapsed * WebSocketIngest.messagesPerSecond)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            var code = context.channel.allocator.buffer(capacity: 2)
            code.write(webSocketErrorCode: .goingAway)
            close(code: code, context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Frame errors (too large, bad masking, bad fragments): say so in a close frame when it still can be sent.
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: error is NIOWebSocketFrameAggregator.Error ? .messageTooLarge : .protocolError)
        close(code: code, context: context)
    }

    private func send(_ opcode: WebSocketOpcode, data: ByteBuffer, context: ChannelHandlerContext) {
        guard !closing else { return }
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: opcode, data: data)), promise: nil)
    }

    private func close(code: ByteBuffer, context: ChannelHandlerContext) {
        guard !closing else { return }
        send(.connectionClose, data: code, context: context)
        closing = true
        context.close(promise: nil)
    }

    private func armIdleTimer(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(deadline: lastFrame + idleTimeout) {
            let (handler, context) = bound.value
            if NIODeadline.now() - handler.lastFrame >= handler.idleTimeout {
                var code = context.channel.allocator.buffer(capacity: 2)
                code.write(webSocketErrorCode: .goingAway)
                handler.close(code: code, context: context)
            } else {
                handler.armIdleTimer(context: context)
            }
        }
    }
}
