import NIOCore
import NIOHTTP1

/// The reports' pages mounted on a site: answered by the gateway off the loop (a report is control-plane work),
/// written from the loop when done. The mount itself redirects to its folder, so relative links resolve.
enum InsightsAnswer {
    static func answer(_ responder: ExchangeResponder) {
        let mount = responder.route.pathPrefix.hasSuffix("/") ? String(responder.route.pathPrefix.dropLast()) : responder.route.pathPrefix
        let below = responder.path.dropFirst(mount.utf8.count)
        guard !below.isEmpty else {
            responder.redirect(to: mount + "/", status: .permanentRedirect)
            return
        }
        guard below.hasPrefix("/") else {
            responder.respondError(.notFound, "no such page")
            return
        }
        let current = responder.exchange
        let request = InsightsWebRequest(
            method: responder.head.method, path: String(below), parameters: AdminHandler.queryParameters(responder.head.uri),
            authorization: responder.head.headers.first(name: "authorization"), cookie: responder.headers.cookie,
            body: current.collectedBody.map { String(buffer: $0) } ?? "", clientAddress: responder.clientAddress,
            basePath: mount + "/", secure: responder.connection.isTLS)
        current.collectedBody = nil
        let hook = responder.core.insightsWeb
        let answered = responder.eventLoop.makePromise(of: WebAnswer?.self)
        Task { answered.succeed(await hook.answer(request)) }
        responder.respondLater(answered.futureResult) { responder, answer in
            guard let answer else {
                responder.respondError(.notFound, "no such page")
                return
            }
            responder.respond(
                status: answer.status, contentType: answer.contentType, body: ByteBuffer(string: answer.body),
                extraHeaders: answer.headers)
        }
    }
}
