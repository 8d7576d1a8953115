import Foundation
import Links
import NIOCore
import NIOHTTP1

/// The short-link admin API on the admin listener (behind the admin token when one is configured); what it
/// answers is ``LinkAdminAPI``'s, shared with `vantage links` on a stopped gateway.
extension AdminHandler {
    func handleLinks(_ head: HTTPRequestHead, path: String, body: ByteBuffer, context: ChannelHandlerContext) {
        guard let links = endpoints.gateway.links else {
            send(.conflict, body: "409 Conflict: no links configured (add a links route or a links: section)\n", head: head, context: context)
            return
        }
        let pool = endpoints.gateway.threadPool
        let tracking = endpoints.gateway.tracking
        var clickHouseCounts: (@Sendable (String) async throws -> LinkAdminAPI.ClickHouseCounts?)?
        if let tracking {
            clickHouseCounts = { id in
                // The link id is a lower-case UUID (found in the index before this runs): safe inside quotes.
                let sql = "SELECT count(), countIf(etyp = 'unique' AND bot_reason = ''), countIf(bot_reason != '') FROM "
                    + "{table} WHERE kind = 'link_click' AND visitParamExtractString(props, 'link_id') = '\(id)' "
                    + "FORMAT TabSeparated"
                guard let text = try await tracking.query(sql) else { return nil }
                let numbers = text.split(whereSeparator: { $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
                guard numbers.count == 3 else { return nil }
                return LinkAdminAPI.ClickHouseCounts(clicks: numbers[0], unique: numbers[1], bots: numbers[2])
            }
        }
        let blocking: LinkAdminAPI.Blocking = { work in try await pool.runIfActive(work) }
        let api = LinkAdminAPI(links: links, blocking: blocking, clickHouseCounts: clickHouseCounts)
        let request = LinkAdminAPI.Request(
            method: head.method.rawValue, segments: path.split(separator: "/").dropFirst().map(String.init),
            parameters: Self.queryParameters(head.uri), body: Data(body.readableBytesView))
        answerLater(head, context: context) {
            let (status, json) = await api.answer(request)
            return Answer(HTTPResponseStatus(statusCode: status), json, contentType: "application/json")
        }
    }
}
