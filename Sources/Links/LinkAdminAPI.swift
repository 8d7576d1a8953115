import Foundation

/// The short-link admin API as one function from a request to a JSON answer, shared by the admin listener of a
/// running gateway and by `vantage links` working on a stopped gateway's journal, so both validate, answer and
/// fail alike:
///
/// - `POST /links` — create from a JSON object: `host`, `destination`, and optionally `slug` (generated when
///   missing), `status`, `expires_at`, `fallback`, `max_clicks`, `pass_query`, `query_deny`, `utm`, `tags`; 201.
/// - `GET /links[?host=H][&tag=T][&q=TEXT][&cursor=C][&limit=N]` — links by host and slug (one host's, or every
///   host's), filtered by tag or by text in the slug or destination; `next_cursor` (`host/slug`) for the next page.
/// - `GET /links/ID`, `PATCH /links/ID` (the fields to change), `DELETE /links/ID`.
/// - `GET /links/ID/stats` — clicks counted here, and from ClickHouse (total, unique, bots) when configured.
public struct LinkAdminAPI: Sendable {
    /// One call: the method, the path segments after `links`, the query parameters and the body.
    public struct Request: Sendable {
        public var method: String
        public var segments: [String]
        public var parameters: [String: String]
        public var body: Data

        public init(method: String, segments: [String], parameters: [String: String], body: Data) {
            self.method = method
            self.segments = segments
            self.parameters = parameters
            self.body = body
        }
    }

    /// Clicks of a link as ClickHouse counted them.
    public struct ClickHouseCounts: Sendable {
        public var clicks: Int
        public var unique: Int
        public var bots: Int

        public init(clicks: Int, unique: Int, bots: Int) {
            self.clicks = clicks
            self.unique = unique
            self.bots = bots
        }
    }

    public typealias Blocking = @Sendable (@escaping @Sendable () throws -> Link) async throws -> Link

    public let links: LinkService
    /// Runs a store write (`fdatasync` on the journal, a ClickHouse insert) where blocking is allowed: the admin
    /// listener's thread pool, or inline in the CLI.
    let blocking: Blocking
    /// ClickHouse's counts for `/links/ID/stats` (by link id), when tracking ships there.
    let clickHouseCounts: (@Sendable (String) async throws -> ClickHouseCounts?)?

    public init(
        links: LinkService, blocking: @escaping Blocking,
        clickHouseCounts: (@Sendable (String) async throws -> ClickHouseCounts?)? = nil
    ) {
        self.links = links
        self.blocking = blocking
        self.clickHouseCounts = clickHouseCounts
    }

    /// The answer's status and JSON text (with a final newline).
    public func answer(_ request: Request, now: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) async -> (status: Int, json: String) {
        var status = 200
        var answer: Any = [:]
        let links = self.links
        let segments = request.segments
        let json = request.body
        do {
            switch (request.method, segments.count) {
            case ("POST", 0):
                let link = try await blocking { try links.create(LinkService.fields(json), now: now) }
                status = 201
                answer = LinkService.json(link, clicks: 0)
            case ("GET", 0):
                answer = list(request.parameters)
            case ("GET", 1):
                guard let (link, clicks) = links.index.link(id: segments[0]) else {
                    throw LinkService.AdminError.notFound("no link \(segments[0])")
                }
                answer = LinkService.json(link, clicks: clicks)
            case ("PATCH", 1):
                let link = try await blocking { try links.update(id: segments[0], LinkService.fields(json), now: now) }
                answer = LinkService.json(link, clicks: links.index.link(id: link.id)?.clicks ?? 0)
            case ("DELETE", 1):
                let link = try await blocking { try links.delete(id: segments[0]) }
                answer = ["deleted": link.id]
            case ("GET", 2) where segments[1] == "stats":
                guard let (link, clicks) = links.index.link(id: segments[0]) else {
                    throw LinkService.AdminError.notFound("no link \(segments[0])")
                }
                var object: [String: Any] = ["id": link.id, "clicks": clicks]
                if let counts = try await clickHouseCounts?(link.id) {
                    object["clickhouse"] = ["clicks": counts.clicks, "unique": counts.unique, "bots": counts.bots]
                }
                answer = object
            default:
                status = 405
                answer = ["error": "use POST /links, GET /links[?host=], GET|PATCH|DELETE /links/ID, GET /links/ID/stats"]
            }
        } catch let error as LinkService.AdminError {
            switch error {
            case .invalid: status = 400
            case .notFound: status = 404
            case .conflict: status = 409
            }
            answer = ["error": error.description]
        } catch {
            status = 500
            answer = ["error": "\(error)"]
        }
        let data = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return (status, String(decoding: data, as: UTF8.self) + "\n")
    }

    /// `GET /links`: one page of links matching the filters, with the cursor of the next.
    private func list(_ parameters: [String: String]) -> [String: Any] {
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
        return object
    }
}
