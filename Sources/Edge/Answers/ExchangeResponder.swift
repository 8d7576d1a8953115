import HTTP1Parser
import NIOCore
import NIOHTTP1
import Static

/// The body of an answer: none, bytes, or an open file (the file server's body type, which every answer shares).
typealias AnswerBody = StaticResponse.Body

/// One routed exchange as a route kind's answerer sees it: the request (head, fields, path and query as routed, the
/// route and site that took it) and the ways to answer it. The answerers live beside this file, one per route kind
/// (static files, short links, the tracking API, the reports, the built-in answers); ``RequestHandler`` owns the
/// exchange and its writer, frames what they answer, and records it.
///
/// An answer given later (a file read, a lookup, a report) goes through ``respondLater(_:abandoned:_:)``, which
/// answers only if the exchange is still the one being served (the client may have left, or the stream been reset).
struct ExchangeResponder {
    let handler: RequestHandler
    let exchange: Exchange
    /// Replaced by the current one when a later answer is written.
    private(set) var writer: any ResponseWriter
    let route: Route
    let site: Site
    /// The routed target's path (normal form) and query (without its `?`; nil when there is none).
    let path: Substring
    let query: Substring?

    init(handler: RequestHandler, exchange: Exchange, writer: any ResponseWriter, route: Route, site: Site) {
        self.handler = handler
        self.exchange = exchange
        self.writer = writer
        self.route = route
        self.site = site
        (path, query) = RequestRouter.split(exchange.head.uri)
    }

    var head: RequestHead { exchange.head }
    var headers: RequestHeaderSummary { exchange.headers }
    var core: GatewayCore { handler.core }
    var loop: LoopContext { handler.loop }
    var connection: ConnectionInfo { handler.connection }
    var eventLoop: any EventLoop { writer.eventLoop }
    /// A HEAD request: answered with the head alone.
    var isHead: Bool { exchange.head.isHeadRequest }
    /// The client's address (after `trusted_proxies`).
    var clientAddress: String { connection.clientAddress(of: exchange) }

    /// Answers with `status`, the answer's own `headers` and `body` (the exchange's fields, header rules and
    /// persistence are the handler's). `cached`: a cached file's variant whose serialized head the loop reuses;
    /// `location`: added as the head is written (a shared header list stays shared).
    func respond(
        status: HTTPResponseStatus, headers: HTTPHeaders, body: AnswerBody, cached: (CachedFile, Int)? = nil,
        location: String? = nil
    ) {
        handler.writeResponse(status: status, headers: headers, body: body, writer: writer, cached: cached, location: location)
    }

    /// A small answer made here (not cached by anyone), its body dropped for HEAD; `extraHeaders` are added.
    func respond(status: HTTPResponseStatus = .ok, contentType: String, body: ByteBuffer, extraHeaders: HTTPHeaders = [:]) {
        var headers: HTTPHeaders = [
            "Content-Type": contentType, "Content-Length": String(body.readableBytes), "Cache-Control": "no-store",
        ]
        headers.add(contentsOf: extraHeaders)
        respond(status: status, headers: headers, body: isHead ? .empty : .buffer(body))
    }

    /// The site's error page (or the plain one) for `status`, with the short `reason`.
    func respondError(_ status: HTTPResponseStatus, _ reason: String, extraHeaders: HTTPHeaders = [:]) {
        handler.respondError(status, reason, writer: writer, extraHeaders: extraHeaders)
    }

    func redirect(to location: String, status: HTTPResponseStatus) {
        handler.respondRedirect(to: location, status: status, writer: writer)
    }

    /// Routes the request again, to `route` (a short link that falls through to the next route).
    func dispatch(to route: Route) {
        exchange.route = route
        handler.dispatch(route, writer: writer)
    }

    /// Answers when `future` succeeds, if this exchange is still the one being served; otherwise `abandoned` gets
    /// the value (to release what it holds: an open file).
    func respondLater<Value>(
        _ future: EventLoopFuture<Value>, abandoned: ((Value) -> Void)? = nil,
        _ answer: @escaping (ExchangeResponder, Value) -> Void
    ) {
        let bound = NIOLoopBound((self, abandoned, answer), eventLoop: eventLoop)
        future.whenSuccess { value in
            let (responder, abandoned, answer) = bound.value
            guard let writer = responder.handler.writer(serving: responder.exchange) else {
                abandoned?(value)
                return
            }
            answer(responder.with(writer), value)
        }
    }

    private func with(_ writer: any ResponseWriter) -> ExchangeResponder {
        var current = self
        current.writer = writer
        return current
    }
}
