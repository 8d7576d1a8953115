import NIOHTTP1
import Static

extension StaticFileServer {
    /// A `files:` route: the file server's answer for the path below the route (when `strip_prefix` says so), written
    /// now when the file is cached, or when the blocking pool has read or opened it.
    func answer(_ responder: ExchangeResponder) {
        var filePath = responder.path
        if configuration.stripPrefix {
            filePath = filePath.dropFirst(responder.route.pathPrefix.utf8.count)
            if !filePath.hasPrefix("/") { filePath = Substring("/" + filePath) }
        }
        let request = StaticRequest(
            method: responder.head.method, path: filePath, query: responder.query, headers: responder.headers)
        switch respond(to: request, on: responder.eventLoop) {
        case .ready(let response):
            Self.write(response, to: responder)
        case .pending(let future):
            responder.respondLater(future, abandoned: { response in
                if case .file(let file) = response.body { try? file.handle.close() }
            }) { responder, response in
                Self.write(response, to: responder)
            }
        }
    }

    private static func write(_ response: StaticResponse, to responder: ExchangeResponder) {
        if let reason = response.errorReason, response.status.code >= 400 {
            responder.respondError(response.status, reason, extraHeaders: response.headers)
            return
        }
        if response.status.code >= 300 && response.status.code < 400, let location = response.headers.first(name: "location") {
            responder.redirect(to: location, status: response.status)
            return
        }
        let cached = response.status == .ok ? response.cachedVariant : nil
        responder.respond(status: response.status, headers: response.headers, body: response.body, cached: cached)
    }
}
