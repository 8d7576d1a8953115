import Foundation
import Insights
import NIOCore
import NIOHTTP1

/// The live view's event stream on the admin listener, `GET /api/v1/live?site=` (server-sent events: the numbers
/// and the new events once a second, for 15 minutes, after which a browser reconnects); the page itself is one of
/// the reports' pages (`InsightsWeb.swift`).
extension AdminHandler {
    /// How long one event stream lasts.
    static let liveStreamSeconds = 15 * 60

    /// Answers the live view's event stream (`/api/v1/live`, or a share link's): false when `path` is not one.
    func liveStream(_ head: HTTPRequestHead, path: String, context: ChannelHandlerContext) -> Bool {
        let gateway = endpoints.gateway
        var parameters = Self.queryParameters(head.uri)
        if path == "/api/v1/live" {
            let request = InsightsWebRequest(
                method: head.method, path: path, parameters: parameters, authorization: head.headers.first(name: "authorization"),
                cookie: head.headers.first(name: "cookie"), body: "", clientAddress: "", basePath: "/", secure: false)
            guard gateway.isAllowedToRead(request) else {
                send(.unauthorized, body: "401 Unauthorized: sign in, or send Authorization: Bearer <token>\n", head: head, context: context)
                return true
            }
        } else if path.hasPrefix("/share/"), path.hasSuffix("/api/v1/live") {
            let secret = path.dropFirst("/share/".count).prefix { $0 != "/" }
            guard let site = gateway.shareLinks.site(forSecret: secret) else { return false }  // the pages answer 404
            parameters["site"] = site
        } else {
            return false
        }
        guard head.method == .GET || head.method == .HEAD else {
            send(.methodNotAllowed, body: "405 Method Not Allowed\n", head: head, context: context, extraHeaders: ["Allow": "GET, HEAD"])
            return true
        }
        guard let site = parameters["site"] ?? gateway.defaultReportSite, gateway.siteNames.contains(site) else {
            send(.badRequest, body: "400 Bad Request: site: expected the name of a configured site\n", head: head, context: context)
            return true
        }
        stream(head, site: site, after: parameters["after"].flatMap { Int($0) }, context: context)
        return true
    }

    /// The event stream: written from a task, a message a second, until the client goes or the time is up.
    private func stream(_ head: HTTPRequestHead, site: String, after listed: Int?, context: ChannelHandlerContext) {
        let headers: HTTPHeaders = [
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        ]
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        guard head.method != .HEAD else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let feed = endpoints.gateway.liveFeed
        // A reconnecting browser says the last event it had; the page says what it listed (`after`).
        let resumed = head.headers.first(name: "last-event-id").flatMap { Int($0) } ?? listed ?? -1
        let write: @Sendable (String) async throws -> Void = { message in
            try await eventLoop.flatSubmit {
                let (handler, context) = bound.value
                let buffer = context.channel.allocator.buffer(string: message)
                return context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(buffer))))
            }.get()
        }
        let finish: @Sendable () -> Void = {
            eventLoop.execute {
                let (handler, context) = bound.value
                let channel = context.channel
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            }
        }
        Task { await AdminHandler.stream(feed: feed, site: site, after: resumed, write: write, finish: finish) }
    }

    /// Sends the live numbers and new events once a second until `write` fails (the client went away) or the
    /// stream's time is up.
    static func stream(
        feed: LiveFeed, site: String, after resumed: Int, write: @Sendable (String) async throws -> Void,
        finish: @Sendable () -> Void
    ) async {
        var last = resumed
        let ends = ContinuousClock.now + .seconds(liveStreamSeconds)
        while ContinuousClock.now < ends {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            await feed.refresh(now: now)
            let snapshot = await feed.snapshot(site: site, now: now, after: last)
            last = snapshot.recent.first?.sequence ?? last
            do {
                try await write(LivePage.event(snapshot))
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
        }
        finish()
    }
}
