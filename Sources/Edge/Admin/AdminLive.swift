import Foundation
import Insights
import NIOCore
import NIOHTTP1

/// The live view on the admin listener: `GET /live?site=` (the page) and `GET /api/v1/live?site=` (server-sent
/// events: the numbers and the new events once a second, for 15 minutes, after which a browser reconnects).
extension AdminHandler {
    /// How long one event stream lasts.
    static let liveStreamSeconds = 15 * 60

    /// `site` as asked, or the default one; nil (and a 400 sent) for a site that is not configured.
    private func liveSite(_ parameters: [String: String], head: HTTPRequestHead, context: ChannelHandlerContext) -> String? {
        let gateway = endpoints.gateway
        guard let site = parameters["site"] ?? gateway.defaultReportSite, gateway.siteNames.contains(site) else {
            send(.badRequest, body: "400 Bad Request: site: expected the name of a configured site\n", head: head, context: context)
            return nil
        }
        return site
    }

    /// The live page (`basePath`: where it is mounted).
    func livePage(_ head: HTTPRequestHead, parameters: [String: String], basePath: String = "/", context: ChannelHandlerContext) {
        guard let site = liveSite(parameters, head: head, context: context) else { return }
        let feed = endpoints.gateway.liveFeed
        answerLater(head, context: context) {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            await feed.refresh(now: now)
            let snapshot = await feed.snapshot(site: site, now: now)
            var headers = Self.pageHeaders
            headers.replaceOrAdd(name: "Content-Security-Policy", value: LivePage.contentSecurityPolicy)
            return Answer(.ok, LivePage(snapshot: snapshot, site: site, basePath: basePath).html, contentType: "text/html; charset=utf-8",
                          headers: headers)
        }
    }

    /// The event stream: written from a task, a message a second, until the client goes or the time is up.
    func liveStream(_ head: HTTPRequestHead, parameters: [String: String], context: ChannelHandlerContext) {
        guard let site = liveSite(parameters, head: head, context: context) else { return }
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
        let resumed = head.headers.first(name: "last-event-id").flatMap { Int($0) } ?? parameters["after"].flatMap { Int($0) } ?? -1
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
