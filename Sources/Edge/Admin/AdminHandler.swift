import Foundation
import NIOCore
import NIOHTTP1
import Tracking

/// What the admin listener can do, bound to one gateway.
struct AdminEndpoints: Sendable {
    let gateway: Gateway
}

/// The admin API on its own listener (loopback by default):
/// - `GET /health`: JSON status, open to anyone who can reach the listener;
/// - `POST /erase?vid=ID`: a visitor's events out of the spool (`vantage erase`);
/// - `/links`: short links (create, list, get, update, delete, stats; see `AdminLinks.swift`);
/// - `GET /metrics`: Prometheus text;
/// - `POST /reload`: re-read the config, as SIGHUP does;
/// - `GET /api/v1/stats`: a report as JSON or CSV (docs/INSIGHTS.md; `AdminStats.swift`);
/// - `GET /api/v1/activity`: short links, email opens, events and money as JSON, or a table as CSV;
/// - `/share/<secret>/`: one site's dashboard through a share link; `/api/v1/shares`: make, list, revoke them
///   (`AdminShares.swift`);
/// - `GET /`: the dashboard, with `/login` and `/logout` for browsers, `/live`, the reports' APIs and share links:
///   the reports' pages, the same on a site's `insights` route (`InsightsWeb.swift`);
/// - `GET /api/v1/live`: the live view's server-sent events (`AdminLive.swift`).
///
/// When `admin.token_env` names a set variable, everything but `/health` and the sign-in form needs
/// `Authorization: Bearer <token>`; the reports also take a signed-in browser's session cookie.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let endpoints: AdminEndpoints
    private var head: HTTPRequestHead?
    /// The request body (link JSON), bounded.
    private(set) var body = ByteBuffer()
    private var bodyTooLarge = false
    static let maxBody = 64 << 10

    init(endpoints: AdminEndpoints) {
        self.endpoints = endpoints
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            bodyTooLarge = false
        case .body(var part):
            if body.readableBytes + part.readableBytes > Self.maxBody { bodyTooLarge = true } else { body.writeBuffer(&part) }
        case .end:
            guard let head else { return }
            self.head = nil
            if bodyTooLarge {
                send(.payloadTooLarge, body: "413 Payload Too Large: admin bodies are limited to 64 KB\n", head: head, context: context)
                return
            }
            handle(head, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        if path == "/health" && (head.method == .GET || head.method == .HEAD) {
            let report = endpoints.gateway.healthReport
            let json = (try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])) ?? Data()
            // 503 only when nothing can be served: a degraded edge still answers, and says why in the body.
            let status: HTTPResponseStatus = report["status"] as? String == HealthVerdict.Status.unhealthy.rawValue ? .serviceUnavailable : .ok
            send(status, contentType: "application/json", body: String(decoding: json, as: UTF8.self) + "\n",
                 head: head, context: context)
            return
        }
        if liveStream(head, path: path, context: context) { return }
        if Gateway.isInsightsPath(path) {
            let gateway = endpoints.gateway
            let request = InsightsWebRequest(
                method: head.method, path: path, parameters: Self.queryParameters(head.uri),
                authorization: head.headers.first(name: "authorization"), cookie: head.headers.first(name: "cookie"),
                body: String(buffer: body), clientAddress: context.remoteAddress?.ipAddress ?? "unknown", basePath: "/",
                secure: false)
            answerLater(head, context: context) {
                await gateway.insightsWeb(request) ?? Answer(.notFound, "404 Not Found\n")
            }
            return
        }
        guard isAuthorized(head) else {
            send(.unauthorized, body: "401 Unauthorized: send Authorization: Bearer <token>\n", head: head,
                 context: context, extraHeaders: ["WWW-Authenticate": "Bearer"])
            return
        }
        if path == "/api/v1/shares" || path.hasPrefix("/api/v1/shares/") {
            handleShareAdmin(head, path: path, context: context)
            return
        }
        if path == "/links" || path.hasPrefix("/links/") {
            handleLinks(head, path: path, body: body, context: context)
            return
        }
        switch (head.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            send(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: endpoints.gateway.metricsText(),
                 head: head, context: context)
        case (.POST, "/reload"):
            let gateway = endpoints.gateway
            answerLater(head, context: context) {
                do {
                    try await gateway.reloadInBackground()
                    return Answer(.ok, "reloaded\n")
                } catch {
                    return Answer(.unprocessableEntity, "422 Unprocessable Entity: \(error)\n")
                }
            }
        case (.POST, "/erase"):
            erase(head, context: context)
        case (_, "/metrics"), (_, "/reload"), (_, "/erase"):
            send(.methodNotAllowed, body: "405 Method Not Allowed\n", head: head, context: context)
        default:
            send(.notFound, body: "404 Not Found: admin paths are /health, /metrics, POST /reload, POST /erase?vid=, /links, /api/v1/stats, /api/v1/activity and /api/v1/shares\n",
                 head: head, context: context)
        }
    }

    /// `POST /erase?vid=ID`: removes the visitor's events from the spool (what `vantage erase` calls while Vantage
    /// runs; the command then deletes the rows ClickHouse already has).
    private func erase(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        let vid = query.split(separator: "&").compactMap { pair -> Substring? in
            pair.hasPrefix("vid=") ? pair.dropFirst(4) : nil
        }.first
        guard let vid, Enricher.acceptableVisitorID(vid) else {
            send(.badRequest, body: "400 Bad Request: expected ?vid= (1 to 64 letters, digits, - or _)\n", head: head, context: context)
            return
        }
        guard let tracking = endpoints.gateway.tracking else {
            send(.conflict, body: "409 Conflict: tracking is off\n", head: head, context: context)
            return
        }
        let visitorID = String(vid)
        answerLater(head, context: context) {
            do {
                let removed = try await tracking.erase(visitorID: visitorID)
                return Answer(.ok, "{\"removed\":\(removed)}\n", contentType: "application/json")
            } catch {
                return Answer(.internalServerError, "500 Internal Server Error: \(error)\n")
            }
        }
    }

    /// What a request is answered with once work off the loop is done.
    typealias Answer = WebAnswer

    /// Runs `work` off the loop (a reload, an erasure, a report: control-plane work that may block or take a
    /// while) and sends its answer from the loop.
    func answerLater(_ head: HTTPRequestHead, context: ChannelHandlerContext, _ work: @escaping @Sendable () async -> Answer) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        Task {
            let answer = await work()
            eventLoop.execute {
                let (handler, context) = bound.value
                handler.send(answer.status, contentType: answer.contentType, body: answer.body, head: head, context: context,
                             extraHeaders: answer.headers)
            }
        }
    }

    func send(
        _ status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8", body: String,
        head: HTTPRequestHead, context: ChannelHandlerContext, extraHeaders: HTTPHeaders = [:]
    ) {
        let buffer = context.channel.allocator.buffer(string: body)
        var headers: HTTPHeaders = ["Content-Type": contentType, "Content-Length": String(buffer.readableBytes),
                                    "Cache-Control": "no-store"]
        headers.add(contentsOf: extraHeaders)
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                      promise: nil)
        if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        let keepAlive = head.isKeepAlive
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { bound.value.close(promise: nil) }
        }
    }
}

/// Closes a connection when ``IdleStateHandler`` says it went quiet (the admin listener's progress deadline).
final class IdleConnectionCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
