import ACME
import Config
import Foundation
import HTTP1Parser
import HeaderRules
import HTTP2Session
import Links
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import Static
import Tracking

/// Answers HTTP requests on one HTTP/1.1 connection or one HTTP/2 stream: routing, handler dispatch, response
/// writing, access log and metrics. Everything runs on the channel's event loop; disk work goes to the blocking pool
/// through the static file server.
///
/// On HTTP/1.1 the handler sits right after ``HTTP1RequestDecoder`` and writes response bytes itself: the status line
/// and headers are serialized here (for cached files, once per second per loop), which skips three outbound handlers
/// per write. It also keeps pipelined requests in order, holding reads while a response is outstanding. On HTTP/2 one
/// handler serves one stream outside any pipeline, driven by ``HTTP2ConnectionHandler``, and writes frames through its
/// ``ExchangeTransport``.
final class RequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = NIOAny
    typealias OutboundOut = ByteBuffer

    /// The request being answered. A class so the many small updates along the way mutate one object instead of
    /// copying a large struct (with a retain per field) in and out of the optional.
    private final class Exchange {
        /// The head as routed: its target in normal form (``RequestAdmission``).
        var head: HTTPRequestHead
        var headers: RequestHeaderSummary
        /// The target as the client sent it, when admission rewrote it (for the access log).
        var originalTarget: String?
        /// Refused before routing (a malformed, ambiguous or overlong request): its event is of kind `refused`.
        var refusedBeforeRouting = false
        /// The configuration the request started with, kept to its end.
        let snapshot: RuntimeSnapshot
        let startNanoseconds: UInt64
        var route: Route?
        var siteName = "-"
        var siteHosts: [String] = []
        /// The answer is `text/html` (with a GET and a 2xx/304 status: a page view).
        var isHTML = false
        /// A visitor id this answer issued in a cookie.
        var issuedVisitorID: String?
        /// The request body, collected for handlers that read it (the tracking API).
        var collectedBody: ByteBuffer?
        /// Events a tracking API call produced (recorded instead of the plain request event).
        var apiEvents: [TrackingEvent] = []
        /// `rate_limited` or `rate_limited_dry_run` when the route's limiter refused (or would have refused) it.
        var rateLimitFlag = ""
        /// `RateLimit-Policy` and `RateLimit` values for an answer that passed a limit with `headers: true`.
        var rateLimitHeaders: (policy: String, quota: String)?
        /// The request's place under its route's per-key `concurrency`, given back when the response is complete or
        /// the client is gone.
        var lease: RouteLimiter.Lease?
        /// The short link this request clicked: the request's event becomes the click (one event, built once).
        var click: LinkClick?
        var bodyBytes = 0
        var bodyLimit: Int
        var keepAlive: Bool
        var responded = false
        var responseFinished = false
        var requestEnded = false
        var status: HTTPResponseStatus = .ok
        var sentBytes = 0
        var hsts: String?
        /// The site's, then the route's, `headers:` rules for the answer.
        var responseHeaders: ResponseHeaderRules?
        /// The site's `errors:` pages.
        var errorPages: ErrorPages?
        /// `intercept_errors`: the upstream's error answer is read and dropped, the site's page goes out at its end.
        var interceptedStatus: HTTPResponseStatus?
        /// The route chosen at the head, answered once the request (and any body) has arrived.
        var pending: (route: Route, site: Site)?
        /// The upstream side of a proxied request.
        var proxy: ProxyExchange?
        var requestID: String?
        /// How a proxied response body is framed towards the client.
        var framing = ProxyFraming.none
        /// The proxy was told to stop reading the upstream until the client catches up.
        var proxyResponsePaused = false
        /// HTTP/2 response bytes handed to the connection but not yet written out.
        var unsentFrameBytes = 0
        /// Under TLS, a proxied response head waits for the first body piece so that both leave in one TLS record.
        var heldHead: ByteBuffer?
        /// A body still leaving after the exchange finished (a file sent with `sendfile`): the connection is not idle
        /// until it has.
        var bodyWritten: EventLoopFuture<Void>?

        init(head: HTTPRequestHead, headers: RequestHeaderSummary, snapshot: RuntimeSnapshot, startNanoseconds: UInt64,
             bodyLimit: Int, keepAlive: Bool)
        {
            self.head = head
            self.headers = headers
            self.snapshot = snapshot
            self.startNanoseconds = startNanoseconds
            self.bodyLimit = bodyLimit
            self.keepAlive = keepAlive
        }

        func releaseLease() {
            lease?.release()
            lease = nil
        }

        /// A 101 went out: the exchange is over and the connection is a WebSocket now, holding no place under
        /// `concurrency` (it is a connection, not a request in flight).
        func switchedProtocols() {
            responded = true
            responseFinished = true
            status = .switchingProtocols
            releaseLease()
        }

        /// A safety net: every path that ends an exchange releases explicitly, but an exchange dropped some other
        /// way must not hold its key's place forever.
        deinit { lease?.release() }
    }

    private let core: GatewayCore
    private let loop: LoopContext
    private let connection: ConnectionInfo
    private let connectionGuard: ConnectionGuardHandler?
    private let isHTTP2: Bool
    private var exchange: Exchange?
    /// Where responses go; set when the handler joins a pipeline, or at creation for an HTTP/2 stream.
    private var transport: (any ExchangeTransport)?
    /// HTTP/1.1 parts that arrived while an earlier response was still being produced (pipelining).
    /// An array rather than a ring buffer: empty, it costs no allocation, and HTTP/2 streams never use it.
    private var queued: [HTTPServerRequestPart] = []
    private var readHeld = false
    /// The connection closes after the current answer (the client asked, or a request was refused): nothing more
    /// that arrives is a request (RFC 9112 §9.6).
    private var closing = false
    /// Bytes after the current request did not parse: once its answer is out, they get this refusal and the
    /// connection closes.
    private var refusalAfterCurrent: RequestParser.Refusal?
    /// A proxied request body is read no further until the upstream takes what it has.
    private(set) var requestBodyPaused = false
    private var quiescing = false
    private var closed = false
    /// HTTP/2: response DATA writes handed to the connection that have not left yet, and when one last completed (or
    /// the first was handed over). A stream whose writes make no progress for `send_timeout` is reset.
    private var writesInFlight = 0
    private var lastWriteProgress: UInt64 = 0

    init(core: GatewayCore, loop: LoopContext, connection: ConnectionInfo, connectionGuard: ConnectionGuardHandler?,
         isHTTP2: Bool)
    {
        self.core = core
        self.loop = loop
        self.connection = connection
        self.connectionGuard = connectionGuard
        self.isHTTP2 = isHTTP2
    }

    func handlerAdded(context: ChannelHandlerContext) { transport = context }
    func handlerRemoved(context: ChannelHandlerContext) { transport = nil }

    /// Serves one HTTP/2 stream driven by ``HTTP2ConnectionHandler``, outside any pipeline.
    func attach(_ transport: any ExchangeTransport) { self.transport = transport }

    /// Feeds a request part of the attached HTTP/2 stream.
    func receive(_ part: HTTPServerRequestPart) {
        guard let transport else { return }
        process(part, context: transport)
    }

    /// The HTTP/2 stream's body stalled or trickles: refused like an HTTP/1.1 body (408).
    func requestBodyRefused(_ verdict: BodyProgress.Verdict) {
        guard let transport else { return }
        let rejection: ConnectionGuardStateMachine.Rejection = verdict == .stalled ? .bodyTimeout : .bodyTooSlow
        refuse(rejection.status, rejection.reason, context: transport)
    }

    /// Whether response writes have been waiting longer than `timeout` (nanoseconds) without any completing.
    func sendStalled(now: UInt64, timeout: UInt64) -> Bool {
        writesInFlight > 0 && now &- lastWriteProgress > timeout
    }

    /// Counts a response write until it has left (see ``sendStalled(now:timeout:)``): HTTP/2 DATA frames, which the
    /// connection's sweep checks, and HTTP/1.1 file pieces, which a watchdog of this handler checks.
    private func trackWrite(_ written: EventLoopFuture<Void>) {
        writeStarted(on: written.eventLoop)
        let loopBound = NIOLoopBound(self, eventLoop: written.eventLoop)
        written.whenComplete { _ in loopBound.value.writeCompleted() }
    }

    /// The halves of ``trackWrite(_:)``, for a write that already has a completion callback of its own.
    private func writeStarted(on eventLoop: any EventLoop) {
        if writesInFlight == 0 { lastWriteProgress = NIODeadline.now().uptimeNanoseconds }
        writesInFlight += 1
        if !isHTTP2 && sendWatchdog == nil { scheduleSendWatchdog(on: eventLoop) }
    }

    private func writeCompleted() {
        writesInFlight -= 1
        lastWriteProgress = NIODeadline.now().uptimeNanoseconds
    }

    /// HTTP/1.1: closes the connection when tracked writes made no progress for `send_timeout` (a client that
    /// stopped reading a file must not hold the connection and the file forever).
    private var sendWatchdog: Scheduled<Void>?

    private func scheduleSendWatchdog(on eventLoop: any EventLoop) {
        let timeout = UInt64(max(TimeAmount(connection.snapshots.current.limits.sendTimeout).nanoseconds, 1))
        let due = lastWriteProgress &+ timeout
        let now = NIODeadline.now().uptimeNanoseconds
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        sendWatchdog = eventLoop.scheduleTask(in: .nanoseconds(Int64(due > now ? due - now : 0) + 1_000_000)) {
            let handler = loopBound.value
            handler.sendWatchdog = nil
            guard handler.writesInFlight > 0, !handler.closed, let transport = handler.transport else { return }
            if handler.sendStalled(now: NIODeadline.now().uptimeNanoseconds, timeout: timeout) {
                GatewayMetrics.shared.sendTimeouts.increment()
                transport.closeExchange()
            } else {
                handler.scheduleSendWatchdog(on: eventLoop)
            }
        }
    }

    /// The stream was reset or its connection closed: nothing more may be written.
    func streamClosed() {
        closed = true
        transport = nil
        exchange?.proxy?.cancel()
        exchange?.releaseLease()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        sendWatchdog?.cancel()
        exchange?.proxy?.cancel()
        exchange?.releaseLease()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let current = exchange, current.proxyResponsePaused {
            current.proxyResponsePaused = false
            current.proxy?.downstreamWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing || refusalAfterCurrent != nil { return }
        let part = unwrapInboundIn(data)
        if !isHTTP2, let current = exchange, current.requestEnded {
            // A request after one that closes the connection is never served.
            guard current.keepAlive else { return }
            // A pipelined request: answer it after the current response.
            queued.append(part)
            return
        }
        process(part, context: context)
    }

    private func process(_ part: HTTPServerRequestPart, context: any ExchangeTransport) {
        switch part {
        case .head(let head):
            begin(head, context: context)
        case .body(let body):
            guard let current = exchange else { return }
            current.bodyBytes += body.readableBytes
            if current.bodyBytes > current.bodyLimit {
                current.proxy?.cancel()
                if current.responded {
                    // A proxied response is under way: it cannot be replaced by the error any more.
                    if !current.responseFinished { context.closeExchange() }
                    return
                }
                // Answer once; the connection closes after the answer is written, since the rest of the body
                // will not be read.
                current.pending = nil
                respondError(.payloadTooLarge, "the request body is larger than \(current.bodyLimit) bytes",
                             context: context, forceClose: true)
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
            current.requestEnded = true
            current.proxy?.requestEnd(trailers: trailers)
            let pending = current.pending
            current.pending = nil
            if let (route, site) = pending {
                // Handlers in this module answer without reading the body, so they run once it has been
                // received (and counted against the limit): a client never gets an answer it is still uploading to.
                dispatch(route, site: site, head: current.head, headers: current.headers, context: context)
            } else if current.responseFinished {
                completeExchange(context: context)
            }
        }
    }

    /// Both directions of the exchange are done: forget it and move on to pipelined requests, if any.
    private func completeExchange(context: any ExchangeTransport) {
        exchange = nil
        if isHTTP2 {
            context.exchangeFinished()
            return
        }
        if let refusal = refusalAfterCurrent {
            refusalAfterCurrent = nil
            refuseWithoutHead(refusal.status, refusal.reason, context: context)
            return
        }
        if closing { return }
        while exchange == nil || exchange?.requestEnded == false, !queued.isEmpty {
            let next = queued.removeFirst()
            process(next, context: context)
            if let current = exchange, current.requestEnded, !current.responseFinished { break }
        }
        if quiescing && exchange == nil && queued.isEmpty && !closing {
            closeAfterPendingWrites(context: context)
            return
        }
        if readHeld && queued.isEmpty && !requestBodyPaused && !closing {
            readHeld = false
            context.read()
        }
    }

    /// Closes once everything written so far (a file still being sent, say) has left.
    private func closeAfterPendingWrites(context: any ExchangeTransport) {
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlushWithFuture(NIOAny(ByteBuffer())).whenComplete { _ in contextBound.value.closeExchange() }
    }

    /// Holds reads while pipelined requests wait their turn (so a client cannot pile them up: at most one read's
    /// worth is queued), and while a proxied upload waits for its upstream. Reads are not held merely because a
    /// response is pending: toggling read interest costs two `epoll_ctl` calls per request.
    func read(context: ChannelHandlerContext) {
        if closing { return }
        if requestBodyPaused || (!isHTTP2 && !queued.isEmpty) {
            readHeld = true
            return
        }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let refusal = event as? ConnectionGuardRefusal {
            refuse(refusal.status, refusal.reason, context: context)
            return
        }
        if event is ChannelShouldQuiesceEvent && !isHTTP2 {
            quiescing = true
            if exchange == nil && queued.isEmpty { closeAfterPendingWrites(context: context) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - Routing

    private func begin(_ head: HTTPRequestHead, context: any ExchangeTransport) {
        let snapshot = connection.snapshots.current
        let limits = snapshot.limits
        let current = Exchange(
            head: head, headers: RequestHeaderSummary(head.headers), snapshot: snapshot, startNanoseconds: NIODeadline.now().uptimeNanoseconds,
            bodyLimit: limits.maxBodySize, keepAlive: isHTTP2 || head.isKeepAlive)
        exchange = current
        connectionGuard?.requestHeadReceived(expectsBody: current.headers.hasTransferEncoding
            || (current.headers.contentLength.flatMap(Int.init) ?? 0) > 0)

        if !isHTTP2 && current.headers.hasUpgrade {
            // The decoder stops at an upgrade request: unless a WebSocket tunnel takes the connection over, it
            // closes after the answer.
            current.keepAlive = false
        }
        if connection.overCapacity {
            respondError(.serviceUnavailable, "the server is at its connection limit; retry shortly", context: context,
                         forceClose: true, extraHeaders: ["Retry-After": "1"])
            return
        }
        let sentTarget = head.uri
        if let refusal = RequestAdmission.admit(&current.head, headers: &current.headers, limits: limits, isHTTP2: isHTTP2) {
            current.refusedBeforeRouting = true
            respondError(refusal.status, refusal.reason, context: context, forceClose: true)
            return
        }
        var head = current.head
        let headers = current.headers
        if head.uri != sentTarget { current.originalTarget = sentTarget }
        var uri = head.uri
        var pathEnd = uri.utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.endIndex
        var path = uri[..<pathEnd]
        if path.hasPrefix(HTTP01Responder.pathPrefix) {
            // An ACME HTTP-01 check (RFC 8555 §8.3), for any host: the CA asks before a site has a certificate.
            let challenges = core.acmeChallenges
            if let answer = challenges.answer(forPath: path) {
                answerChallenge(answer, context: context)
                return
            }
            if challenges.ownsChallengePaths {
                // Maybe a challenge another process sharing the ACME storage started: look on the blocking pool.
                let token = Substring(String(path))
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                let asked = NIOLoopBound(current, eventLoop: context.eventLoop)
                core.blockingPool.runIfActive(eventLoop: context.eventLoop) { challenges.storedAnswer(forPath: token) }
                    .whenComplete { result in
                        let handler = loopBound.value
                        guard let context = handler.transport, handler.exchange === asked.value else { return }
                        handler.answerChallenge((try? result.get()) ?? nil, context: context)
                    }
                return
            }
        }
        let host = headers.host
        guard let site = connection.snapshots.site(forHost: host) else {
            respondError(.notFound, "no site is configured for this host", context: context)
            return
        }
        current.siteName = site.name
        current.siteHosts = site.hosts
        current.hsts = site.hsts
        current.responseHeaders = site.responseHeaders
        current.errorPages = site.errorPages

        if site.redirectHTTPS && !connection.isTLS, let httpsPort = snapshot.httpsPort,
            !path.hasPrefix("/.well-known/acme-challenge/")
        {
            guard let host, let authority = Self.redirectAuthority(host: host, port: httpsPort) else {
                respondError(.badRequest, "the Host header is not a valid host name", context: context)
                return
            }
            respondRedirect(to: "https://\(authority)\(uri)", status: .permanentRedirect, context: context)
            return
        }
        if let rewrites = site.rewrites {
            let query = pathEnd < uri.endIndex ? uri[uri.index(after: pathEnd)...] : nil
            switch rewrites.apply(
                path: path, query: query, facts: facts(current), scratch: loop.rewriteScratch, encodedSlashes: limits.encodedSlashes)
            {
            case .redirect(let location, let status)?:
                respondRedirect(to: location, status: status, context: context)
                return
            case .refused(let reason)?:
                respondError(.badRequest, reason, context: context)
                return
            case .rewrite(let target)?:
                // Routing, handlers and the upstream see the new target; the access log keeps the one sent.
                if current.originalTarget == nil { current.originalTarget = sentTarget }
                current.head.uri = target
                head = current.head
                uri = target
                pathEnd = uri.utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.endIndex
                path = uri[..<pathEnd]
            case nil:
                break
            }
        }
        guard let route = site.route(for: path) else {
            respondError(.notFound, "no route matches this path", context: context)
            return
        }
        current.route = route
        current.responseHeaders = route.responseHeaders
        current.bodyLimit = route.maxBodySize
        if let limiter = route.limiter {
            let client = clientAddress(head.headers, trusted: snapshot.trustedProxies)
            switch limiter.check(clientAddress: client, headers: head.headers, nowMilliseconds: Int64(loop.refreshClock())) {
            case .pass(let lease, let quota):
                current.lease = lease
                if let quota { current.rateLimitHeaders = (limiter.policyHeader, quota) }
            case .passDryRun(let lease):
                current.lease = lease
                current.rateLimitFlag = "rate_limited_dry_run"
            case .refuse(let extra, let status, let message):
                current.rateLimitFlag = "rate_limited"
                respondError(status, message, context: context, extraHeaders: extra)
                return
            }
        }
        if let length = headers.contentLength.flatMap(Int.init), length > route.maxBodySize {
            respondError(.payloadTooLarge, "the request body is larger than \(route.maxBodySize) bytes",
                         context: context, forceClose: true)
            return
        }
        current.pending = (route, site)
        if head.method == .POST, route.collectsBody {
            current.collectedBody = context.channel.allocator.buffer(
                capacity: min(route.maxBodySize, headers.contentLength.flatMap(Int.init) ?? 1024))
        }
        if let expectation = headers.expect, !isHTTP2 {
            // The client waits for a go-ahead before sending its body: give it, now that the request fits.
            guard expectation.lowercased() == "100-continue" else {
                current.pending = nil
                respondError(.expectationFailed, "only Expect: 100-continue is supported", context: context,
                             forceClose: true)
                return
            }
            if head.version.minor >= 1 {
                var interim = context.channel.allocator.buffer(capacity: 32)
                interim.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
                context.write(NIOAny(interim), promise: nil)
                context.flush()
            }
        }
        if case .proxy(let proxyRoute) = route.handler, headers.hasTransferEncoding
            || (headers.contentLength.flatMap(Int.init) ?? 0) > 0
        {
            // A proxied request with a body starts at once: the body streams to the upstream as it arrives.
            // Without one it starts at its end (dispatch), so the head goes upstream in one write.
            current.pending = nil
            startProxy(proxyRoute, exchange: current, context: context)
        }
    }

    private func startProxy(_ route: ProxyRoute, exchange current: Exchange, context: any ExchangeTransport) {
        let requestID: String
        if let presented = current.headers.requestID, HeaderRewriter.acceptableRequestID(presented) {
            requestID = presented
        } else {
            requestID = loop.nextRequestID()
        }
        current.requestID = requestID
        let trusted = current.snapshot.trustedProxies
        let client = ClientInfo(
            address: connection.remoteAddress,
            peerIsTrusted: !trusted.isEmpty && trusted.contains { $0.contains(connection.remoteIP) },
            scheme: connection.isTLS ? "https" : "http")
        let headers = current.headers
        let proxy = core.proxy.makeExchange(
            route: route, on: context.eventLoop, head: current.head, host: headers.host,
            chunked: headers.hasTransferEncoding && headers.contentLength == nil, client: client, requestID: requestID,
            downstream: self)
        current.proxy = proxy
        if current.requestEnded { proxy.requestEnd(trailers: nil) }
        proxy.start()
    }

    private func dispatch(
        _ route: Route, site: Site, head: HTTPRequestHead, headers: RequestHeaderSummary, context: any ExchangeTransport
    ) {
        let uri = head.uri
        let pathEnd = uri.utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.endIndex
        let path = uri[..<pathEnd]
        switch route.handler {
        case .respond(let prepared), .ping(let prepared):
            let body = head.method == .HEAD ? nil : prepared.body
            writeResponse(status: prepared.status, headers: prepared.headers, body: body.map { .buffer($0) } ?? .empty,
                          context: context)
        case .proxy(let proxyRoute):
            if let current = exchange { startProxy(proxyRoute, exchange: current, context: context) }
        case .redirect(let redirect):
            if let current = exchange {
                respondRedirect(to: Self.expand(redirect.template, facts: facts(current)), status: redirect.status, context: context)
            }
        case .trackingAPI(let api) where (path == "/tr/v1/ws" || path == "/tr/v1/ws/") && head.method != .OPTIONS:
            acceptWebSocketIngest(api, head: head, path: path, headers: headers, context: context)
        case .trackingAPI(let api):
            answerTrackingAPI(head: head, path: path, uri: uri, pathEnd: pathEnd, headers: headers, context: context) {
                api.handle($0, now: $1, makeID: $2)
            }
        case .webhook(let receiver):
            answerTrackingAPI(head: head, path: path, uri: uri, pathEnd: pathEnd, headers: headers, context: context) {
                receiver.handle($0, now: $1, makeID: $2)
            }
        case .legacyLinks(let api):
            answerTrackingAPI(head: head, path: path, uri: uri, pathEnd: pathEnd, headers: headers, context: context) { request, now, _ in
                api.handle(request, now: now)
            }
        case .links(let linkRoute):
            let query = pathEnd < uri.endIndex ? uri[uri.index(after: pathEnd)...] : ""
            answerLink(linkRoute, route: route, site: site, head: head, headers: headers, path: path, query: query, context: context)
        case .health:
            answerHealth(context: context)
        case .status:
            answerStatus(head: head, context: context)
        case .trackerMetrics:
            let body = ByteBuffer(string: core.health.trackerMetrics() ?? "{}\n")
            let headers: HTTPHeaders = [
                "Content-Type": "application/json", "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
            ]
            writeResponse(status: .ok, headers: headers, body: head.method == .HEAD ? .empty : .buffer(body), context: context)
        case .insights:
            answerInsights(route: route, head: head, path: path, headers: headers, context: context)
        case .staticFiles(let server):
            var filePath = path
            if server.configuration.stripPrefix {
                filePath = path.dropFirst(route.pathPrefix.utf8.count)
                if !filePath.hasPrefix("/") { filePath = Substring("/" + filePath) }
            }
            let query = pathEnd < uri.endIndex ? uri[uri.index(after: pathEnd)...] : nil
            let request = StaticRequest(method: head.method, path: filePath, query: query, headers: headers)
            switch server.respond(to: request, on: context.eventLoop) {
            case .ready(let response):
                writeStatic(response, context: context)
            case .pending(let future):
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                future.whenSuccess { response in
                    let handler = loopBound.value
                    guard let context = handler.transport, handler.exchange != nil else {
                        if case .file(let file) = response.body { try? file.handle.close() }
                        return
                    }
                    handler.writeStatic(response, context: context)
                }
            }
        }
    }

    /// The key authorization of an HTTP-01 challenge, or 404 for a token nobody here started.
    private func answerChallenge(_ answer: String?, context: any ExchangeTransport) {
        guard let answer else {
            respondError(.notFound, "no such ACME challenge", context: context)
            return
        }
        let body = ByteBuffer(string: answer)
        let headers: HTTPHeaders = [
            "Content-Type": "application/octet-stream", "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        writeResponse(status: .ok, headers: headers, body: exchange?.head.method == .HEAD ? .empty : .buffer(body), context: context)
    }

    /// A site's `health` route: the verdict's status only (the reasons name upstreams and certificates, for the
    /// admin listener's `/health`), 503 when nothing can be served.
    private func answerHealth(context: any ExchangeTransport) {
        let verdict = core.health.verdict()
        let status = verdict?.status ?? .unhealthy
        let body = ByteBuffer(string: "{\"status\":\"\(status.rawValue)\"}\n")
        let headers: HTTPHeaders = [
            "Content-Type": "application/json", "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        let isHead = exchange?.head.method == .HEAD
        writeResponse(status: verdict?.httpStatus ?? .serviceUnavailable, headers: headers, body: isHead ? .empty : .buffer(body), context: context)
    }

    /// The older tracker's `/status`, in its shape: `[{"Key":"client","Value":"<address>"},{"Key":"conns","Value":N}]`.
    private func answerStatus(head: HTTPRequestHead, context: any ExchangeTransport) {
        guard let current = exchange else { return }
        var body = ByteBuffer()
        body.writeJSONField("[{\"Key\":\"client\",\"Value\":", clientAddress(head.headers, trusted: current.snapshot.trustedProxies), first: true)
        body.writeString("},{\"Key\":\"conns\",\"Value\":\(core.openConnections.load(ordering: .relaxed))}]\n")
        let headers: HTTPHeaders = [
            "Content-Type": "application/json", "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        writeResponse(status: .ok, headers: headers, body: head.method == .HEAD ? .empty : .buffer(body), context: context)
    }

    /// The reports' pages mounted on a site: answered by the gateway off the loop (a report is control-plane work),
    /// written from the loop when done. The mount itself redirects to its folder, so relative links resolve.
    private func answerInsights(
        route: Route, head: HTTPRequestHead, path: Substring, headers: RequestHeaderSummary, context: any ExchangeTransport
    ) {
        guard let current = exchange else { return }
        let mount = route.pathPrefix.hasSuffix("/") ? String(route.pathPrefix.dropLast()) : route.pathPrefix
        let below = path.dropFirst(mount.utf8.count)
        guard !below.isEmpty else {
            respondRedirect(to: mount + "/", status: .permanentRedirect, context: context)
            return
        }
        guard below.hasPrefix("/") else {
            respondError(.notFound, "no such page", context: context)
            return
        }
        let request = InsightsWebRequest(
            method: head.method, path: String(below), parameters: AdminHandler.queryParameters(head.uri),
            authorization: head.headers.first(name: "authorization"), cookie: headers.cookie,
            body: current.collectedBody.map { String(buffer: $0) } ?? "",
            clientAddress: clientAddress(head.headers, trusted: current.snapshot.trustedProxies), basePath: mount + "/",
            secure: connection.isTLS)
        current.collectedBody = nil
        let hook = core.insightsWeb
        let loopBound = NIOLoopBound((self, current), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let isHead = head.method == .HEAD
        Task {
            let answer = await hook.answer(request)
            eventLoop.execute {
                let (handler, exchange) = loopBound.value
                guard let context = handler.transport, handler.exchange === exchange else { return }
                guard let answer else {
                    handler.respondError(.notFound, "no such page", context: context)
                    return
                }
                let body = ByteBuffer(string: answer.body)
                var headers: HTTPHeaders = [
                    "Content-Type": answer.contentType, "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
                ]
                headers.add(contentsOf: answer.headers)
                handler.writeResponse(status: answer.status, headers: headers, body: isHead ? .empty : .buffer(body), context: context)
            }
        }
    }

    /// A tracking API call (or a webhook's): answered now (the events it made wait for `record`), or when a lookup
    /// completes.
    private func answerTrackingAPI(
        head: HTTPRequestHead, path: Substring, uri: String, pathEnd: String.Index, headers: RequestHeaderSummary,
        context: any ExchangeTransport, _ handle: (APIRequest, Int64, () -> EventID) -> APIOutcome
    ) {
        guard let current = exchange, let events = loop.events else { return }
        let request = APIRequest(
            method: head.method, path: path, query: pathEnd < uri.endIndex ? uri[uri.index(after: pathEnd)...] : "",
            body: current.collectedBody, cookie: headers.cookie, origin: head.headers.first(name: "origin"),
            clientAddress: clientAddress(head.headers, trusted: current.snapshot.trustedProxies),
            siteHosts: current.siteHosts, isTLS: connection.isTLS, eventLoop: context.eventLoop, headers: head.headers)
        current.collectedBody = nil
        let now = Int64(loop.refreshClock())
        switch handle(request, now, { events.nextID(unixMilliseconds: now) }) {
        case .respond(let response, let made):
            current.apiEvents = made
            writeAPIResponse(response, context: context)
        case .deferred(let future):
            let loopBound = NIOLoopBound((self, current), eventLoop: context.eventLoop)
            future.whenSuccess { response in
                let (handler, exchange) = loopBound.value
                guard let context = handler.transport, handler.exchange === exchange else { return }
                handler.writeAPIResponse(response, context: context)
            }
        }
    }

    /// A short link: redirect (counted), gone (410 or the fallback), or unknown (404, or the next route).
    private func answerLink(
        _ linkRoute: LinkRoute, route: Route, site: Site, head: HTTPRequestHead, headers: RequestHeaderSummary,
        path: Substring, query: Substring, context: any ExchangeTransport
    ) {
        guard let current = exchange else { return }
        var slug = path.dropFirst(route.pathPrefix.utf8.count)
        while slug.first == "/" { slug = slug.dropFirst() }
        let host = RouteTable.normalizeHost(headers.host ?? "")
        let now = Int64(loop.refreshClock())
        let location: String
        let status: HTTPResponseStatus
        let clicked: ResolvedLink
        switch linkRoute.service.index.resolve(host: host, slug: slug, now: now) {
        case .redirect(let link):
            location = link.target(query: query)
            status = HTTPResponseStatus(statusCode: link.status)
            clicked = link
        case .gone(let link):
            guard let fallback = link.fallback else {
                let reason = link.expired ? "this link has expired" : "this link has reached its click limit"
                respondError(.gone, reason, context: context, extraHeaders: ["Cache-Control": "private, max-age=0"])
                return
            }
            location = fallback
            status = .found
            clicked = link
        case .unknown:
            if linkRoute.fallsThrough, let next = site.route(for: path, after: route) {
                current.route = next
                dispatch(next, site: site, head: head, headers: headers, context: context)
            } else {
                respondError(.notFound, "no link \"\(slug)\" on \(host)", context: context)
            }
            return
        }
        if let events = loop.events {
            var properties = ByteBuffer()
            properties.writeJSONField("{\"link_id\":", clicked.id.description, first: true)
            // The client goes to the whole destination; the stored copy keeps no personal query parameters.
            properties.writeJSONField("\"to\":", events.scrubber.scrub(url: location) ?? location)
            properties.writeStaticString("}")
            current.click = LinkClick(
                id: clicked.id, recent: linkRoute.service.recentClicks, slug: clicked.slug, properties: String(buffer: properties))
        }
        // Shared caches must not answer clicks themselves (each is an event and may count against a limit). No body:
        // clients follow Location, and a click is answered with as little work as a cached file.
        writeResponse(status: status, headers: Self.linkRedirectHeaders, body: .empty, context: context, location: location)
    }

    /// The fixed part of every short-link redirect (the Location is added as the head is written).
    private static let linkRedirectHeaders: HTTPHeaders = ["Cache-Control": "private, max-age=0", "Content-Length": "0"]

    private func writeAPIResponse(_ response: APIResponse, context: any ExchangeTransport) {
        let body: Body = response.body.readableBytes > 0 ? .buffer(response.body) : .empty
        writeResponse(status: response.status, headers: response.headers, body: body, context: context)
    }

    /// `host[:port]` for an HTTPS redirect, or nil when the Host value has characters no host name has.
    static func redirectAuthority(host: String, port: Int) -> String? {
        let bare = RouteTable.normalizeHost(host)
        guard !bare.isEmpty, bare.utf8.allSatisfy({ byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
                || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "]")
        }) else { return nil }
        return port == 443 ? bare : "\(bare):\(port)"
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

    private enum Body {
        case empty
        case buffer(ByteBuffer)
        case file(FileBody)
    }

    private func writeStatic(_ response: StaticResponse, context: any ExchangeTransport) {
        if let reason = response.errorReason, response.status.code >= 400 {
            respondError(response.status, reason, context: context, extraHeaders: response.headers)
            return
        }
        if response.status.code >= 300 && response.status.code < 400, let location = response.headers.first(name: "location") {
            respondRedirect(to: location, status: response.status, context: context)
            return
        }
        let body: Body
        switch response.body {
        case .empty: body = .empty
        case .buffer(let buffer): body = .buffer(buffer)
        case .file(let file): body = .file(file)
        }
        if let (file, variant) = response.cachedVariant, response.status == .ok {
            writeResponse(status: response.status, headers: response.headers, body: body, context: context,
                          cached: (file, variant))
        } else {
            writeResponse(status: response.status, headers: response.headers, body: body, context: context)
        }
    }

    private func respondRedirect(to location: String, status: HTTPResponseStatus, context: any ExchangeTransport) {
        let body = ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(location)\n")
        let headers: HTTPHeaders = [
            "Location": location, "Content-Type": "text/plain; charset=utf-8",
            "Content-Length": String(body.readableBytes),
        ]
        let isHead = exchange?.head.method == .HEAD
        writeResponse(status: status, headers: headers, body: isHead ? .empty : .buffer(body), context: context)
    }

    private func respondError(
        _ status: HTTPResponseStatus, _ reason: String, context: any ExchangeTransport, forceClose: Bool = false,
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
        if forceClose { exchange?.keepAlive = false }
        let isHead = exchange?.head.method == .HEAD
        writeResponse(status: status, headers: headers, body: isHead ? .empty : .buffer(body), context: context)
    }

    /// Writes a response. `cached` names a cached file variant whose serialized head the loop can reuse.
    /// `location` is added to `headers` as the head is written (a short-link redirect passes a shared constant
    /// header list and its target here, so answering a click builds no header list).
    private func writeResponse(
        status: HTTPResponseStatus, headers: HTTPHeaders, body: Body, context: any ExchangeTransport,
        cached: (CachedFile, Int)? = nil, location: String? = nil
    ) {
        guard let current = exchange, !current.responded, !closed else {
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
        let sendsServer = rules?.omitsServer != true
        // A request whose body we have not read to the end cannot be followed on the same connection.
        if !isHTTP2 && !current.requestEnded && status.code >= 400
            && (current.headers.hasTransferEncoding || (current.headers.contentLength.flatMap(Int.init) ?? 0) > 0)
        {
            current.keepAlive = false
        }
        if quiescing { current.keepAlive = false }
        current.responded = true
        current.status = status
        loop.refreshClock()
        var added = ExchangeFields(
            hsts: connection.isTLS && rules?.omitsHSTS != true ? current.hsts : nil, location: location,
            rateLimit: current.rateLimitHeaders)
        if loop.events != nil {
            current.isHTML = headers.first(name: "content-type")?.utf8.starts(with: "text/html".utf8) ?? false
            added.visitorCookie = issueVisitorCookie(current)
        }
        if isHTTP2 {
            // Sized for a usual head, so filling it does not reallocate (a cached file's fields are copied in).
            var block = FieldList(reservingCapacity: 512, fields: 16)
            if let (file, variant) = cached {
                block.append(contentsOf: loop.http2Headers(file: file, variant: variant, base: headers, rules: rules))
            } else {
                block.append(name: ":status", value: String(status.code))
                for (name, value) in headers { block.append(name: name, value: value) }
                block.append(name: "date", value: loop.dateHeader)
                if sendsServer { block.append(name: "server", value: "vantage") }
            }
            added.write(to: &block)
            var endStream = false
            if case .empty = body { endStream = true }
            context.writeHTTP2(.head(block, endStream: endStream), promise: nil)
        } else {
            // The head goes out as bytes: a per-second cached block for cached files, serialized here otherwise.
            var head: ByteBuffer
            if let (file, variant) = cached {
                head = loop.serializedHead(file: file, variant: variant, base: headers, rules: rules)
            } else {
                head = context.channel.allocator.buffer(capacity: 256)
                HTTPHead.writeStatusLine(status, into: &head)
                HTTPHead.write(headers, into: &head)
                head.writeStaticString("Date: ")
                head.writeString(loop.dateHeader)
                head.writeStaticString(sendsServer ? "\r\nServer: vantage\r\n" : "\r\n")
            }
            var tail = HTTP1HeaderLines(buffer: context.channel.allocator.buffer(capacity: 64))
            added.write(to: &tail)
            if !current.keepAlive {
                tail.add("Connection", "close")
            } else if current.head.version.minor == 0 {
                tail.add("Connection", "keep-alive")
            }
            tail.buffer.writeStaticString("\r\n")
            if case .buffer(let payload) = body, connection.isTLS, payload.readableBytes <= 16 << 10 {
                // Under TLS every write becomes its own record: send head and a small body as one. (On plain
                // connections writev takes the three buffers as they are; copying measured slower there.)
                var combined = context.channel.allocator.buffer(
                    capacity: head.readableBytes + tail.buffer.readableBytes + payload.readableBytes)
                combined.writeImmutableBuffer(head)
                combined.writeImmutableBuffer(tail.buffer)
                combined.writeImmutableBuffer(payload)
                context.write(NIOAny(combined), promise: nil)
                finish(context: context, sent: payload.readableBytes)
                return
            }
            context.write(NIOAny(head), promise: nil)
            context.write(NIOAny(tail.buffer), promise: nil)
        }
        switch body {
        case .empty:
            finish(context: context, sent: 0)
        case .buffer(let buffer):
            let size = buffer.readableBytes
            if size > 0 {
                if isHTTP2 {
                    context.writeHTTP2(.data(buffer, endStream: true), promise: nil)
                } else {
                    context.write(NIOAny(buffer), promise: nil)
                }
            } else if isHTTP2 {
                context.writeHTTP2(.data(ByteBuffer(), endStream: true), promise: nil)
            }
            finish(context: context, sent: size)
        case .file(let file):
            sendFile(file, context: context)
        }
    }

    private func sendFile(_ file: FileBody, context: any ExchangeTransport) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        if !connection.isTLS && !isHTTP2 {
            // Plain HTTP/1.1: sendfile(2), the bytes never enter user space. In pieces of 256 KB, each with its own
            // completion: a client that stops reading is noticed (send_timeout) by the pieces no longer leaving.
            var offset = file.offset
            let end = file.offset + file.length
            var last: EventLoopFuture<Void>?
            while offset < end {
                let pieceEnd = min(end, offset + (256 << 10))
                let written = context.writeWithFuture(
                    NIOAny(IOData.fileRegion(FileRegion(fileHandle: file.handle, readerIndex: offset, endIndex: pieceEnd))))
                trackWrite(written)
                last = written
                offset = pieceEnd
            }
            let done = last ?? context.eventLoop.makeSucceededVoidFuture()
            done.whenComplete { _ in try? file.handle.close() }
            exchange?.bodyWritten = done
            finish(context: context, sent: file.length)
            return
        }
        context.flush()
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let isHTTP2 = self.isHTTP2
        let fileIO = core.fileIO
        let allocator = context.channel.allocator
        let eventLoop = context.eventLoop
        /// Reads `count` bytes from `offset` in `chunkSize` pieces, each written (and its write completed) before
        /// the next is read.
        @Sendable func stream(from offset: Int, count: Int, chunkSize: Int) -> EventLoopFuture<Void> {
            fileIO.readChunked(
                fileHandle: file.handle, fromOffset: Int64(offset), byteCount: count, chunkSize: chunkSize,
                allocator: allocator, eventLoop: eventLoop
            ) { chunk in
                let handler = loopBound.value
                guard handler.transport != nil, !handler.closed else {
                    return contextBound.value.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                let written = isHTTP2
                    ? contextBound.value.writeAndFlushHTTP2(.data(chunk, endStream: false))
                    : contextBound.value.writeAndFlushWithFuture(NIOAny(chunk))
                handler.trackWrite(written)
                return written
            }
        }
        // On HTTP/2 the first piece is small: a stream whose window never opens (a client that reads nothing)
        // holds 16 KB until send_timeout resets it, not 128 KB; the rest follows in large pieces once it moved.
        let first = isHTTP2 ? min(16 << 10, file.length) : 0
        let sent = first > 0 && first < file.length
            ? stream(from: file.offset, count: first, chunkSize: first).flatMap {
                stream(from: file.offset + first, count: file.length - first, chunkSize: 128 << 10)
            }
            : stream(from: file.offset, count: file.length, chunkSize: 128 << 10)
        sent.whenComplete { result in
            try? file.handle.close()
            let handler = loopBound.value
            switch result {
            case .success:
                guard let context = handler.transport else { return }
                if isHTTP2 {
                    context.writeHTTP2(.data(ByteBuffer(), endStream: true), promise: nil)
                }
                handler.finish(context: context, sent: file.length)
            case .failure:
                contextBound.value.closeExchange()
            }
        }
    }

    /// Ends the response, logs it, and decides whether the connection stays open.
    private func finish(context: any ExchangeTransport, sent: Int) {
        guard let current = exchange else { return }
        current.sentBytes = sent
        current.responseFinished = true
        current.releaseLease()
        let keepAlive = current.keepAlive
        // The event is in the spool before the last bytes of the answer leave: whoever got an answer has an event,
        // even if the process is killed right after.
        record(current)
        if isHTTP2 {
            if !current.requestEnded {
                // The answer is complete but the client is still sending (an error before the body was read):
                // RST_STREAM with NO_ERROR tells it to stop without failing the response (RFC 9113 §8.1). The session
                // sends it after the answer's last frame, in a later write.
                context.flushNow()
                context.writeHTTP2(.reset(.noError), promise: nil)
                current.requestEnded = true
            }
            context.flush()
        } else if keepAlive {
            context.flush()
        } else {
            closing = true
            queued.removeAll()
            // A malformed request after this one is answered (and the connection closed) once this one is done.
            if refusalAfterCurrent == nil { closeAfterPendingWrites(context: context) }
        }
        if keepAlive, let connectionGuard {
            if let written = current.bodyWritten {
                let bound = NIOLoopBound(connectionGuard, eventLoop: context.eventLoop)
                written.whenComplete { _ in bound.value.responseCompleted() }
            } else {
                connectionGuard.responseCompleted()
            }
        }
        if current.requestEnded || isHTTP2 { completeExchange(context: context) }
    }

    // MARK: - Access log and metrics

    /// The request's own event (what a tracking API call's events are completed by).
    private func requestEvent(_ exchange: Exchange, id: EventID, started: Int64, elapsed: UInt64, client: String) -> TrackingEvent {
        let head = exchange.head
        let headers = exchange.headers
        let version: String = isHTTP2 ? "HTTP/2.0" : (head.version.minor == 1 ? "HTTP/1.1" : "HTTP/1.0")
        // The Go tracker's short-link API carries a password in its path: it never reaches the log or the event.
        let target = LegacyShortLinkAPI.redactedTarget(head.uri) ?? head.uri
        return TrackingEvent(
            id: id, timeMilliseconds: started, site: exchange.siteName,
            host: headers.host ?? "", kind: Self.eventKind(exchange), method: head.method.rawValue,
            scheme: connection.isTLS ? "https" : "http", target: target, status: Int(exchange.status.code),
            bytesIn: exchange.bodyBytes, bytesOut: exchange.sentBytes, durationMicroseconds: Int(elapsed / 1000),
            upstream: exchange.proxy?.upstreamAddress ?? "",
            upstreamMicroseconds: exchange.proxy?.upstreamHeaderNanoseconds.map { Int($0 / 1000) } ?? 0,
            referrer: headers.referer ?? "", userAgent: headers.userAgent ?? "", httpVersion: version,
            tlsVersion: connection.tlsVersion ?? "", requestID: exchange.requestID ?? presentedRequestID(headers), clientAddress: client)
    }

    /// What enrichment reads about the request besides its event.
    private func requestFacts(_ exchange: Exchange, client: String) -> RequestFacts {
        let headers = exchange.headers
        var facts = RequestFacts(clientAddress: client, userAgent: headers.userAgent, cookie: headers.cookie)
        facts.doNotTrack = headers.doNotTrack
        facts.globalPrivacyControl = headers.globalPrivacyControl
        facts.siteHosts = exchange.siteHosts
        facts.issuedVisitorID = exchange.issuedVisitorID
        return facts
    }

    /// A GET answered 2xx or 304 with `text/html` that is not a prefetch, prerender or preview (DESIGN.md §4).
    private static func isPageview(_ exchange: Exchange) -> Bool {
        let code = exchange.status.code
        return exchange.isHTML && exchange.head.method == .GET && ((200..<300).contains(code) || code == 304)
            && !exchange.headers.isPrefetch
    }

    private static func eventKind(_ exchange: Exchange) -> TrackingEvent.Kind {
        if exchange.refusedBeforeRouting { return .refused }
        return isPageview(exchange) ? .pageview : .request
    }

    /// With visitor cookies on: a visitor id in a `Set-Cookie` for a page view of a visitor without one (and
    /// without a DNT/GPC signal the configuration honours).
    private func issueVisitorCookie(_ exchange: Exchange) -> String? {
        guard let enricher = loop.enricher, enricher.visitors.cookies, exchange.route?.track ?? true,
            Self.isPageview(exchange)
        else { return nil }
        let visitors = enricher.visitors
        let headers = exchange.headers
        if (visitors.honorDoNotTrack && headers.doNotTrack) || (visitors.honorGlobalPrivacyControl && headers.globalPrivacyControl) {
            return nil
        }
        if let cookie = headers.cookie, let present = Enricher.cookieValue(cookie, name: visitors.cookieName),
            Enricher.acceptableVisitorID(present)
        {
            return nil
        }
        // The cookie carries the browser's cookieless id, so what it did before returning the cookie (and its
        // requests that never carry it) stays one visitor.
        let visitorID = enricher.visitorIDForCookie(
            site: exchange.siteName, clientAddress: clientAddress(exchange.head.headers, trusted: exchange.snapshot.trustedProxies),
            userAgent: headers.userAgent, timeMilliseconds: Int64(loop.refreshClock()))
        exchange.issuedVisitorID = visitorID
        return enricher.visitorCookie(visitorID, secureTransport: connection.isTLS)
    }

    /// Whether the visitor clicked this link within the repeat window already (so reports count unique clicks;
    /// machines are not marked: they are flagged as bots and left out of unique counts anyway).
    private static func isRepeatClick(_ event: TrackingEvent, linkID: LinkID, recent: RecentClicks) -> Bool {
        guard !event.visitorID.isEmpty else { return false }
        var hasher = SipHash24(key0: 0x6c69_6e6b_636c_6963 ^ linkID.high, key1: linkID.low)
        hasher.combineField(event.visitorID)
        return recent.isRepeat(hasher.finalize(), now: UInt32(clamping: event.timeMilliseconds / 1000))
    }

    private func record(_ exchange: Exchange) {
        let elapsed = NIODeadline.now().uptimeNanoseconds &- exchange.startNanoseconds
        (exchange.route?.metrics ?? core.unroutedMetrics).record(
            loop: loop.index, status: exchange.status, nanoseconds: Int(elapsed), sent: exchange.sentBytes,
            received: exchange.bodyBytes)
        let events = exchange.route?.track ?? true ? loop.events : nil
        let accessLog = exchange.route?.accessLog ?? true ? loop.accessLog : nil
        guard events != nil || accessLog != nil else { return }
        let now = loop.refreshClock()
        let head = exchange.head
        let headers = exchange.headers
        let client = clientAddress(head.headers, trusted: exchange.snapshot.trustedProxies)
        let tls = connection.tlsVersion
        let status = Int(exchange.status.code)
        let upstreamMicroseconds = exchange.proxy?.upstreamHeaderNanoseconds.map { Int($0 / 1000) }
        /// The ID of the event this request became (the first of a tracking API call's), for the access log.
        var recordedEventID: EventID?
        if let events {
            let started = Int64(now) - Int64(elapsed / 1_000_000)
            var event = requestEvent(exchange, id: events.nextID(unixMilliseconds: started), started: started, elapsed: elapsed, client: client)
            recordedEventID = event.id
            if let enricher = loop.enricher {
                let facts = requestFacts(exchange, client: client)
                if let click = exchange.click {
                    event.kind = .linkClick
                    event.eventName = click.slug
                    event.properties = click.properties
                    enricher.enrich(&event, facts: facts)
                    if event.botReason.isEmpty {
                        event.eventType = Self.isRepeatClick(event, linkID: click.id, recent: click.recent) ? "repeat" : "unique"
                    }
                    events.record(event, nowMilliseconds: Int64(now))
                } else if exchange.apiEvents.isEmpty {
                    enricher.enrich(&event, facts: facts)
                    if !exchange.rateLimitFlag.isEmpty { event.eventType = exchange.rateLimitFlag }
                    events.record(event, nowMilliseconds: Int64(now))
                } else {
                    // A tracking API call records what it was sent instead of the plain request.
                    for apiEvent in exchange.apiEvents {
                        var completed = apiEvent.completed(byRequest: event)
                        if recordedEventID == nil { recordedEventID = completed.id }
                        enricher.enrich(&completed, facts: facts)
                        events.record(completed, nowMilliseconds: Int64(now))
                    }
                }
            } else {
                events.record(event, nowMilliseconds: Int64(now))
            }
        }
        guard let accessLog else { return }
        // The log keeps the target as sent, less personal query parameters (as the events do).
        let scrubber = loop.events?.scrubber ?? QueryScrubber.standard
        let original = exchange.originalTarget ?? head.uri
        let sentTarget = LegacyShortLinkAPI.redactedTarget(original) ?? original
        let format = loop.accessLogFormat
        let entry = AccessLogEntry(
            milliseconds: now % 1000, client: client, method: head.method.rawValue, host: headers.host,
            uri: scrubber.scrub(url: sentTarget) ?? sentTarget,
            proto: isHTTP2 ? "HTTP/2.0" : (head.version.minor == 1 ? "HTTP/1.1" : "HTTP/1.0"), status: status,
            bytesSent: exchange.sentBytes, bytesReceived: exchange.bodyBytes, elapsedNanoseconds: elapsed,
            site: exchange.siteName, route: exchange.route?.label ?? "-", tls: tls, requestID: exchange.requestID,
            eventID: format.writes(.eventID) ? recordedEventID?.description : nil, upstream: exchange.proxy?.upstreamAddress,
            upstreamMicroseconds: upstreamMicroseconds, userAgent: headers.userAgent,
            referer: headers.referer.map { scrubber.scrub(url: $0) ?? $0 })
        let (isoSecond, commonLogSecond) = (loop.isoSecond, loop.commonLogSecond)
        accessLog.append { buffer in
            entry.write(into: &buffer, format: format, isoSecond: isoSecond, commonLogSecond: commonLogSecond)
        }
    }

    /// The client's own `X-Request-Id` when it is acceptable (proxied requests already settled theirs).
    /// What `{placeholder}`s of header rules are filled from.
    private func facts(_ current: Exchange) -> ExchangeFacts {
        ExchangeFacts(
            head: current.head, host: current.headers.host, routePrefix: current.route?.pathPrefix, isTLS: connection.isTLS,
            requestID: { [loop] in
                // Settled once, so the answer, the upstream and the event carry the same ID.
                if let id = current.requestID { return id }
                let presented = self.presentedRequestID(current.headers)
                let id = presented.isEmpty ? loop.nextRequestID() : presented
                current.requestID = id
                return id
            },
            clientAddress: { self.clientAddress(current.head.headers, trusted: current.snapshot.trustedProxies) })
    }

    private func presentedRequestID(_ headers: RequestHeaderSummary) -> String {
        guard let presented = headers.requestID, HeaderRewriter.acceptableRequestID(presented) else { return "" }
        return presented
    }

    /// The client address: the peer, or the right-most untrusted `X-Forwarded-For` hop when the peer is a trusted
    /// proxy (so a client cannot spoof its address by sending the header itself).
    private func clientAddress(_ headers: HTTPHeaders, trusted: [CIDR]) -> String {
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(connection.remoteIP) }),
            headers.contains(name: "x-forwarded-for")
        else { return connection.remoteAddress }
        let hops = headers[canonicalForm: "x-forwarded-for"].map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let bytes = parseIPAddress(hop) else { return connection.remoteAddress }
            if !trusted.contains(where: { $0.contains(bytes) }) { return hop }
        }
        return hops.first ?? connection.remoteAddress
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The parser refused the bytes (ambiguous framing, a bare LF, a control character, a head too large…) and the
        // byte stream can no longer be trusted: answer with the refusal's status and reason, then close.
        guard !isHTTP2, let refusal = error as? RequestParser.Refusal, !closed else {
            context.close(promise: nil)
            return
        }
        if let current = exchange, current.requestEnded {
            // The bad bytes follow a complete request, which is answered first. A client that asked to close
            // sent nothing more that counts; one that did not learns why the connection ends.
            queued.removeAll()
            if current.head.isKeepAlive && !current.responseFinished { refusalAfterCurrent = refusal }
            current.keepAlive = false
            return
        }
        refuse(refusal.status, refusal.reason, context: context)
    }

    /// Refuses the request being read (or, between requests, the bytes that were to be one): a 400/408/431 when no
    /// answer has started, logged and recorded like any answer; the connection then closes. A response already under
    /// way can only be cut short.
    private func refuse(_ status: HTTPResponseStatus, _ reason: String, context: any ExchangeTransport) {
        guard let current = exchange else {
            refuseWithoutHead(status, reason, context: context)
            return
        }
        current.proxy?.cancel()
        current.pending = nil
        queued.removeAll()
        if current.responded {
            current.keepAlive = false
            context.closeExchange()
            return
        }
        respondError(status, reason, context: context, forceClose: true)
    }

    /// Answers bytes that never became a request head (malformed, too large, too slow) through an exchange of its
    /// own, so the refusal is one access-log line and one `refused` event like every other answer.
    /// HTTP/2: a request whose header list was over `h2_max_header_list_size` (its fields were dropped) is answered
    /// 431 like an oversized HTTP/1.1 head; a body still coming is stopped with RST_STREAM(NO_ERROR) after it.
    func refuseHeaderListTooLarge(limit: Int, requestEnded: Bool) {
        guard let transport else { return }
        refuseWithoutHead(
            .requestHeaderFieldsTooLarge, "the request's header fields exceed \(limit) bytes (h2_max_header_list_size)",
            context: transport, requestEnded: requestEnded)
    }

    private func refuseWithoutHead(
        _ status: HTTPResponseStatus, _ reason: String, context: any ExchangeTransport, requestEnded: Bool = true
    ) {
        let head = HTTPRequestHead(version: isHTTP2 ? .http2 : .http1_1, method: .RAW(value: "-"), uri: "")
        let current = Exchange(
            head: head, headers: RequestHeaderSummary(), snapshot: connection.snapshots.current,
            startNanoseconds: NIODeadline.now().uptimeNanoseconds, bodyLimit: 0, keepAlive: false)
        current.refusedBeforeRouting = true
        current.requestEnded = requestEnded
        exchange = current
        respondError(status, reason, context: context, forceClose: true)
    }
}

/// A short-link click, carried from the answer to the request's event.
struct LinkClick {
    var id: LinkID
    var recent: RecentClicks
    var slug: String
    /// `{"link_id":…,"to":…}`.
    var properties: String
}

/// How a proxied response body goes to the client.
enum ProxyFraming {
    /// No body (HEAD, 204, 304) or nothing written yet.
    case none
    /// As received: the upstream's Content-Length holds, or the body ends when the connection closes (HTTP/1.0).
    case raw
    /// HTTP/1.1 chunked, for bodies of unknown length.
    case chunked
    /// DATA frames.
    case http2
}

// MARK: - Proxied responses

extension RequestHandler: ProxyDownstream {
    /// HTTP/2 response bytes allowed in flight before the upstream is paused.
    private static let http2ResponseWindow = 256 << 10

    func proxyResponseHead(_ head: ProxyResponseHead) {
        guard let current = exchange, !current.responded, !closed, let context = transport else { return }
        if head.status.code >= 400, case .proxy(let proxyRoute) = current.route?.handler, proxyRoute.configuration.interceptErrors,
            current.errorPages?.page(for: Int(head.status.code)) != nil
        {
            current.interceptedStatus = head.status
            return
        }
        current.responded = true
        current.status = head.status
        if quiescing { current.keepAlive = false }
        let code = head.status.code
        let bodiless = current.head.method == .HEAD || code == 204 || code == 304 || code < 200
        loop.refreshClock()
        let rules = current.responseHeaders
        var added = ExchangeFields(
            requestID: current.requestID ?? "", hsts: connection.isTLS && rules?.omitsHSTS != true ? current.hsts : nil,
            rateLimit: current.rateLimitHeaders)
        if isHTTP2 {
            var block = FieldList(reservingCapacity: 512, fields: 16)
            block.append(name: ":status", value: String(code))
            let passed = head.forEachHeader(dropping: rules?.rules) { name, value in
                block.append(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
            }
            rules?.forEachAddition(facts: facts(current)) { block.append(name: $0, value: $1) }
            if !passed.hasDate { block.append(name: "date", value: loop.dateHeader) }
            current.isHTML = passed.isHTML
            if loop.events != nil { added.visitorCookie = issueVisitorCookie(current) }
            added.write(to: &block)
            current.framing = bodiless ? .none : .http2
            context.writeHTTP2(.head(block, endStream: false), promise: nil)
            return
        }
        var lines = HTTP1HeaderLines(buffer: context.channel.allocator.buffer(capacity: 384))
        HTTPHead.writeStatusLine(head.status, into: &lines.buffer)
        let passed = head.writeHTTP1Headers(dropping: rules?.rules, into: &lines.buffer)
        rules?.forEachAddition(facts: facts(current)) { lines.add(name: $0, value: $1) }
        if !passed.hasDate { lines.add("Date", loop.dateHeader) }
        current.isHTML = passed.isHTML
        if loop.events != nil { added.visitorCookie = issueVisitorCookie(current) }
        added.write(to: &lines)
        if bodiless {
            current.framing = .none
        } else if passed.hasContentLength {
            current.framing = .raw
        } else if current.head.version.minor >= 1 {
            lines.buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
            current.framing = .chunked
        } else {
            // An HTTP/1.0 client learns the end of the body from the connection closing.
            current.framing = .raw
            current.keepAlive = false
        }
        if !current.keepAlive {
            lines.buffer.writeStaticString("Connection: close\r\n")
        } else if current.head.version.minor == 0 {
            lines.buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        lines.buffer.writeStaticString("\r\n")
        if connection.isTLS {
            current.heldHead = lines.buffer
        } else {
            context.write(NIOAny(lines.buffer), promise: nil)
        }
    }

    /// Writes a held response head now (a flush, a large body piece or the end came first).
    private func writeHeldHead(_ current: Exchange, context: any ExchangeTransport) {
        guard let held = current.heldHead else { return }
        current.heldHead = nil
        context.write(NIOAny(held), promise: nil)
    }

    func proxyResponseBody(_ buffer: ByteBuffer) -> Bool {
        guard let current = exchange, !closed, let context = transport, current.interceptedStatus == nil else { return true }
        let size = buffer.readableBytes
        guard size > 0 else { return true }
        current.sentBytes += size
        switch current.framing {
        case .none:
            return true
        case .raw:
            if var held = current.heldHead, size <= 16 << 10 {
                current.heldHead = nil
                held.writeImmutableBuffer(buffer)
                context.write(NIOAny(held), promise: nil)
            } else {
                writeHeldHead(current, context: context)
                context.write(NIOAny(buffer), promise: nil)
            }
        case .chunked:
            var prefix = current.heldHead ?? context.channel.allocator.buffer(capacity: 12)
            current.heldHead = nil
            prefix.writeString(String(size, radix: 16))
            prefix.writeStaticString("\r\n")
            if size <= 16 << 10 && connection.isTLS {
                prefix.writeImmutableBuffer(buffer)
                prefix.writeStaticString("\r\n")
                context.write(NIOAny(prefix), promise: nil)
            } else {
                context.write(NIOAny(prefix), promise: nil)
                context.write(NIOAny(buffer), promise: nil)
                context.write(NIOAny(ByteBuffer(staticString: "\r\n")), promise: nil)
            }
        case .http2:
            // Flow control holds data inside the HTTP/2 session, so channel writability says nothing about this
            // stream: count the bytes until their writes complete.
            current.unsentFrameBytes += size
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeHTTP2(.data(buffer, endStream: false), promise: promise)
            writeStarted(on: context.eventLoop)
            // One callback per frame does both: send progress, and the window that paces the upstream.
            let bound = NIOLoopBound((self, current), eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { _ in
                let (handler, exchange) = bound.value
                handler.writeCompleted()
                exchange.unsentFrameBytes -= size
                if exchange.proxyResponsePaused && exchange.unsentFrameBytes <= Self.http2ResponseWindow / 2 {
                    exchange.proxyResponsePaused = false
                    exchange.proxy?.downstreamWritable()
                }
            }
            if current.unsentFrameBytes > Self.http2ResponseWindow {
                current.proxyResponsePaused = true
                return false
            }
            return true
        }
        if !context.channel.isWritable {
            current.proxyResponsePaused = true
            return false
        }
        return true
    }

    func proxyResponseFlush() {
        guard let context = transport else { return }
        if let current = exchange { writeHeldHead(current, context: context) }
        context.flush()
    }

    func proxyResponseEnd(trailers: HTTPHeaders?) {
        guard let current = exchange, !closed, let context = transport else { return }
        if let status = current.interceptedStatus {
            current.interceptedStatus = nil
            if !current.requestEnded && !isHTTP2 { current.keepAlive = false }
            respondError(status, "the application answered \(status.code) \(status.reasonPhrase)", context: context)
            return
        }
        if isHTTP2 {
            if let trailers, !trailers.isEmpty, current.framing == .http2 {
                var block = FieldList()
                for (name, value) in trailers { block.append(name: name, value: value) }
                context.writeHTTP2(.trailers(block), promise: nil)
            } else {
                context.writeHTTP2(.data(ByteBuffer(), endStream: true), promise: nil)
            }
        } else {
            if current.framing == .chunked {
                var last = current.heldHead ?? context.channel.allocator.buffer(capacity: 64)
                current.heldHead = nil
                last.writeStaticString("0\r\n")
                if let trailers { HTTPHead.write(trailers, into: &last) }
                last.writeStaticString("\r\n")
                context.write(NIOAny(last), promise: nil)
            } else {
                writeHeldHead(current, context: context)
            }
            // The upstream answered before the whole request body came: the rest cannot be told apart from a
            // next request.
            if !current.requestEnded { current.keepAlive = false }
        }
        finish(context: context, sent: current.sentBytes)
    }

    func proxyFailed(_ failure: ProxyFailure) {
        guard let current = exchange, !closed, let context = transport else { return }
        let requestID = current.requestID ?? "-"
        if !current.responded {
            var extra: HTTPHeaders = ["X-Request-Id": requestID]
            if let seconds = failure.retryAfterSeconds { extra.add(name: "Retry-After", value: String(seconds)) }
            respondError(failure.status, "\(failure.reason) (request \(requestID))", context: context, extraHeaders: extra)
            return
        }
        // Part of the response is out: the client can only be told by an abort (a truncated body on HTTP/1.1,
        // RST_STREAM on HTTP/2).
        current.keepAlive = false
        current.responseFinished = true
        current.releaseLease()
        record(current)
        exchange = nil
        if isHTTP2 {
            context.writeHTTP2(.reset(.internalError), promise: nil)
            context.flush()
            context.exchangeFinished()
        } else {
            closeAfterPendingWrites(context: context)
        }
    }

    func proxyRequestBody(paused: Bool) {
        requestBodyPaused = paused
        connectionGuard?.requestBody(paused: paused)
        guard !paused, let context = transport else { return }
        if isHTTP2 {
            context.read()  // returns the stream's withheld flow-control credit
        } else if readHeld, queued.isEmpty {
            readHeld = false
            context.read()
        }
    }

    /// `/tr/v1/ws`: the Go tracker's WebSocket ingest. A valid opening handshake (RFC 6455 §4.2) is answered 101
    /// and the connection becomes a ``WebSocketIngestHandler`` (its HTTP handlers leave); anything else is refused
    /// with the reason. HTTP/1.1 only: browsers open WebSockets over HTTP/1.1 (RFC 8441 is not offered).
    private func acceptWebSocketIngest(
        _ api: TrackingAPI, head: HTTPRequestHead, path: Substring, headers: RequestHeaderSummary, context: any ExchangeTransport
    ) {
        guard let current = exchange else { return }
        let fields = head.headers
        guard !isHTTP2, let channelContext = context as? ChannelHandlerContext else {
            respondError(.badRequest, "the WebSocket ingest takes HTTP/1.1 connections (browsers open WebSockets over HTTP/1.1)", context: context)
            return
        }
        guard head.method == .GET, headers.hasUpgrade, fields[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }),
            let key = fields.first(name: "sec-websocket-key"), Data(base64Encoded: key)?.count == 16
        else {
            respondError(.upgradeRequired, "expected a WebSocket opening handshake (GET with Upgrade: websocket and a Sec-WebSocket-Key)",
                         context: context, extraHeaders: ["Upgrade": "websocket", "Sec-WebSocket-Version": "13"])
            return
        }
        guard fields.first(name: "sec-websocket-version") == "13" else {
            respondError(.upgradeRequired, "expected Sec-WebSocket-Version: 13", context: context,
                         extraHeaders: ["Upgrade": "websocket", "Sec-WebSocket-Version": "13"])
            return
        }
        let client = clientAddress(fields, trusted: current.snapshot.trustedProxies)
        let upgrade = APIRequest(
            method: .GET, path: path, query: "", body: nil, cookie: headers.cookie, origin: fields.first(name: "origin"),
            clientAddress: client, siteHosts: current.siteHosts, isTLS: connection.isTLS, eventLoop: channelContext.eventLoop,
            headers: fields)
        var buffer = channelContext.channel.allocator.buffer(capacity: 256)
        HTTPHead.writeStatusLine(.switchingProtocols, into: &buffer)
        buffer.writeStaticString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        buffer.writeString(WebSocketIngestHandler.acceptValue(forKey: key))
        buffer.writeStaticString("\r\n\r\n")
        channelContext.writeAndFlush(NIOAny(buffer), promise: nil)
        current.switchedProtocols()
        // Each message's events are completed by the opening request's fields, as a POST's are by its own.
        let now = Int64(loop.refreshClock())
        var template = requestEvent(current, id: EventID(high: 0, low: 0), started: now, elapsed: 0, client: client)
        template.status = 200
        template.kind = .track
        let facts = requestFacts(current, client: client)
        record(current)
        exchange = nil
        let handler = WebSocketIngestHandler(
            ingest: WebSocketIngest(api: api), loop: loop, upgrade: upgrade, template: template, facts: facts, logger: core.logger)
        do {
            // The WebSocket handlers go in after the HTTP decoder, which then leaves with this handler and the guard
            // (bytes it still holds are handed on).
            let sync = channelContext.channel.pipeline.syncOperations
            let decoder = try sync.handler(type: HTTP1RequestDecoder.self)
            try handler.install(after: decoder, in: sync)
            if let connectionGuard { sync.removeHandler(connectionGuard, promise: nil) }
            sync.removeHandler(context: channelContext, promise: nil)
            sync.removeHandler(decoder, promise: nil)
        } catch {
            channelContext.close(promise: nil)
        }
    }

    func proxyUpgraded(_ head: ProxyResponseHead, tunnel: ProxyTunnel) {
        guard let current = exchange, !closed, !isHTTP2, let context = transport as? ChannelHandlerContext else {
            tunnel.close()
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        HTTPHead.writeStatusLine(.switchingProtocols, into: &buffer)
        _ = head.writeHTTP1Headers(into: &buffer)
        buffer.writeStaticString("Connection: Upgrade\r\nX-Request-Id: ")
        buffer.writeString(current.requestID ?? "")
        buffer.writeStaticString("\r\n\r\n")
        context.writeAndFlush(NIOAny(buffer), promise: nil)
        current.switchedProtocols()
        record(current)
        exchange = nil
        // From here on the connection is a byte tunnel: the HTTP handlers leave, and bytes the decoder still holds
        // go to the tunnel.
        do {
            let sync = context.channel.pipeline.syncOperations
            let decoder = try sync.handler(type: HTTP1RequestDecoder.self)
            try sync.addHandler(tunnel.makeClientHandler(), position: .after(decoder))
            if let connectionGuard { sync.removeHandler(connectionGuard, promise: nil) }
            sync.removeHandler(context: context, promise: nil)
            sync.removeHandler(decoder, promise: nil)
            tunnel.start()
        } catch {
            tunnel.close()
            context.close(promise: nil)
        }
    }
}
