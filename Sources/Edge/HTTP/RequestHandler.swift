import ACME
import Config
import Foundation
import HTTP1Parser
import HeaderRules
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import RequestTarget
import Static
import Tracking

/// Answers HTTP requests on one HTTP/1.1 connection or one HTTP/2 stream: routing (``RequestRouter``), dispatch to
/// the route kind's answerer (``ExchangeResponder``), what each answer says, and its record (``ExchangeRecorder``).
/// Everything runs on the channel's event loop; disk work goes to the blocking pool through the static file server.
///
/// Answers go out through a ``ResponseWriter``, which frames them for the protocol. On HTTP/1.1 the handler sits right
/// after ``HTTP1RequestDecoder`` with an ``HTTP1ResponseWriter`` (response bytes go straight to the channel, skipping
/// NIO's encoder) and keeps pipelined requests in order, holding reads while a response is outstanding. On HTTP/2 one
/// handler serves one stream outside any pipeline, driven by ``HTTP2ConnectionHandler``, with an
/// ``HTTP2ResponseWriter``.
final class RequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = NIOAny
    typealias OutboundOut = ByteBuffer

    let core: GatewayCore
    let loop: LoopContext
    let connection: ConnectionInfo
    private let connectionGuard: ConnectionGuard?
    private let isHTTP2: Bool
    private var exchange: Exchange?
    /// Where answers go; set when the handler joins a pipeline (HTTP/1.1), or at creation for an HTTP/2 stream.
    private var writer: (any ResponseWriter)?
    /// HTTP/1.1: the handler's place in the pipeline, for what leaves HTTP (a WebSocket or an upgraded tunnel).
    private var channelContext: ChannelHandlerContext?
    /// HTTP/1.1: pipelined requests, held reads, closing and quiescing.
    private var pipeline = HTTP1Pipeline<RequestPart, RequestParser.Refusal>()
    /// A proxied request body is read no further until the upstream takes what it has.
    private(set) var requestBodyPaused = false
    private var closed = false

    init(core: GatewayCore, loop: LoopContext, connection: ConnectionInfo, connectionGuard: ConnectionGuard?,
         isHTTP2: Bool)
    {
        self.core = core
        self.loop = loop
        self.connection = connection
        self.connectionGuard = connectionGuard
        self.isHTTP2 = isHTTP2
    }

    func handlerAdded(context: ChannelHandlerContext) {
        channelContext = context
        writer = HTTP1ResponseWriter(context: context, loop: loop, connection: connection)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        (writer as? HTTP1ResponseWriter)?.stop()
        writer = nil
        channelContext = nil
    }

    /// Serves one HTTP/2 stream driven by ``HTTP2ConnectionHandler``, outside any pipeline.
    func attach(_ writer: HTTP2ResponseWriter) { self.writer = writer }

    /// Feeds a request part in NIO's types (tests).
    func receive(_ part: HTTPServerRequestPart) {
        receive(RequestPart(part))
    }

    /// Feeds a request part of the attached HTTP/2 stream.
    func receive(_ part: consuming RequestPart) {
        guard let writer else { return }
        process(part, writer: writer)
    }

    /// The HTTP/2 stream's body stalled or trickles: refused like an HTTP/1.1 body (408).
    func requestBodyRefused(_ verdict: BodyProgress.Verdict) {
        guard let writer else { return }
        refuse(.connectionGuard(verdict == .stalled ? .bodyTimeout : .bodyTooSlow), writer: writer)
    }

    /// Whether response writes have been waiting longer than `timeout` (nanoseconds) without any completing.
    func sendStalled(now: UInt64, timeout: UInt64) -> Bool {
        writer?.sendStalled(now: now, timeout: timeout) ?? false
    }

    /// The stream was reset or its connection closed: nothing more may be written.
    func streamClosed() {
        closed = true
        writer = nil
        exchange?.proxy?.cancel()
        exchange?.releaseLease()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        (writer as? HTTP1ResponseWriter)?.stop()
        exchange?.proxy?.cancel()
        exchange?.releaseLease()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { responseWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receiveHTTP1(RequestPart(unwrapInboundIn(data)))
    }

    /// Takes a request part of the HTTP/1.1 connection (from ``HTTP1RequestDecoder``, called directly): in order,
    /// after the exchange in flight (``HTTP1Pipeline``).
    func receiveHTTP1(_ part: consuming RequestPart) {
        let current = exchange
        let arrival = pipeline.received(
            part, afterCompleteRequest: current?.lifecycle.requestEnded ?? false,
            keepsConnection: current?.lifecycle.keepsConnection ?? true)
        guard arrival == .process, let writer else { return }
        process(part, writer: writer)
    }

    /// Parts are handed on, not copied (`consuming` down to the exchange): a copy of a head retained its target,
    /// its fields' storage and its summary's box, and left them shared, so a rewrite of the head in routing had to
    /// copy the storage.
    private func process(_ part: consuming RequestPart, writer: any ResponseWriter) {
        switch consume part {
        case .head(let head, let summary):
            begin(head, summary: summary, writer: writer)
        case .body(let body):
            guard let current = exchange else { return }
            current.bodyBytes += body.readableBytes
            if current.bodyBytes > current.bodyLimit {
                // Answered once; the connection closes after the answer, since the rest of the body will not be read.
                refuse(.bodyTooLarge(limit: current.bodyLimit), writer: writer)
                return
            }
            current.proxy?.requestBodyPart(body)
            if current.collectedBody != nil {
                var part = body
                current.collectedBody!.writeBuffer(&part)
            }
        case .end(let trailers):
            guard let current = exchange else { return }
            connectionGuard?.requestEnded()
            let action = current.lifecycle.requestDidEnd()
            guard action != .ignore else { return }
            current.proxy?.requestEnd(trailers: trailers)
            let pending = current.pending
            current.pending = nil
            if let route = pending {
                // Handlers in this module answer without reading the body, so they run once it has been
                // received (and counted against the limit): a client never gets an answer it is still uploading to.
                dispatch(route, writer: writer)
            } else if action == .complete {
                completeExchange(writer: writer)
            }
        }
    }

    /// Both directions of the exchange are done: forget it and move on to pipelined requests, if any.
    private func completeExchange(writer: any ResponseWriter) {
        exchange = nil
        writer.exchangeFinished()
        // The rest is HTTP/1.1's: a refusal of bytes after the request, pipelined requests, quiescing, reads held.
        switch pipeline.exchangeCompleted() {
        case .refuse(let refusal):
            refuse(.malformed(refusal), writer: writer)
            return
        case .stop:
            return
        case .serveQueued:
            break
        }
        while exchange == nil || exchange?.lifecycle.requestEnded == false, let next = pipeline.nextQueued() {
            process(next, writer: writer)
            if let current = exchange, current.lifecycle.requestEnded, !current.lifecycle.responseFinished { break }
        }
        switch pipeline.idle(exchangeInFlight: exchange != nil, bodyPaused: requestBodyPaused) {
        case .close: writer.closeAfterAnswer()
        case .resumeReads: writer.read()
        case .none: break
        }
    }

    /// Holds reads while pipelined requests wait their turn and while a proxied upload waits for its upstream
    /// (``HTTP1Pipeline/mayRead(bodyPaused:)``).
    func read(context: ChannelHandlerContext) {
        if pipeline.mayRead(bodyPaused: requestBodyPaused) { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let refusal = event as? ConnectionGuardRefusal {
            if let writer { refuse(.connectionGuard(refusal.rejection), writer: writer) }
            return
        }
        if event is ChannelShouldQuiesceEvent {
            // HTTP/1.1 connections only: an HTTP/2 connection's handler sends GOAWAY.
            if pipeline.quiesce(idle: exchange == nil) { writer?.closeAfterAnswer() }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - Routing

    private func begin(_ head: consuming RequestHead, summary: consuming RequestHeaderSummary, writer: any ResponseWriter) {
        let snapshot = connection.snapshots.current
        let current = Exchange(
            head: head, headers: summary, snapshot: snapshot, startNanoseconds: NIODeadline.now().uptimeNanoseconds,
            bodyLimit: snapshot.limits.maxBodySize, keepAlive: isHTTP2 || head.isKeepAlive)
        exchange = current
        connectionGuard?.requestHeadReceived(expectsBody: current.headers.hasTransferEncoding
            || (current.headers.contentLength.flatMap(Int.init) ?? 0) > 0)
        if !isHTTP2 && current.headers.hasUpgrade {
            // The decoder stops at an upgrade request: unless a WebSocket tunnel takes the connection over, it
            // closes after the answer.
            current.lifecycle.closeConnectionAfterAnswer()
        }
        let router = RequestRouter(snapshot: snapshot, connection: connection, challenges: core.acmeChallenges, isHTTP2: isHTTP2)
        // Routed in place: the facts read the head and fields being routed, never the exchange's own copies.
        let outcome = router.route(
            &current.head, headers: &current.headers, facts: { head, headers in facts(current, head: head, headers: headers) },
            scratch: loop.rewriteScratch, nowMilliseconds: { Int64(loop.refreshClock()) })
        current.originalTarget = outcome.originalTarget
        current.rateLimitFlag = outcome.rateLimitFlag
        if let site = outcome.site {
            current.site = site
            current.responseHeaders = site.responseHeaders
        }
        if let route = outcome.route {
            current.route = route
            current.responseHeaders = route.responseHeaders
            current.bodyLimit = route.maxBodySize
        }
        switch outcome.decision {
        case .refuse(let refusal):
            if case .inadmissible = refusal { current.refusedBeforeRouting = true }
            refuse(refusal, writer: writer)
        case .challengeAnswer(let answer):
            answerChallenge(answer, writer: writer)
        case .challengeLookup(let token):
            // Maybe a challenge another process sharing the ACME storage started: look on the blocking pool.
            let challenges = core.acmeChallenges
            let loopBound = NIOLoopBound(self, eventLoop: writer.eventLoop)
            let asked = NIOLoopBound(current, eventLoop: writer.eventLoop)
            core.blockingPool.runIfActive(eventLoop: writer.eventLoop) { challenges.storedAnswer(forPath: token) }
                .whenComplete { result in
                    let handler = loopBound.value
                    guard let writer = handler.writer, handler.exchange === asked.value else { return }
                    handler.answerChallenge((try? result.get()) ?? nil, writer: writer)
                }
        case .redirect(let location, let status):
            respondRedirect(to: location, status: status, writer: writer)
        case .route(let routed):
            current.lease = routed.lease
            current.rateLimitHeaders = routed.rateLimitHeaders
            start(routed, exchange: current, writer: writer)
        }
    }

    /// A routed request: its handler runs once the request (and any body) has arrived, except a proxied request
    /// with a body, which starts at once so the body streams to the upstream as it arrives.
    private func start(_ routed: RequestRouter.RoutedRequest, exchange current: Exchange, writer: any ResponseWriter) {
        let route = routed.route
        let headers = current.headers
        current.pending = route
        if route.collectsBody, case .POST = current.head.method {
            current.collectedBody = writer.allocator.buffer(
                capacity: min(route.maxBodySize, headers.contentLength.flatMap(Int.init) ?? 1024))
        }
        if routed.sendsContinue { (writer as? HTTP1ResponseWriter)?.writeContinue() }
        if case .proxy(let proxyRoute) = route.handler, headers.hasTransferEncoding
            || (headers.contentLength.flatMap(Int.init) ?? 0) > 0
        {
            // Without a body it starts at its end (dispatch), so the head goes upstream in one write.
            current.pending = nil
            startProxy(proxyRoute, exchange: current, writer: writer)
        }
    }

    private func startProxy(_ route: ProxyRoute, exchange current: Exchange, writer: any ResponseWriter) {
        let requestID = current.requestID ?? current.headers.acceptableRequestID ?? loop.nextRequestID()
        current.requestID = requestID
        writer.delegate = self
        let trusted = current.snapshot.trustedProxies
        let client = ClientInfo(
            address: connection.remoteAddress,
            peerIsTrusted: !trusted.isEmpty && trusted.contains { $0.contains(connection.remoteIP) },
            scheme: connection.isTLS ? "https" : "http")
        let headers = current.headers
        let proxy = core.proxy.makeExchange(
            route: route, on: writer.eventLoop, head: current.head, host: headers.host,
            chunked: headers.hasTransferEncoding && headers.contentLength == nil, client: client, requestID: requestID,
            downstream: self)
        current.proxy = proxy
        if current.lifecycle.requestEnded { proxy.requestEnd(trailers: nil) }
        proxy.start()
    }

    /// Runs the route's handler: each route kind's answer lives beside ``ExchangeResponder`` (Answers/), the proxy's
    /// in Proxy.
    func dispatch(_ route: Route, writer: any ResponseWriter) {
        // Routing sets the exchange's site with its route.
        guard let current = exchange, let site = current.site else { return }
        // Made when a case first uses it: the proxy answers through ``ProxyDownstream``, and a responder made for
        // it would only be dropped (its references retained and released on every proxied request).
        lazy var responder = ExchangeResponder(handler: self, exchange: current, writer: writer, route: route, site: site)
        switch route.handler {
        case .respond(let prepared), .ping(let prepared):
            BuiltInAnswers.prepared(prepared, responder)
        case .proxy(let proxyRoute):
            startProxy(proxyRoute, exchange: current, writer: writer)
        case .redirect(let redirect):
            respondRedirect(to: Self.expand(redirect.template, facts: facts(current)), status: redirect.status, writer: writer)
        case .trackingAPI(let api) where (responder.path == "/tr/v1/ws" || responder.path == "/tr/v1/ws/") && current.head.method != .OPTIONS:
            acceptWebSocketIngest(api, responder: responder)
        case .trackingAPI(let api):
            TrackingAPIAnswer.answer(responder) { api.handle($0, now: $1, makeID: $2) }
        case .webhook(let receiver):
            TrackingAPIAnswer.answer(responder) { receiver.handle($0, now: $1, makeID: $2) }
        case .legacyLinks(let api):
            TrackingAPIAnswer.answer(responder, legacyLinks: api)
        case .links(let linkRoute):
            linkRoute.answer(responder)
        case .health:
            BuiltInAnswers.health(responder)
        case .status:
            BuiltInAnswers.status(responder)
        case .trackerMetrics:
            BuiltInAnswers.trackerMetrics(responder)
        case .insights:
            InsightsAnswer.answer(responder)
        case .staticFiles(let server):
            server.answer(responder)
        }
    }

    /// The writer of `exchange` while it is still the one being answered (a late answer for an exchange that is
    /// gone is dropped).
    func writer(serving exchange: Exchange) -> (any ResponseWriter)? {
        self.exchange === exchange ? writer : nil
    }

    /// The key authorization of an HTTP-01 challenge, or 404 for a token nobody here started.
    private func answerChallenge(_ answer: String?, writer: any ResponseWriter) {
        guard let answer else {
            respondError(.notFound, "no such ACME challenge", writer: writer)
            return
        }
        let body = ByteBuffer(string: answer)
        let headers: HTTPHeaders = [
            "Content-Type": "application/octet-stream", "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        writeResponse(status: .ok, headers: headers, body: exchange?.head.isHeadRequest == true ? .empty : .buffer(body), writer: writer)
    }

    /// Fills the request's values into a redirect target, never producing a protocol-relative `//host` location.
    /// `facts` are gathered only for a target with placeholders (most are constant).
    static func expand<Facts: PlaceholderValues>(_ target: Template, facts: @autoclosure () -> Facts) -> String {
        if let constant = target.constantText { return constant }
        var location = target.render(facts())
        if location.hasPrefix("/") {
            while location.hasPrefix("//") || location.hasPrefix("/\\") { location.removeFirst() }
        }
        return location
    }

    // MARK: - Writing

    func respondRedirect(to location: String, status: HTTPResponseStatus, writer: any ResponseWriter) {
        let body = ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(location)\n")
        let headers: HTTPHeaders = [
            "Location": location, "Content-Type": "text/plain; charset=utf-8",
            "Content-Length": String(body.readableBytes),
        ]
        let isHead = exchange?.head.isHeadRequest == true
        writeResponse(status: status, headers: headers, body: isHead ? .empty : .buffer(body), writer: writer)
    }

    func respondError(
        _ status: HTTPResponseStatus, _ reason: String, writer: any ResponseWriter, forceClose: Bool = false,
        extraHeaders: HTTPHeaders = [:]
    ) {
        var (headers, body) = exchange.map { current in
            ErrorAnswer.make(
                status, reason: reason, pages: current.errorPages, accept: current.head.headers.first(name: "accept"),
                facts: facts(current))
        } ?? ErrorPage.make(status, reason: reason)
        for (name, value) in extraHeaders where name.lowercased() != "content-length" {
            headers.replaceOrAdd(name: name, value: value)
        }
        if forceClose { exchange?.lifecycle.closeConnectionAfterAnswer() }
        let isHead = exchange?.head.isHeadRequest == true
        writeResponse(status: status, headers: headers, body: isHead ? .empty : .buffer(body), writer: writer)
    }

    /// Writes a response. `cached` names a cached file variant whose serialized head the loop can reuse.
    /// `location` is added to `headers` as the head is written (a short-link redirect passes a shared constant
    /// header list and its target here, so answering a click builds no header list).
    func writeResponse(
        status: HTTPResponseStatus, headers: HTTPHeaders, body: AnswerBody, writer: any ResponseWriter,
        cached: (CachedFile, Int)? = nil, location: String? = nil
    ) {
        guard let current = exchange, !closed, current.lifecycle.startResponse() else {
            if case .file(let file) = body { try? file.handle.close() }
            return
        }
        var headers = headers
        var cached = cached
        let rules = current.responseHeaders
        if let rules {
            if rules.isConstant {
                // A cached head already holds constant rules (the loop applies them when it builds one).
                if cached == nil { rules.apply(to: &headers, facts: facts(current)) }
            } else {
                rules.apply(to: &headers, facts: facts(current))
                cached = nil
            }
        }
        // A request whose body we have not read to the end cannot be followed on the same connection.
        if !current.lifecycle.requestEnded && status.code >= 400
            && (current.headers.hasTransferEncoding || (current.headers.contentLength.flatMap(Int.init) ?? 0) > 0)
        {
            current.lifecycle.closeConnectionAfterAnswer()
        }
        if pipeline.quiescing { current.lifecycle.closeConnectionAfterAnswer() }
        current.status = status
        loop.refreshClock()
        var added = ExchangeFields(
            hsts: connection.isTLS && rules?.omitsHSTS != true ? current.hsts : nil, location: location,
            rateLimit: current.rateLimitHeaders)
        if loop.events != nil {
            current.isHTML = cached.map { $0.0.isHTML } ?? headers.first(name: "content-type").map(MediaTypes.isHTML) ?? false
            added.visitorCookie = issueVisitorCookie(current)
        }
        writer.startHead(ComposedHead(status: status, headers: headers, cached: cached, rules: rules))
        switch body {
        case .empty:
            writer.writeAnswer(added, persistence: persistence(current), body: nil)
            finish(writer: writer, sent: 0)
        case .buffer(let buffer):
            writer.writeAnswer(added, persistence: persistence(current), body: buffer)
            finish(writer: writer, sent: buffer.readableBytes)
        case .file(let file):
            _ = writer.writeHead(added, persistence: persistence(current), body: .known)
            sendFile(file, writer: writer)
        }
    }

    /// Whether the connection stays open after the exchange's answer, as the writer tells the client.
    private func persistence(_ current: Exchange) -> Persistence {
        Persistence(keepAlive: current.lifecycle.keepsConnection, isHTTP10: current.head.version.major == 1 && current.head.version.minor == 0)
    }

    private func sendFile(_ file: FileBody, writer: any ResponseWriter) {
        let loopBound = NIOLoopBound(self, eventLoop: writer.eventLoop)
        writer.sendFile(file, fileIO: core.fileIO) { outcome in
            let handler = loopBound.value
            guard let writer = handler.writer else { return }
            switch outcome {
            case .queued(let leaving):
                // Plain HTTP/1.1: the exchange is done once the bytes are queued; the connection is not idle until
                // they have left.
                handler.exchange?.bodyWritten = leaving
                handler.finish(writer: writer, sent: file.length)
            case .sent:
                handler.finish(writer: writer, sent: file.length)
            case .failed:
                writer.closeExchange()
            }
        }
    }

    /// Ends the response, logs it, and decides whether the connection stays open.
    private func finish(writer: any ResponseWriter, sent: Int) {
        guard let current = exchange else { return }
        current.sentBytes = sent
        let actions = current.lifecycle.finishResponse(canStopRequestBody: writer.canStopRequestBody)
        current.releaseLease()
        // The event is in the spool before the last bytes of the answer leave: whoever got an answer has an event,
        // even if the process is killed right after.
        record(current)
        // The answer is complete but the client is still sending (an error before the body was read): HTTP/2 tells
        // it to stop without failing the response (RFC 9113 §8.1).
        if actions.stopRequestBody { writer.stopRequestBody() }
        let keepAlive = !actions.closeConnection
        if keepAlive {
            writer.flush()
        } else {
            // A malformed request after this one is answered (and the connection closed) once this one is done.
            if pipeline.closeAfterAnswer() { writer.closeAfterAnswer() }
        }
        if keepAlive, let connectionGuard {
            if let written = current.bodyWritten {
                let bound = NIOLoopBound(connectionGuard, eventLoop: writer.eventLoop)
                written.whenComplete { _ in bound.value.responseCompleted() }
            } else {
                connectionGuard.responseCompleted()
            }
        }
        if actions.complete { completeExchange(writer: writer) }
    }

    // MARK: - Tracking, access log and metrics

    private var recorder: ExchangeRecorder {
        ExchangeRecorder(loop: loop, connection: connection, unroutedMetrics: core.unroutedMetrics)
    }

    private func record(_ exchange: Exchange) { recorder.record(exchange) }

    /// With visitor cookies on, a page view of a visitor without one gets a `Set-Cookie` (Tracking's rule).
    private func issueVisitorCookie(_ exchange: Exchange) -> String? {
        guard let enricher = loop.enricher else { return nil }
        let headers = exchange.headers
        let issued = enricher.visitorCookieToIssue(
            for: CookieRequest(
                site: exchange.siteName, tracked: exchange.route?.track ?? true, isPageView: exchange.isPageView,
                cookie: headers.cookie, doNotTrack: headers.doNotTrack, globalPrivacyControl: headers.globalPrivacyControl,
                userAgent: headers.userAgent, secureTransport: connection.isTLS),
            clientAddress: connection.clientAddress(of: exchange), nowMilliseconds: Int64(loop.refreshClock()))
        exchange.issuedVisitorID = issued?.visitorID
        return issued?.setCookie
    }

    /// What `{placeholder}`s of header rules, redirects and rewrites are filled from (`head` and `host`: the
    /// exchange's, or those routing is deciding on).
    private func facts(_ current: Exchange) -> ExchangeFacts {
        facts(current, head: current.head, headers: current.headers)
    }

    private func facts(_ current: Exchange, head: RequestHead, headers: RequestHeaderSummary) -> ExchangeFacts {
        ExchangeFacts(
            head: head, host: headers.host, routePrefix: current.route?.pathPrefix, isTLS: connection.isTLS,
            requestID: { [loop] in
                // Settled once, so the answer, the upstream and the event carry the same ID.
                if let id = current.requestID { return id.description }
                let id = headers.acceptableRequestID ?? loop.nextRequestID()
                current.requestID = id
                return id.description
            },
            clientAddress: { [connection] in
                connection.clientAddress(head.headers, trusted: current.snapshot.trustedProxies)
            })
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The parser refused the bytes (ambiguous framing, a bare LF, a control character, a head too large…) and the
        // byte stream can no longer be trusted: answer with the refusal's status and reason, then close.
        guard !isHTTP2, let refusal = error as? RequestParser.Refusal, !closed, let writer else {
            context.close(promise: nil)
            return
        }
        if let current = exchange, current.lifecycle.requestEnded {
            // The bad bytes follow a complete request, which is answered first. A client that asked to close
            // sent nothing more that counts; one that did not learns why the connection ends.
            pipeline.malformedAfterRequest(
                refusal, answerPending: current.head.isKeepAlive && !current.lifecycle.responseFinished)
            current.lifecycle.closeConnectionAfterAnswer()
            return
        }
        refuse(.malformed(refusal), writer: writer)
    }

    /// Refuses the request being read (or, between requests, the bytes that were to be one), counted by kind: the
    /// refusal's status and reason when no answer has started, logged and recorded like any answer. A refusal that
    /// closes the connection stops the request's work (upstream, handler, pipelined requests); an answer already
    /// under way can then only be cut short.
    private func refuse(_ refusal: Refusal, writer: any ResponseWriter, requestEnded: Bool = true) {
        GatewayMetrics.shared.counted(refusal)
        guard let current = exchange else {
            refuseWithoutHead(refusal, writer: writer, requestEnded: requestEnded)
            return
        }
        if refusal.closesConnection {
            current.proxy?.cancel()
            current.pending = nil
            pipeline.dropQueued()
            if current.lifecycle.responded {
                current.lifecycle.closeConnectionAfterAnswer()
                // A body over its limit after a complete answer is left to drain (the connection closes after it).
                if case .bodyTooLarge = refusal, current.lifecycle.responseFinished { return }
                writer.closeExchange()
                return
            }
        }
        respondError(
            refusal.status, refusal.reason, writer: writer, forceClose: refusal.closesConnection, extraHeaders: refusal.extraHeaders)
    }

    /// Answers bytes that never became a request head (malformed, too large, too slow) through an exchange of its
    /// own, so the refusal is one access-log line and one `refused` event like every other answer.
    /// HTTP/2: a request whose header list was over `h2_max_header_list_size` (its fields were dropped) is answered
    /// 431 like an oversized HTTP/1.1 head; a body still coming is stopped with RST_STREAM(NO_ERROR) after it.
    func refuseHeaderListTooLarge(limit: Int, requestEnded: Bool) {
        guard let writer else { return }
        refuse(.headerListTooLarge(limit: limit), writer: writer, requestEnded: requestEnded)
    }

    private func refuseWithoutHead(_ refusal: Refusal, writer: any ResponseWriter, requestEnded: Bool) {
        let head = RequestHead(version: isHTTP2 ? .http2 : .http1_1, method: .RAW(value: "-"), uri: "")
        let current = Exchange(
            head: head, headers: RequestHeaderSummary(), snapshot: connection.snapshots.current,
            startNanoseconds: NIODeadline.now().uptimeNanoseconds, bodyLimit: 0, keepAlive: false, requestEnded: requestEnded)
        current.refusedBeforeRouting = true
        exchange = current
        respondError(refusal.status, refusal.reason, writer: writer, forceClose: true, extraHeaders: refusal.extraHeaders)
    }
}

// MARK: - Proxied responses

extension RequestHandler: ProxyDownstream, ResponseWriterDelegate {
    func proxyResponseHead(_ head: ProxyResponseHead) {
        guard let current = exchange, !current.lifecycle.responded, !closed, let writer else { return }
        if head.status.code >= 400, case .proxy(let proxyRoute) = current.route?.handler, proxyRoute.configuration.interceptErrors,
            current.errorPages?.page(for: Int(head.status.code)) != nil
        {
            current.interceptedStatus = head.status
            return
        }
        _ = current.lifecycle.startResponse()
        current.status = head.status
        if pipeline.quiescing { current.lifecycle.closeConnectionAfterAnswer() }
        let code = head.status.code
        let bodiless = current.head.isHeadRequest || code == 204 || code == 304 || code < 200
        loop.refreshClock()
        let rules = current.responseHeaders
        var added = ExchangeFields(
            requestID: current.requestID, hsts: connection.isTLS && rules?.omitsHSTS != true ? current.hsts : nil,
            rateLimit: current.rateLimitHeaders)
        let passed = writer.startHead(upstream: head, dropping: rules?.rules)
        rules?.forEachAddition(facts: facts(current)) { writer.addField(name: $0, value: $1) }
        current.isHTML = passed.isHTML
        if loop.events != nil { added.visitorCookie = issueVisitorCookie(current) }
        let body: StreamedBody = bodiless ? .none : passed.hasContentLength ? .known : .unknown
        if writer.writeHead(added, persistence: persistence(current), body: body) {
            current.lifecycle.closeConnectionAfterAnswer()
        }
    }

    func proxyResponseBody(_ buffer: ByteBuffer) -> Bool {
        guard let current = exchange, !closed, let writer, current.interceptedStatus == nil else { return true }
        let size = buffer.readableBytes
        guard size > 0 else { return true }
        current.sentBytes += size
        if writer.writeBody(buffer) { return true }
        current.proxyResponsePaused = true
        return false
    }

    /// The client takes bytes again: so may the upstream.
    func responseWritable() {
        guard let current = exchange, current.proxyResponsePaused else { return }
        current.proxyResponsePaused = false
        current.proxy?.downstreamWritable()
    }

    func proxyResponseFlush() { writer?.flush() }

    func proxyResponseEnd(trailers: HTTPHeaders?) {
        guard let current = exchange, !closed, let writer else { return }
        if let status = current.interceptedStatus {
            current.interceptedStatus = nil
            respondError(status, "the application answered \(status.code) \(status.reasonPhrase)", writer: writer)
            return
        }
        writer.endBody(trailers: trailers)
        // The upstream answered before the whole request body came: on HTTP/1.1 the rest cannot be told apart
        // from a next request (HTTP/2 stops the body with a reset, see finish).
        if !current.lifecycle.requestEnded && current.head.version.major == 1 { current.lifecycle.closeConnectionAfterAnswer() }
        finish(writer: writer, sent: current.sentBytes)
    }

    func proxyFailed(_ failure: ProxyFailure) {
        guard let current = exchange, !closed, let writer else { return }
        let requestID = current.requestID?.description ?? "-"
        if !current.lifecycle.responded {
            var extra: HTTPHeaders = ["X-Request-Id": requestID]
            if let seconds = failure.retryAfterSeconds { extra.add(name: "Retry-After", value: String(seconds)) }
            respondError(failure.status, "\(failure.reason) (request \(requestID))", writer: writer, extraHeaders: extra)
            return
        }
        // Part of the response is out: the client can only be told by an abort (a truncated body on HTTP/1.1,
        // RST_STREAM on HTTP/2).
        current.lifecycle.abortResponse()
        current.releaseLease()
        record(current)
        exchange = nil
        writer.abortResponse()
        writer.exchangeFinished()
    }

    func proxyRequestBody(paused: Bool) {
        requestBodyPaused = paused
        connectionGuard?.requestBody(paused: paused)
        guard !paused, let writer else { return }
        if isHTTP2 {
            writer.read()  // returns the stream's withheld flow-control credit
        } else if pipeline.bodyResumed() {
            writer.read()
        }
    }

    /// `/tr/v1/ws`: the Go tracker's WebSocket ingest. A valid opening handshake (RFC 6455 §4.2) is answered 101
    /// and the connection becomes a ``WebSocketIngestHandler`` (its HTTP handlers leave); anything else is refused
    /// with the reason. HTTP/1.1 only: browsers open WebSockets over HTTP/1.1 (RFC 8441 is not offered).
    private func acceptWebSocketIngest(_ api: TrackingAPI, responder: ExchangeResponder) {
        let (current, head, headers, writer) = (responder.exchange, responder.head, responder.headers, responder.writer)
        let fields = head.headers
        guard let channelContext else {
            respondError(.badRequest, "the WebSocket ingest takes HTTP/1.1 connections (browsers open WebSockets over HTTP/1.1)", writer: writer)
            return
        }
        guard head.method == .GET, headers.hasUpgrade, fields[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }),
            let key = fields.first(name: "sec-websocket-key"), Data(base64Encoded: key)?.count == 16
        else {
            respondError(.upgradeRequired, "expected a WebSocket opening handshake (GET with Upgrade: websocket and a Sec-WebSocket-Key)",
                         writer: writer, extraHeaders: ["Upgrade": "websocket", "Sec-WebSocket-Version": "13"])
            return
        }
        guard fields.first(name: "sec-websocket-version") == "13" else {
            respondError(.upgradeRequired, "expected Sec-WebSocket-Version: 13", writer: writer,
                         extraHeaders: ["Upgrade": "websocket", "Sec-WebSocket-Version": "13"])
            return
        }
        let client = connection.clientAddress(of: current)
        let upgrade = APIRequest(
            method: .GET, path: responder.path, query: "", body: nil, cookie: headers.cookie, origin: fields.first(name: "origin"),
            clientAddress: client, siteHosts: current.siteHosts, isTLS: connection.isTLS, eventLoop: channelContext.eventLoop,
            headers: fields.httpHeaders)
        var buffer = channelContext.channel.allocator.buffer(capacity: 256)
        HTTPHead.writeStatusLine(.switchingProtocols, into: &buffer)
        buffer.writeStaticString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        buffer.writeString(WebSocketIngestHandler.acceptValue(forKey: key))
        buffer.writeStaticString("\r\n\r\n")
        channelContext.writeAndFlush(NIOAny(buffer), promise: nil)
        current.switchedProtocols()
        // Each message's events are completed by the opening request's fields, as a POST's are by its own.
        let now = Int64(loop.refreshClock())
        var template = recorder.requestEvent(current, id: EventID(high: 0, low: 0), started: now, elapsed: 0, client: client)
        template.status = 200
        template.kind = .track
        let facts = recorder.requestFacts(current, client: client, eagerMemo: true)
        record(current)
        exchange = nil
        let handler = WebSocketIngestHandler(
            ingest: WebSocketIngest(api: api), loop: loop, upgrade: upgrade, template: template, facts: facts, logger: core.logger)
        do {
            // The WebSocket handlers go in after the HTTP decoder, which then leaves with this handler, its guard's
            // timers stopped (bytes it still holds are handed on).
            let sync = channelContext.channel.pipeline.syncOperations
            let decoder = try sync.handler(type: HTTP1RequestDecoder.self)
            try handler.install(after: decoder, in: sync)
            sync.removeHandler(context: channelContext, promise: nil)
            sync.removeHandler(decoder, promise: nil)
        } catch {
            channelContext.close(promise: nil)
        }
    }

    func proxyUpgraded(_ head: ProxyResponseHead, tunnel: ProxyTunnel) {
        guard let current = exchange, !closed, let context = channelContext else {
            tunnel.close()
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        HTTPHead.writeStatusLine(.switchingProtocols, into: &buffer)
        _ = head.writeHTTP1Headers(into: &buffer)
        buffer.writeStaticString("Connection: Upgrade\r\nX-Request-Id: ")
        current.requestID?.withUTF8 { _ = buffer.writeBytes($0) }
        buffer.writeStaticString("\r\n\r\n")
        context.writeAndFlush(NIOAny(buffer), promise: nil)
        current.switchedProtocols()
        record(current)
        exchange = nil
        // From here on the connection is a byte tunnel: the HTTP handlers leave (the decoder's guard with it), and
        // bytes the decoder still holds go to the tunnel.
        do {
            let sync = context.channel.pipeline.syncOperations
            let decoder = try sync.handler(type: HTTP1RequestDecoder.self)
            try sync.addHandler(tunnel.makeClientHandler(), position: .after(decoder))
            sync.removeHandler(context: context, promise: nil)
            sync.removeHandler(decoder, promise: nil)
            tunnel.start()
        } catch {
            tunnel.close()
            context.close(promise: nil)
        }
    }
}
