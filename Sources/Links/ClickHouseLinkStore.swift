import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Tracking

/// Links kept in ClickHouse (`<database>.links`, a ReplacingMergeTree by `updated_at`), so several Vantage nodes
/// share them. Each node holds every link in its own ``LinkIndex`` and refreshes it every `refresh` interval with the
/// rows changed since the newest it has seen (deletions are tombstone rows), so a change made through one node
/// resolves on the others within about one interval. The request path never waits on ClickHouse.
///
/// Click counts are per node (a shared exact limit would put a network round trip on every click); reports count
/// clicks from the `link_click` events.
public final class ClickHouseLinkStore: LinkStore, Sendable {
    private let client: ClickHouseClient
    private let table: String
    private let logger: Logger
    /// Newest `updated_at` applied, and where each id lives (a rename elsewhere must drop the old key here).
    private let seen = Mutex<(newest: Int64, keys: [LinkID: LinkIndex.Key])>((0, [:]))

    public init(configuration: ClickHouseConfiguration, logger: Logger) {
        client = ClickHouseClient(configuration: configuration, group: MultiThreadedEventLoopGroupSingleton.group)
        table = "\(configuration.database).links"
        self.logger = logger
    }

    var createStatements: [String] {
        let database = table.split(separator: ".")[0]
        return [
            "CREATE DATABASE IF NOT EXISTS \(database)",
            """
            CREATE TABLE IF NOT EXISTS \(table) (id String, host String, slug String, destination String, status UInt16,
            expires_at Int64, fallback String, max_clicks Int64, pass_query UInt8, query_deny Array(String),
            utm_names Array(String), utm_values Array(String), tags Array(String), created_at Int64, updated_at Int64,
            deleted UInt8) ENGINE = ReplacingMergeTree(updated_at) ORDER BY id
            """,
        ]
    }

    /// Nothing at start: the first refresh (``refresh(into:)``, from ``LinkService/start(on:)``) loads everything.
    public func load(into index: LinkIndex) throws -> Int { 0 }

    public func put(_ link: Link) throws {
        try blocking { try await self.insert([Self.row(link, deleted: false)]) }
    }

    public func delete(_ link: Link) throws {
        var tombstone = link
        tombstone.updatedAt = max(link.updatedAt + 1, Int64(Date().timeIntervalSince1970 * 1000))
        let row = tombstone
        try blocking { try await self.insert([Self.row(row, deleted: true)]) }
    }

    /// Counts stay per node (see the type's documentation).
    public func saveClicks(_ clicks: [(id: String, clicks: Int)]) throws {}

    /// Applies the rows changed since the last refresh to `index` (the first call loads everything); returns how
    /// many rows were applied.
    public func refresh(into index: LinkIndex) async throws -> Int {
        let newest = seen.withLock { $0.newest }
        if newest == 0 {
            for statement in createStatements { try await client.query(statement, logger: logger) }
        }
        // Rows at the newest time seen are read again (a row written in the same millisecond after the last read
        // must not be missed); applying a row twice changes nothing.
        let where_ = newest == 0 ? "deleted = 0" : "updated_at >= \(newest)"
        let text = try await client.query(
            "SELECT id, host, slug, destination, status, expires_at, fallback, max_clicks, pass_query, query_deny, "
                + "utm_names, utm_values, tags, created_at, updated_at, deleted FROM \(table) \(newest == 0 ? "FINAL" : "") "
                + "WHERE \(where_) ORDER BY updated_at FORMAT JSONEachRow", logger: logger)
        var applied = 0
        for line in text.split(separator: "\n") {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                let (link, deleted) = Self.link(from: object), let id = LinkID(link.id)
            else { continue }
            let key = LinkIndex.Key(host: link.host, slug: link.slug)
            let previous = seen.withLock { state -> LinkIndex.Key? in
                state.newest = max(state.newest, link.updatedAt)
                return deleted ? state.keys.removeValue(forKey: id) : state.keys.updateValue(key, forKey: id)
            }
            if let previous, previous != key || deleted { index.remove(host: previous.host, slug: previous.slug) }
            if deleted {
                index.remove(host: link.host, slug: link.slug)
            } else {
                index.put([link])
            }
            applied += 1
        }
        return applied
    }

    public func shutdown() async { await client.shutdown() }

    // MARK: - Rows

    private func insert(_ rows: [[String: Any]]) async throws {
        let body = try rows.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.withoutEscapingSlashes]), as: UTF8.self) }
            .joined(separator: "\n")
        try await client.query("INSERT INTO \(table) FORMAT JSONEachRow\n" + body, logger: logger)
    }

    static func row(_ link: Link, deleted: Bool) -> [String: Any] {
        let utm = link.addQuery.sorted { $0.key < $1.key }
        return [
            "id": link.id, "host": link.host, "slug": link.slug, "destination": link.destination, "status": link.status,
            "expires_at": link.expiresAt ?? 0, "fallback": link.fallback ?? "", "max_clicks": link.maxClicks ?? 0,
            "pass_query": link.passQuery ? 1 : 0, "query_deny": link.queryDenyList, "utm_names": utm.map(\.key),
            "utm_values": utm.map(\.value), "tags": link.tags, "created_at": link.createdAt, "updated_at": link.updatedAt,
            "deleted": deleted ? 1 : 0,
        ]
    }

    /// A row as ClickHouse answers it (18.16 quotes 64-bit integers in JSON).
    static func link(from row: [String: Any]) -> (Link, deleted: Bool)? {
        func int(_ key: String) -> Int64 {
            if let number = row[key] as? NSNumber { return number.int64Value }
            return Int64(row[key] as? String ?? "") ?? 0
        }
        guard let id = row["id"] as? String, let host = row["host"] as? String, let slug = row["slug"] as? String,
            let destination = row["destination"] as? String
        else { return nil }
        var link = Link(id: id, host: host, slug: slug, destination: destination, createdAt: int("created_at"))
        link.updatedAt = int("updated_at")
        link.status = Int(int("status"))
        let expires = int("expires_at")
        link.expiresAt = expires == 0 ? nil : expires
        let fallback = row["fallback"] as? String ?? ""
        link.fallback = fallback.isEmpty ? nil : fallback
        let maxClicks = int("max_clicks")
        link.maxClicks = maxClicks == 0 ? nil : Int(maxClicks)
        link.passQuery = int("pass_query") != 0
        link.queryDenyList = row["query_deny"] as? [String] ?? []
        let names = row["utm_names"] as? [String] ?? [], values = row["utm_values"] as? [String] ?? []
        link.addQuery = Dictionary(zip(names, values)) { first, _ in first }
        link.tags = row["tags"] as? [String] ?? []
        return (link, int("deleted") != 0)
    }

    /// Runs async work from a blocking-pool thread (admin changes), waiting for it.
    private func blocking(_ work: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<(any Error)?>(nil)
        Task {
            do { try await work() } catch { outcome.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }
}

/// The event loops AsyncHTTPClient runs on for the link store (NIO's shared singleton group).
enum MultiThreadedEventLoopGroupSingleton {
    static var group: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }
}
