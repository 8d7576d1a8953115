import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Serves every stream of an HTTP/2 connection from the connection's own pipeline, right after `NIOHTTP2Handler`.
///
/// swift-nio-http2 can give each stream a child channel with its own pipeline; creating, activating and tearing
/// those down cost about half of a small request in profiles. Here a stream is a ``RequestHandler`` object and a
/// tiny transport that stamps the stream ID on outgoing frames. This handler also does what the stream channels
/// would: it returns flow-control credit for request bodies, flushes once per read burst, closes an idle connection,
/// and on shutdown sends GOAWAY and closes when the last stream is done.
final class HTTP2ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private struct Stream {
        var handler: RequestHandler
        var transport: HTTP2StreamTransport
        var requestEnded = false
        /// Stream flow-control credit held back while the handler cannot take more body (a proxied upload whose
        /// upstream is slower than the client).
        var withheldCredit = 0
        /// How the request body is arriving; nil once it ended (or was refused).
        var body: BodyProgress?
    }

    private let makeHandler: () -> RequestHandler
    private let idleTimeout: TimeAmount
    private let bodyTimeout: UInt64
    private let bodyMinRate: Int
    private let sendTimeout: UInt64
    /// The periodic check of stream deadlines (body and send timeouts); runs while the connection has streams.
    private var sweep: Scheduled<Void>?
    private var streams: [HTTP2StreamID: Stream] = [:]
    private var context: ChannelHandlerContext?
    private var inReadBurst = false
    private var flushPending = false
    private var highestStreamID = HTTP2StreamID(0)
    private var quiescing = false
    private var idleSince: NIODeadline?
    private var idleCheck: Scheduled<Void>?

    private let connection: ConnectionInfo

    init(limits: Limits, connection: ConnectionInfo, makeHandler: @escaping () -> RequestHandler) {
        idleTimeout = TimeAmount(limits.idleTimeout)
        bodyTimeout = UInt64(max(TimeAmount(limits.bodyTimeout).nanoseconds, 1))
        bodyMinRate = limits.bodyMinRate
        sendTimeout = UInt64(max(TimeAmount(limits.sendTimeout).nanoseconds, 1))
        self.connection = connection
        self.makeHandler = makeHandler
    }

    /// Connection-level receive window opened at the start, so uploads are not held to the protocol's 64 KB default.
    static let connectionWindow = 4 << 20

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let increment = Self.connectionWindow - 65_535
        context.writeAndFlush(
            wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))),
            promise: nil)
        becameIdle(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        sweep?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        for stream in streams.values { stream.handler.streamClosed() }
        streams.removeAll()
        idleCheck?.cancel()
        sweep?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        let frame = unwrapInboundIn(data)
        let id = frame.streamID
        switch frame.payload {
        case .headers(let headers):
            if var stream = streams[id] {
                // Trailers.
                if headers.endStream && !stream.requestEnded {
                    stream.requestEnded = true
                    stream.body = nil
                    streams[id] = stream
                    var trailers = HTTPHeaders()
                    for (name, value, _) in headers.headers where !name.hasPrefix(":") {
                        trailers.add(name: name, value: value)
                    }
                    stream.handler.receive(.end(trailers.isEmpty ? nil : trailers))
                }
                return
            }
            guard !quiescing, var head = HTTP2ConnectionHandler.requestHead(headers.headers) else {
                context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.refusedStream))), promise: nil)
                flushPending = true
                return
            }
            if !headers.endStream && !head.headers.contains(name: "content-length") {
                // The HTTP/1.1 view of a body without a declared length (what a proxy sends upstream).
                head.headers.add(name: "transfer-encoding", value: "chunked")
            }
            if id > highestStreamID { highestStreamID = id }
            idleSince = nil
            let handler = makeHandler()
            let transport = HTTP2StreamTransport(streamID: id, connection: self, context: context)
            handler.attach(transport)
            streams[id] = Stream(
                handler: handler, transport: transport, requestEnded: headers.endStream,
                body: headers.endStream ? nil : BodyProgress(now: NIODeadline.now().uptimeNanoseconds))
            scheduleSweep(context: context)
            if connection.overCapacity && !quiescing {
                // Over the connection cap: this stream gets the 503, no other starts, and the connection closes
                // when it is done.
                quiescing = true
                let goAway = HTTP2Frame.FramePayload.goAway(lastStreamID: id, errorCode: .noError, opaqueData: nil)
                context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: goAway)), promise: nil)
                flushPending = true
            }
            handler.receive(.head(head))
            if headers.endStream { handler.receive(.end(nil)) }
        case .data(let payload):
            let credit = payload.data.readableBytes + (payload.paddingBytes.map { $0 + 1 } ?? 0)
            if credit > 0 {
                // Connection credit goes straight back (one slow stream must not stall the others); stream credit
                // too, unless the stream's handler asked to pause, in which case it waits for `releaseCredit`.
                context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: credit))), promise: nil)
                if !payload.endStream, var stream = streams[id] {
                    if stream.handler.requestBodyPaused {
                        stream.withheldCredit += credit
                        streams[id] = stream
                    } else {
                        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: credit))), promise: nil)
                    }
                }
                flushPending = true
            }
            guard var stream = streams[id] else { return }
            let ends = payload.endStream && !stream.requestEnded
            if ends {
                stream.requestEnded = true
                stream.body = nil
            } else {
                stream.body?.received(credit, now: NIODeadline.now().uptimeNanoseconds)
            }
            streams[id] = stream
            if case .byteBuffer(let buffer) = payload.data, buffer.readableBytes > 0 {
                stream.handler.receive(.body(buffer))
            }
            if ends { stream.handler.receive(.end(nil)) }
        case .rstStream:
            if let stream = streams.removeValue(forKey: id) {
                stream.handler.streamClosed()
                streamRemoved(context: context)
            }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if streams.isEmpty {
                goAwayAndClose(context: context)
            } else {
                // Stop new streams now; the last stream to finish sends the final GOAWAY and closes.
                let goAway = HTTP2Frame.FramePayload.goAway(lastStreamID: highestStreamID, errorCode: .noError, opaqueData: nil)
                context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: goAway)), promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Stream-level errors (a malformed header block, say) arrive here; NIOHTTP2Handler has already reset the
        // stream or the connection as the protocol requires.
        if let streamError = error as? NIOHTTP2Errors.StreamError, let stream = streams.removeValue(forKey: streamError.streamID) {
            stream.handler.streamClosed()
            streamRemoved(context: context)
            return
        }
        context.close(promise: nil)
    }

    // MARK: - Called by stream transports

    /// Flushes now, or at the end of the current read burst when one is under way (so a burst of requests is
    /// answered with one write).
    func flushSoon() {
        guard let context else { return }
        if inReadBurst { flushPending = true } else { context.flush() }
    }

    /// The stream's handler takes body again: return the credit held back.
    func releaseCredit(_ id: HTTP2StreamID) {
        guard let context, var stream = streams[id], stream.withheldCredit > 0, !stream.requestEnded else { return }
        let credit = stream.withheldCredit
        stream.withheldCredit = 0
        streams[id] = stream
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: credit))), promise: nil)
        flushSoon()
    }

    func streamFinished(_ id: HTTP2StreamID) {
        guard let context, streams.removeValue(forKey: id) != nil else { return }
        streamRemoved(context: context)
    }

    private func streamRemoved(context: ChannelHandlerContext) {
        guard streams.isEmpty else { return }
        if quiescing {
            goAwayAndClose(context: context)
        } else {
            becameIdle(context: context)
        }
    }

    /// Sends GOAWAY naming the last stream that was served and closes once it (and everything before it) has left.
    /// On shutdown this is the second GOAWAY, after the one that stopped new streams, as RFC 9113 §6.8 suggests.
    private func goAwayAndClose(context: ChannelHandlerContext) {
        let goAway = HTTP2Frame.FramePayload.goAway(lastStreamID: highestStreamID, errorCode: .noError, opaqueData: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: goAway)))
            .whenComplete { _ in bound.value.close(promise: nil) }
    }

    // MARK: - Stream deadlines

    /// How often stream deadlines are checked: a quarter of the shorter timeout, between 100 ms and 5 s.
    private var sweepInterval: TimeAmount {
        .nanoseconds(Int64(min(max(min(bodyTimeout, sendTimeout) / 4, 100_000_000), 5_000_000_000)))
    }

    private func scheduleSweep(context: ChannelHandlerContext) {
        guard sweep == nil else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleTask(in: sweepInterval) { bound.value.sweepFired() }
    }

    /// Refuses request bodies that stalled or trickle (408, as on HTTP/1.1) and resets streams whose response has
    /// made no progress for `send_timeout` (a client that never opens its flow-control window must not hold a
    /// file, buffers or an upstream connection).
    private func sweepFired() {
        sweep = nil
        guard let context, !streams.isEmpty else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        var slowBodies: [(RequestHandler, BodyProgress.Verdict)] = []
        var stalledSends: [HTTP2StreamID] = []
        for (id, stream) in streams {
            if stream.body != nil {
                if stream.handler.requestBodyPaused {
                    // Not read for now (the upstream is slower): pause time is not the client's.
                    streams[id]?.body = BodyProgress(now: now)
                } else if let verdict = stream.body?.verdict(now: now, timeout: bodyTimeout, minRate: bodyMinRate) {
                    streams[id]?.body = nil
                    slowBodies.append((stream.handler, verdict))
                    continue
                }
            }
            if stream.handler.sendStalled(now: now, timeout: sendTimeout) { stalledSends.append(id) }
        }
        for (handler, verdict) in slowBodies {
            GatewayMetrics.shared.bodyTimeouts.increment()
            handler.requestBodyRefused(verdict)
        }
        for id in stalledSends {
            guard let stream = streams.removeValue(forKey: id) else { continue }
            GatewayMetrics.shared.sendTimeouts.increment()
            context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.cancel))), promise: nil)
            stream.handler.streamClosed()
        }
        if !stalledSends.isEmpty {
            context.flush()
            streamRemoved(context: context)
        }
        if !streams.isEmpty { scheduleSweep(context: context) }
    }

    /// Starts (lazily) the idle timer: a connection without streams for `idleTimeout` is closed with GOAWAY.
    private func becameIdle(context: ChannelHandlerContext) {
        idleSince = .now()
        guard idleCheck == nil else { return }
        scheduleIdleCheck(after: idleTimeout, context: context)
    }

    private func scheduleIdleCheck(after delay: TimeAmount, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(in: delay) { bound.value.idleCheckFired() }
    }

    private func idleCheckFired() {
        idleCheck = nil
        guard let context else { return }
        guard let idleSince, streams.isEmpty else { return }
        let due = idleSince + idleTimeout
        let now = NIODeadline.now()
        if due > now {
            scheduleIdleCheck(after: due - now, context: context)
            return
        }
        goAwayAndClose(context: context)
    }

    /// The HTTP/1-style head of a request header block; nil when a required pseudo-header is missing.
    static func requestHead(_ block: HPACKHeaders) -> HTTPRequestHead? {
        var method: String?
        var path: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": headers.add(name: "host", value: value)
                default: break
                }
            } else {
                headers.add(name: name, value: value)
            }
        }
        guard let method, let path else { return nil }
        return HTTPRequestHead(version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
    }
}

/// One stream's view of its connection: frames go out with the stream's ID.
final class HTTP2StreamTransport: ExchangeTransport {
    let streamID: HTTP2StreamID
    /// Weak: a file still streaming when the connection goes away must not keep it, or crash on it.
    private weak var connection: HTTP2ConnectionHandler?
    private let context: ChannelHandlerContext

    init(streamID: HTTP2StreamID, connection: HTTP2ConnectionHandler, context: ChannelHandlerContext) {
        self.streamID = streamID
        self.connection = connection
        self.context = context
    }

    var eventLoop: any EventLoop { context.eventLoop }
    var channel: any Channel { context.channel }

    func write(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        // HTTP/1.1 bytes have no place on an HTTP/2 connection; only the empty flush-marker write reaches here.
        promise?.succeed(())
    }

    func writeAndFlushWithFuture(_ data: NIOAny) -> EventLoopFuture<Void> {
        connection?.flushSoon()
        return context.eventLoop.makeSucceededVoidFuture()
    }

    func writeFrame(_ payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?) {
        context.write(NIOAny(HTTP2Frame(streamID: streamID, payload: payload)), promise: promise)
    }

    func writeAndFlushFrame(_ payload: HTTP2Frame.FramePayload) -> EventLoopFuture<Void> {
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.write(NIOAny(HTTP2Frame(streamID: streamID, payload: payload)), promise: promise)
        connection?.flushSoon()
        return promise.futureResult
    }

    func flush() { connection?.flushSoon() }

    func flushNow() { context.flush() }

    func writeWithFuture(_ data: NIOAny) -> EventLoopFuture<Void> {
        context.eventLoop.makeSucceededVoidFuture()
    }

    func closeExchange() {
        context.write(NIOAny(HTTP2Frame(streamID: streamID, payload: .rstStream(.cancel))), promise: nil)
        connection?.flushSoon()
        connection?.streamFinished(streamID)
    }

    /// Resumes the request body: returns withheld flow-control credit.
    func read() { connection?.releaseCredit(streamID) }

    func exchangeFinished() { connection?.streamFinished(streamID) }
}
