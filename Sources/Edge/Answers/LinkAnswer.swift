import Links
import NIOCore
import NIOHTTP1
import Tracking

extension LinkRoute {
    /// A short link: redirect (counted as a click: the request's event becomes the click), gone (410 or the link's
    /// fallback), or unknown (404, or the next route when the mount falls through).
    func answer(_ responder: ExchangeResponder) {
        var slug = responder.path.dropFirst(responder.route.pathPrefix.utf8.count)
        while slug.first == "/" { slug = slug.dropFirst() }
        let host = RouteTable.normalizeHost(responder.headers.host ?? "")
        let now = Int64(responder.loop.refreshClock())
        let location: String
        let status: HTTPResponseStatus
        let clicked: ResolvedLink
        switch service.index.resolve(host: host, slug: slug, now: now) {
        case .redirect(let link):
            location = link.target(query: responder.query ?? "")
            status = HTTPResponseStatus(statusCode: link.status)
            clicked = link
        case .gone(let link):
            guard let fallback = link.fallback else {
                let reason = link.expired ? "this link has expired" : "this link has reached its click limit"
                responder.respondError(.gone, reason, extraHeaders: ["Cache-Control": "private, max-age=0"])
                return
            }
            location = fallback
            status = .found
            clicked = link
        case .unknown:
            if fallsThrough, let next = responder.site.route(for: responder.path, after: responder.route) {
                responder.dispatch(to: next)
            } else {
                responder.respondError(.notFound, "no link \"\(slug)\" on \(host)")
            }
            return
        }
        if let events = responder.loop.events {
            var properties = ByteBuffer()
            properties.writeJSONField("{\"link_id\":", clicked.id.description, first: true)
            // The client goes to the whole destination; the stored copy keeps no personal query parameters.
            properties.writeJSONField("\"to\":", events.scrubber.scrub(url: location) ?? location)
            properties.writeStaticString("}")
            responder.exchange.click = LinkClick(
                id: clicked.id, slug: clicked.slug, properties: String(buffer: properties), recent: service.recentClicks)
        }
        // Shared caches must not answer clicks themselves (each is an event and may count against a limit). No body:
        // clients follow Location, and a click is answered with as little work as a cached file.
        responder.respond(status: status, headers: Self.redirectHeaders, body: .empty, location: location)
    }

    /// The fixed part of every short-link redirect (the Location is added as the head is written).
    private static let redirectHeaders: HTTPHeaders = ["Cache-Control": "private, max-age=0", "Content-Length": "0"]
}
