import Foundation
import Insights
import NIOCore
import NIOHTTP1

/// Share links' admin API (the links themselves are answered by `Gateway.insightsWeb`): with the token, `GET /api/v1/shares` lists the links, `POST /api/v1/shares?site=` makes one (the secret is
///   shown once), `DELETE /api/v1/shares/<id>` revokes one.
extension AdminHandler {
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
