import Foundation
import Links
import NIOCore
import NIOHTTP1

/// The short-link admin API on the admin listener (behind the admin token when one is configured):
///
/// - `POST /links` — create from a JSON object: `host`, `destination`, and optionally `slug` (generated when
///   missing), `status`, `expires_at`, `fallback`, `max_clicks`, `pass_query`, `query_deny`, `utm`, `tags`; 201.
/// - `GET /links[?host=H][&tag=T][&q=TEXT][&cursor=C][&limit=N]` — links by host and slug (one host's, or every
///   host's), filtered by tag or by text in the slug or destination; `next_cursor` (`host/slug`) for the next page.
/// - `GET /links/ID`, `PATCH /links/ID` (the fields to change), `DELETE /links/ID`.
/// - `GET /links/ID/stats` — clicks counted here, and from ClickHouse (total, unique, bots) when configured.
extension AdminHandler {
    func handleLinks(_ head: HTTPRequestHead, path: String, body: ByteBuffer, context: ChannelHandlerContext) {
        guard let links = endpoints.gateway.links else {
            send(.conflict, body: "409 Conflict: no links configured (add a links route or a links: section)\n", head: head, context: context)
            return
        }
        let parameters = Self.queryParameters(head.uri)
        let segments = path.split(separator: "/").dropFirst().map(String.init)  // after "links"
        let method = head.method
        let json = Data(body.readableBytesView)
        let tracking = endpoints.gateway.tracking
        let pool = endpoints.gateway.threadPool
        answerLater(head, context: context) {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            var status = HTTPResponseStatus.ok
            var answer: Any = [:]
            do {
                switch (method, segments.count) {
                case (.POST, 0):
                    let link = try await pool.runIfActive { try links.create(LinkService.fields(json), now: now) }
                    status = .created
                    answer = LinkService.json(link, clicks: 0)
                case (.GET, 0):
                    let host = parameters["host"].flatMap { $0.isEmpty ? nil : LinkRules.normalizeHost($0) }
                    let filter = LinkFilter(
                        host: host, tag: parameters["tag"].flatMap { $0.isEmpty ? nil : $0 },
                        search: parameters["q"].flatMap { $0.isEmpty ? nil : $0 })
                    let limit = min(1000, max(1, Int(parameters["limit"] ?? "") ?? 100))
                    let cursor = parameters["cursor"].flatMap { LinkCursor($0, host: host) }
                    let page = links.index.list(filter, after: cursor, limit: limit)
                    var object: [String: Any] = ["links": page.map { LinkService.json($0.0, clicks: $0.clicks) }]
                    if page.count == limit, let last = page.last {
                        object["next_cursor"] = host == nil ? "\(last.0.host)/\(last.0.slug)" : last.0.slug
                    }
                    answer = object
                case (.GET, 1):
                    guard let (link, clicks) = links.index.link(id: segments[0]) else {
                        throw LinkService.AdminError.notFound("no link \(segments[0])")
                    }
                    answer = LinkService.json(link, clicks: clicks)
                case (.PATCH, 1):
                    let link = try await pool.runIfActive { try links.update(id: segments[0], LinkService.fields(json), now: now) }
                    answer = LinkService.json(link, clicks: links.index.link(id: link.id)?.clicks ?? 0)
                case (.DELETE, 1):
                    let link = try await pool.runIfActive { try links.delete(id: segments[0]) }
                    answer = ["deleted": link.id]
                case (.GET, 2) where segments[1] == "stats":
                    guard let (link, clicks) = links.index.link(id: segments[0]) else {
                        throw LinkService.AdminError.notFound("no link \(segments[0])")
                    }
                    var object: [String: Any] = ["id": link.id, "clicks": clicks]
                    // The link id is a lower-case UUID: safe inside quotes.
                    if let text = try await tracking?.query(
                        "SELECT count(), countIf(etyp = 'unique' AND bot_reason = ''), countIf(bot_reason != '') FROM "
                            + "{table} WHERE kind = 'link_click' AND visitParamExtractString(props, 'link_id') = '\(link.id)' "
                            + "FORMAT TabSeparated")
                    {
                        let numbers = text.split(whereSeparator: { $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
                        if numbers.count == 3 {
                            object["clickhouse"] = ["clicks": numbers[0], "unique": numbers[1], "bots": numbers[2]]
                        }
                    }
                    answer = object
                default:
                    status = .methodNotAllowed
                    answer = ["error": "use POST /links, GET /links[?host=], GET|PATCH|DELETE /links/ID, GET /links/ID/stats"]
                }
            } catch let error as LinkService.AdminError {
                switch error {
                case .invalid: status = .badRequest
                case .notFound: status = .notFound
                case .conflict: status = .conflict
                }
                answer = ["error": error.description]
            } catch {
                status = .internalServerError
                answer = ["error": "\(error)"]
            }
            let data = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return Answer(status, String(decoding: data, as: UTF8.self) + "\n", contentType: "application/json")
        }
    }
}
