import NIOCore
import NIOHTTP1
import Tracking

/// Answers the gateway gives itself on a site's routes: `respond:` and `ping`, a site's `health` route, the older
/// tracker's `/status` and tracker metrics.
enum BuiltInAnswers {
    /// A `respond:` route or `ping`: its prepared status, fields and body.
    static func prepared(_ prepared: PreparedResponse, _ responder: ExchangeResponder) {
        let body = responder.isHead ? nil : prepared.body
        responder.respond(status: prepared.status, headers: prepared.headers, body: body.map { .buffer($0) } ?? .empty)
    }

    /// A site's `health` route: the verdict's status only (the reasons name upstreams and certificates, for the
    /// admin listener's `/health`), 503 when nothing can be served.
    static func health(_ responder: ExchangeResponder) {
        let verdict = responder.core.health.verdict()
        let status = verdict?.status ?? .unhealthy
        responder.respond(
            status: verdict?.httpStatus ?? .serviceUnavailable, contentType: "application/json",
            body: ByteBuffer(string: "{\"status\":\"\(status.rawValue)\"}\n"))
    }

    /// The older tracker's `/status`, in its shape: `[{"Key":"client","Value":"<address>"},{"Key":"conns","Value":N}]`.
    static func status(_ responder: ExchangeResponder) {
        var body = ByteBuffer()
        body.writeJSONField("[{\"Key\":\"client\",\"Value\":", responder.clientAddress, first: true)
        body.writeString("},{\"Key\":\"conns\",\"Value\":\(responder.core.openConnections.load(ordering: .relaxed))}]\n")
        responder.respond(contentType: "application/json", body: body)
    }

    /// The older tracker's metrics document.
    static func trackerMetrics(_ responder: ExchangeResponder) {
        responder.respond(contentType: "application/json", body: ByteBuffer(string: responder.core.health.trackerMetrics() ?? "{}\n"))
    }
}
