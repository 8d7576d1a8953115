import NIOCore
import Tracking

/// A tracking API call, a webhook or the older short-link API: the request (with its collected body) goes to the
/// route's handler in Tracking, which answers now or when a lookup completes. The events a call makes wait for the
/// exchange's record, where the request's fields complete them.
enum TrackingAPIAnswer {
    static func answer(
        _ responder: ExchangeResponder, _ handle: (APIRequest, Int64, () -> EventID) -> APIOutcome
    ) {
        // The configuration refuses these routes without tracking; should one get here, it is answered, not left open.
        guard let events = responder.loop.events else {
            responder.respondError(.serviceUnavailable, "tracking is off on this server")
            return
        }
        let current = responder.exchange
        let request = APIRequest(
            method: responder.head.method, path: responder.path, query: responder.query ?? "", body: current.collectedBody,
            cookie: responder.headers.cookie, origin: responder.head.headers.first(name: "origin"),
            clientAddress: responder.clientAddress, siteHosts: current.siteHosts, isTLS: responder.connection.isTLS,
            eventLoop: responder.eventLoop, headers: responder.head.headers)
        current.collectedBody = nil
        let now = Int64(responder.loop.refreshClock())
        switch handle(request, now, { events.nextID(unixMilliseconds: now) }) {
        case .respond(let response, let made):
            current.apiEvents = made
            write(response, to: responder)
        case .deferred(let future):
            responder.respondLater(future) { responder, response in write(response, to: responder) }
        }
    }

    private static func write(_ response: APIResponse, to responder: ExchangeResponder) {
        let body: AnswerBody = response.body.readableBytes > 0 ? .buffer(response.body) : .empty
        responder.respond(status: response.status, headers: response.headers, body: body)
    }
}
