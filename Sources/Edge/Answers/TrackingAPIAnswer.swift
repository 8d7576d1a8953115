import Links
import NIOCore
import Tracking

/// A tracking API call, a webhook or the older short-link API: the request (with its collected body) goes to the
/// route's handler in Tracking or Links, which answers now or when a lookup completes. The events a call makes wait
/// for the exchange's record, where the request's fields complete them.
enum TrackingAPIAnswer {
    /// A call that records events (the tracking API, webhooks): `handle` gets the request, the time and a maker of
    /// event ids.
    static func answer(
        _ responder: ExchangeResponder, _ handle: (APIRequest, Int64, () -> EventID) -> APIOutcome
    ) {
        // The configuration refuses these routes without tracking; should one get here, it is answered, not left open.
        guard let events = responder.loop.events else {
            responder.respondError(.serviceUnavailable, "tracking is off on this server")
            return
        }
        let now = Int64(responder.loop.refreshClock())
        finish(handle(request(responder), now, { events.nextID(unixMilliseconds: now) }), responder)
    }

    /// The older short-link API: it manages links and makes no events of its own, so it answers with tracking off.
    static func answer(_ responder: ExchangeResponder, legacyLinks api: LegacyShortLinkAPI) {
        finish(api.handle(request(responder), now: Int64(responder.loop.refreshClock())), responder)
    }

    /// The exchange's request as the handlers read it (its collected body handed over).
    private static func request(_ responder: ExchangeResponder) -> APIRequest {
        let current = responder.exchange
        defer { current.collectedBody = nil }
        return APIRequest(
            method: responder.head.method, path: responder.path, query: responder.query ?? "", body: current.collectedBody,
            cookie: responder.headers.cookie, origin: responder.head.headers.first(name: "origin"),
            clientAddress: responder.clientAddress, siteHosts: current.siteHosts, isTLS: responder.connection.isTLS,
            eventLoop: responder.eventLoop, headers: responder.head.headers.httpHeaders)
    }

    private static func finish(_ outcome: APIOutcome, _ responder: ExchangeResponder) {
        switch outcome {
        case .respond(let response, let made):
            responder.exchange.apiEvents = made
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
