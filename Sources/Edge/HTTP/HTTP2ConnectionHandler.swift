import Clocks
import HTTP2Session
import HTTP1Parser
import NIOCore
import NIOHTTP1
import Static

/// Serves an HTTP/2 connection through libnghttp2 (``HTTP2ServerSession``): the TLS layer's bytes go in, each
/// request stream becomes a ``RequestHandler`` with an ``HTTP2ResponseWriter``, and what the session has to send goes out
/// once per read burst.
///
/// Besides the protocol (which nghttp2 owns) this handler keeps what the connection promises its users: credit for
/// request bodies is returned as handlers take them, stream deadlines (body and send timeouts), the idle timeout,
/// and a graceful shutdown (GOAWAY, then close when the last stream is done).
final class HTTP2ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Stream {
        /// Holds the stream's writer (the connection keeps no second reference).
        var handler: RequestHandler
        var requestEnded = false
        /// Stream credit held back while the handler cannot take more body.
        var withheldCredit = 0
        var body: BodyProgress?
    }

    /// The protocol engine; stream writers submit their responses to it.
    let session: HTTP2ServerSession
    private let makeHandler: () -> RequestHandler
    private let connection: ConnectionInfo
    private let loop: LoopContext
    private let idleTimeout: TimeAmount
    private let maxHeaderListSize: Int
    private var deadlines: StreamDeadlines
    private var streams: [Int32: Stream] = [:]
    private var context: ChannelHandlerContext?
    private var inReadBurst = false
    private var outputPending = false
    private var writingOutput = false
    private var outputAgain = false
    private var quiescing = false
    private var closing = false
    private var idleSince: NIODeadline?
    private var idleCheck: Scheduled<Void>?
    private var sweep: Scheduled<Void>?

    init(limits: Limits, connection: ConnectionInfo, loop: LoopContext, makeHandler: @escaping () -> RequestHandler) {
        session = HTTP2ServerSession(settings: .init(
            maxConcurrentStreams: limits.http2MaxConcurrentStreams,
            maxHeaderListSize: limits.http2MaxHeaderListSize,
            initialWindowSize: 1 << 20,
            connectionWindowSize: Self.connectionWindow))
        idleTimeout = TimeAmount(limits.idleTimeout)
        maxHeaderListSize = limits.http2MaxHeaderListSize
        deadlines = StreamDeadlines(limits: limits)
        self.connection = connection
        self.loop = loop
        self.makeHandler = makeHandler
    }

    /// Connection-level receive window opened at the start, so uploads are not held to the protocol's 64 KB default.
    static let connectionWindow = 4 << 20

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writeOutput(context: context, flush: true)
        becameIdle(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        sweep?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        for stream in streams.values { stream.handler.streamClosed() }
        streams.removeAll()
        // Pending writes hold their streams' files and this handler (through their callbacks); failing them breaks
        // that cycle and closes the files.
        session.abandonAllStreams()
        idleCheck?.cancel()
        sweep?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        inReadBurst = true
        let events: [HTTP2ServerSession.Event]
        do {
            events = try session.receive(unwrapInboundIn(data))
        } catch {
            // nghttp2 queued a GOAWAY naming the error: send it, then close.
            closeAfterOutput(context: context)
            return
        }
        handle(events, context: context)
        outputPending = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        if outputPending {
            outputPending = false
            writeOutput(context: context, flush: true)
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if streams.isEmpty {
                session.goAway()
            } else {
                // Stop new streams now; the last stream to finish sends the final GOAWAY.
                session.announceShutdown()
            }
            writeOutput(context: context, flush: true)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: - Session events

    private func handle(_ events: [HTTP2ServerSession.Event], context: ChannelHandlerContext) {
        for event in events {
            switch event {
            case .request(let id, let fields, let endStream):
                startStream(id, fields: fields, endStream: endStream, context: context)
            case .headerListTooLarge(let id, let endStream):
                refuseOversizedHead(id, endStream: endStream, context: context)
            case .trailers(let id, let fields):
                guard var stream = streams[id], !stream.requestEnded else { continue }
                stream.requestEnded = true
                stream.body = nil
                streams[id] = stream
                var trailers = HTTPHeaders()
                for field in fields where field.name.utf8.first != UInt8(ascii: ":") {
                    trailers.add(name: field.name, value: field.value)
                }
                stream.handler.receive(RequestPart.end(trailers.isEmpty ? nil : trailers))
            case .body(let id, let buffer):
                guard var stream = streams[id] else {
                    session.consume(buffer.readableBytes, on: id)
                    continue
                }
                if stream.handler.requestBodyPaused {
                    stream.withheldCredit += buffer.readableBytes
                } else {
                    session.consume(buffer.readableBytes, on: id)
                }
                stream.body?.received(buffer.readableBytes, now: ProgressClock.now())
                streams[id] = stream
                stream.handler.receive(RequestPart.body(buffer))
            case .end(let id):
                guard var stream = streams[id], !stream.requestEnded else { continue }
                stream.requestEnded = true
                stream.body = nil
                streams[id] = stream
                stream.handler.receive(RequestPart.end(nil))
            case .closed(let id, _):
                if let stream = streams.removeValue(forKey: id) {
                    stream.handler.streamClosed()
                    streamRemoved(context: context)
                }
            }
        }
    }

    private func startStream(_ id: Int32, fields: [HTTP2ServerSession.Field], endStream: Bool, context: ChannelHandlerContext) {
        guard !quiescing, let (head, summary) = Self.requestHead(fields, endStream: endStream) else {
            session.reset(stream: id, code: .refusedStream)
            return
        }
        let handler = openStream(id, requestEnded: endStream, context: context)
        if connection.overCapacity && !quiescing {
            // Over the connection cap: this stream gets the 503, no other starts, and the connection closes when
            // it is done.
            quiescing = true
            session.goAway()
        }
        handler.receive(RequestPart.head(head, summary))
        if endStream { handler.receive(RequestPart.end(nil)) }
    }

    /// A request whose header list was over the bound: 431 with its reason, as on HTTP/1.1.
    private func refuseOversizedHead(_ id: Int32, endStream: Bool, context: ChannelHandlerContext) {
        guard !quiescing else {
            session.reset(stream: id, code: .refusedStream)
            return
        }
        openStream(id, requestEnded: endStream, context: context)
            .refuseHeaderListTooLarge(limit: maxHeaderListSize, requestEnded: endStream)
    }

    /// A new stream's handler, attached to its writer and tracked for deadlines (a body still to come is timed
    /// from now).
    @discardableResult
    private func openStream(_ id: Int32, requestEnded: Bool, context: ChannelHandlerContext) -> RequestHandler {
        idleSince = nil
        let handler = makeHandler()
        handler.attach(HTTP2ResponseWriter(streamID: id, connection: self, context: context, loop: loop))
        streams[id] = Stream(
            handler: handler, requestEnded: requestEnded,
            body: requestEnded ? nil : BodyProgress(now: ProgressClock.now()))
        scheduleSweep(context: context)
        return handler
    }

    /// The HTTP/1-style head of a request's fields (nghttp2 has checked the pseudo-header rules) and its summary,
    /// made in one pass (the summary keeps the fields' own strings). A body without a declared length gets
    /// `Transfer-Encoding: chunked`: the HTTP/1.1 view of it (what a proxy sends upstream).
    static func requestHead(_ fields: [HTTP2ServerSession.Field], endStream: Bool) -> (RequestHead, RequestHeaderSummary)? {
        var method: String?
        var path: String?
        var byteCount = 0
        for field in fields { byteCount += field.name.utf8.count + field.value.utf8.count }
        var headers = RequestFields.Builder(byteCount: byteCount + 26, fieldCount: fields.count + 1)
        var summary = RequestHeaderSummary()
        for field in fields {
            if field.name.utf8.first == UInt8(ascii: ":") {
                switch field.name {
                case ":method": method = field.value
                case ":path": path = field.value
                case ":authority":
                    headers.add(name: "host", value: field.value)
                    summary.add(name: "host".utf8, value: field.value)
                default: break
                }
            } else {
                headers.add(name: field.name, value: field.value)
                summary.add(name: field.name.utf8, value: field.value)
            }
        }
        guard let method, let path else { return nil }
        if !endStream && summary.contentLength == nil {
            headers.add(name: "transfer-encoding", value: "chunked")
            summary.add(name: "transfer-encoding".utf8, value: "chunked")
        }
        // An HTTP/2 connection outlives its streams: keep-alive is the protocol's.
        return (
            RequestHead(version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: headers.finish(), keepAlive: true),
            summary)
    }

    // MARK: - Output

    /// Writes what the session has to send; closes the connection once the session is over. Re-entrant calls
    /// (a completed write whose callback submits more) are folded into the running one.
    private func writeOutput(context: ChannelHandlerContext, flush: Bool) {
        if writingOutput {
            outputAgain = true
            return
        }
        writingOutput = true
        defer { writingOutput = false }
        repeat {
            outputAgain = false
            writeOutputOnce(context: context, flush: flush)
        } while outputAgain && !closing
    }

    private func writeOutputOnce(context: ChannelHandlerContext, flush: Bool) {
        if let (bytes, promises) = session.output(allocator: context.channel.allocator) {
            if promises.isEmpty {
                context.write(wrapOutboundOut(bytes), promise: nil)
            } else {
                let written = context.eventLoop.makePromise(of: Void.self)
                context.write(wrapOutboundOut(bytes), promise: written)
                for promise in promises { written.futureResult.cascade(to: promise) }
            }
            // Not coalesced to the end of the tick (``FlushCoalescer``) as HTTP/1.1 answers are: h2-1k took 8% less
            // CPU that way, but under abuse.py's SETTINGS flood the process kept 10–20 MB more after the attack.
            if flush { context.flush() }
        }
        if session.hasResetsDue {
            // In a write of its own, after the response's.
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { bound.value.outputSoon() }
        }
        let late = session.takeEvents()
        if !late.isEmpty { handle(late, context: context) }
        if !session.isAlive && !closing {
            closing = true
            context.flush()
            context.close(promise: nil)
        }
    }

    private func closeAfterOutput(context: ChannelHandlerContext) {
        writeOutputOnce(context: context, flush: true)
        if !closing {
            closing = true
            context.close(promise: nil)
        }
    }

    // MARK: - Called by stream writers

    /// Sends now, or at the end of the current read burst (so a burst of requests is answered with one write).
    func outputSoon() {
        guard let context else { return }
        if inReadBurst { outputPending = true } else { writeOutput(context: context, flush: true) }
    }

    /// The stream's handler takes body again: return the credit held back.
    func releaseCredit(_ id: Int32) {
        guard var stream = streams[id], stream.withheldCredit > 0, !stream.requestEnded else { return }
        let credit = stream.withheldCredit
        stream.withheldCredit = 0
        streams[id] = stream
        session.consume(credit, on: id)
        outputSoon()
    }

    /// Whether the stream is still served (not reset, closed or finished).
    func isOpen(_ id: Int32) -> Bool { streams[id] != nil }

    func streamFinished(_ id: Int32) {
        guard let context, streams.removeValue(forKey: id) != nil else { return }
        streamRemoved(context: context)
    }

    private func streamRemoved(context: ChannelHandlerContext) {
        guard streams.isEmpty else { return }
        if quiescing {
            session.goAway()
            outputSoon()
        } else {
            becameIdle(context: context)
        }
    }

    // MARK: - Deadlines

    private func scheduleSweep(context: ChannelHandlerContext) {
        guard sweep == nil else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleTask(in: deadlines.sweepInterval) { bound.value.sweepFired() }
    }

    /// Refuses request bodies that stalled or trickle (408, as on HTTP/1.1) and resets streams whose response has
    /// made no progress for `send_timeout`.
    private func sweepFired() {
        sweep = nil
        guard let context, !streams.isEmpty else { return }
        let now = ProgressClock.now()
        var slowBodies: [(RequestHandler, BodyProgress.Verdict)] = []
        var stalledSends: [Int32] = []
        for (id, stream) in streams {
            if stream.body != nil {
                if stream.handler.requestBodyPaused {
                    streams[id]?.body = BodyProgress(now: now)
                } else if let verdict = stream.body?.verdict(now: now, timeout: deadlines.bodyTimeout, minRate: deadlines.bodyMinRate) {
                    streams[id]?.body = nil
                    slowBodies.append((stream.handler, verdict))
                    continue
                }
            }
            if stream.handler.sendStalled(now: now, timeout: deadlines.sendTimeout) { stalledSends.append(id) }
        }
        for (handler, verdict) in slowBodies {
            GatewayMetrics.shared.bodyTimeouts.increment()
            handler.requestBodyRefused(verdict)
        }
        for id in stalledSends {
            guard let stream = streams.removeValue(forKey: id) else { continue }
            GatewayMetrics.shared.sendTimeouts.increment()
            session.reset(stream: id, code: .cancel)
            stream.handler.streamClosed()
        }
        if !stalledSends.isEmpty {
            streamRemoved(context: context)
            outputSoon()
        }
        if !streams.isEmpty { scheduleSweep(context: context) }
    }

    private func becameIdle(context: ChannelHandlerContext) {
        idleSince = .uptimeNanoseconds(ProgressClock.now())
        guard idleCheck == nil else { return }
        scheduleIdleCheck(after: idleTimeout, context: context)
    }

    private func scheduleIdleCheck(after delay: TimeAmount, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(in: delay) { bound.value.idleCheckFired() }
    }

    private func idleCheckFired() {
        idleCheck = nil
        guard let context, let idleSince, streams.isEmpty else { return }
        let due = idleSince + idleTimeout
        let now = NIODeadline.now()
        if due > now {
            scheduleIdleCheck(after: due - now, context: context)
            return
        }
        session.goAway()
        writeOutput(context: context, flush: true)
    }
}

/// The stream deadlines an HTTP/2 connection enforces, from the limits.
struct StreamDeadlines {
    let bodyTimeout: UInt64
    let bodyMinRate: Int
    let sendTimeout: UInt64

    init(limits: Limits) {
        bodyTimeout = UInt64(max(TimeAmount(limits.bodyTimeout).nanoseconds, 1))
        bodyMinRate = limits.bodyMinRate
        sendTimeout = UInt64(max(TimeAmount(limits.sendTimeout).nanoseconds, 1))
    }

    /// How often stream deadlines are checked: a quarter of the shorter timeout, between 100 ms and 5 s.
    var sweepInterval: TimeAmount {
        .nanoseconds(Int64(min(max(min(bodyTimeout, sendTimeout) / 4, 100_000_000), 5_000_000_000)))
    }
}
