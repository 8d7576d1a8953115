import Foundation
import Insights
import NIOCore
import NIOHTTP1

/// Share links on the admin listener:
/// - `GET /share/<secret>/` (and its `assets/insights.css`, `api/v1/stats`, `api/v1/activity`): one site's reports,
///   read-only, without the token; unknown secrets count as wrong tokens (five a minute, then `429`);
/// - with the token: `GET /api/v1/shares` lists the links, `POST /api/v1/shares?site=` makes one (the secret is
///   shown once), `DELETE /api/v1/shares/<id>` revokes one.
extension AdminHandler {
    /// Answers `/share/...`.
    func handleShare(_ head: HTTPRequestHead, path: String, context: ChannelHandlerContext) {
        let gateway = endpoints.gateway
        let address = context.remoteAddress?.ipAddress ?? "unknown"
        if let wait = gateway.adminSessions.retryAfter(address) {
            send(.tooManyRequests, body: "429 Too Many Requests: try again in \(wait) s\n", head: head, context: context,
                 extraHeaders: ["Retry-After": String(wait)])
            return
        }
        let parts = path.dropFirst("/share/".count).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let secret = parts.first, let site = gateway.shareLinks.site(forSecret: secret) else {
            gateway.adminSessions.failed(address)
            send(.notFound, body: "404 Not Found: no such share link (it may have been revoked)\n", head: head, context: context)
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            send(.methodNotAllowed, body: "405 Method Not Allowed: a share link only reads\n", head: head, context: context,
                 extraHeaders: ["Allow": "GET, HEAD"])
            return
        }
        let basePath = "/share/\(secret)/"
        var asked = Self.queryParameters(head.uri)
        asked["site"] = site
        let parameters = asked
        let rest = parts.count > 1 ? String(parts[1]) : ""
        switch rest {
        case "":
            answerLater(head, context: context) {
                do {
                    return Self.pageAnswer(.ok, try await gateway.dashboardPage(parameters, shared: (site, basePath)))
                } catch let error as InsightsQueryError {
                    return Self.pageAnswer(.badRequest, Self.messagePage("That report cannot be shown", "\(error)"))
                } catch {
                    return Self.pageAnswer(.internalServerError, Self.messagePage("The report failed", "\(error)"))
                }
            }
        case "assets/insights.css":
            send(.ok, contentType: "text/css; charset=utf-8", body: DashboardStyle.css, head: head, context: context,
                 extraHeaders: ["X-Content-Type-Options": "nosniff"])
        case "assets/live.js":
            send(.ok, contentType: "text/javascript; charset=utf-8", body: LivePage.script, head: head, context: context,
                 extraHeaders: ["X-Content-Type-Options": "nosniff"])
        case "live":
            livePage(head, parameters: parameters, basePath: basePath, context: context)
        case "api/v1/live":
            liveStream(head, parameters: parameters, context: context)
        case "api/v1/stats":
            report(head, parameters: parameters, context: context, extraHeaders: ["Referrer-Policy": "no-referrer"]) {
                try await gateway.stats($0)
            }
        case "api/v1/activity":
            report(head, parameters: parameters, context: context, extraHeaders: ["Referrer-Policy": "no-referrer"]) {
                try await gateway.activityAnswer($0)
            }
        default:
            send(.notFound, body: "404 Not Found: a share link opens its dashboard, its CSV and JSON\n", head: head, context: context)
        }
    }

    static func json(_ object: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(),
               as: UTF8.self) + "\n"
    }

    /// `/api/v1/shares[/<id>]` (the token was checked).
    func handleShareAdmin(_ head: HTTPRequestHead, path: String, context: ChannelHandlerContext) {
        let gateway = endpoints.gateway
        let shares = gateway.shareLinks
        let id = path.dropFirst("/api/v1/shares".count).drop { $0 == "/" }
        switch (head.method, id.isEmpty) {
        case (.GET, true):
            let list = shares.all.map { ["id": $0.id, "site": $0.site, "created": $0.created] as [String: Any] }
            send(.ok, contentType: "application/json", body: Self.json(["shares": list]), head: head, context: context)
        case (.POST, true):
            var parameters = Self.queryParameters(head.uri)
            parameters.merge(Self.formParameters(Substring(String(buffer: body)))) { $1 }
            guard let site = parameters["site"] ?? gateway.defaultReportSite, gateway.siteNames.contains(site) else {
                send(.badRequest, body: "400 Bad Request: site: expected the name of a configured site (\(gateway.siteNames.joined(separator: ", ")))\n",
                     head: head, context: context)
                return
            }
            answerLater(head, context: context) {
                do {
                    let (share, secret) = try shares.create(site: site)
                    return Answer(.created, Self.json(["id": share.id, "site": site, "path": "/share/\(secret)/"]), contentType: "application/json")
                } catch {
                    return Answer(.internalServerError, "500 Internal Server Error: \(error)\n")
                }
            }
        case (.DELETE, false):
            let target = String(id)
            answerLater(head, context: context) {
                do {
                    return try shares.revoke(id: target) ? Answer(.noContent, "") : Answer(.notFound, "404 Not Found: no share link \(target)\n")
                } catch {
                    return Answer(.internalServerError, "500 Internal Server Error: \(error)\n")
                }
            }
        default:
            send(.methodNotAllowed, body: "405 Method Not Allowed: GET or POST /api/v1/shares, DELETE /api/v1/shares/<id>\n",
                 head: head, context: context)
        }
    }
}
