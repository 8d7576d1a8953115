import Config
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Tracking

/// `links:` (top level): where short links are kept.
public struct LinksConfiguration: Sendable, Equatable {
    /// The journal's folder (the embedded store).
    public var directory = "data/links"
    /// A second click on the same link by the same visitor within this window is marked `repeat`.
    public var repeatWindowSeconds = 3600
    /// `journal` (the embedded default) or `clickhouse` (shared by several nodes, through `tracking.clickhouse`).
    public var store = "journal"
    /// How often a node reads links changed elsewhere (the ClickHouse store).
    public var refresh: TimeAmount = .seconds(2)
    /// `legacy_api`: the Go tracker's `rpi` short-link API, for scripts that still call it (off by default).
    public var legacyAPI: LegacyShortLinkConfiguration?

    public static let keys = ["dir", "repeat_window", "store", "refresh", "legacy_api"]

    public init() {}

    /// The key paths whose change from `self` to `new` a running process cannot apply (all of them: the journal
    /// is held open and locked, the store and its refresh timer are made at start, the repeat window sizes the
    /// recent-clicks table). `nil` stands for no `links:` section.
    public static func restartOnlyChanges(from old: LinksConfiguration?, to new: LinksConfiguration?) -> [String] {
        guard let old, let new else { return old == new ? [] : ["links"] }
        var keys: [String] = []
        if old.directory != new.directory { keys.append("links.dir") }
        if old.repeatWindowSeconds != new.repeatWindowSeconds { keys.append("links.repeat_window") }
        if old.store != new.store { keys.append("links.store") }
        if old.refresh != new.refresh { keys.append("links.refresh") }
        return keys
    }

    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        if let value = map["dir"] { directory = try value.path() }
        if let value = map["repeat_window"] {
            let seconds = try value.duration().components.seconds
            guard (1...30 * 86_400) ~= seconds else { throw value.error("expected a window between 1s and 30d") }
            repeatWindowSeconds = Int(seconds)
        }
        if let value = map["store"] { store = try value.oneOf(["journal", "clickhouse"]) }
        if let value = map["refresh"] {
            let duration = try value.duration()
            guard duration >= .milliseconds(100), duration <= .seconds(3600) else {
                throw value.error("expected a refresh interval between 100ms and 1h")
            }
            refresh = TimeAmount(duration)
        }
        if let value = map["legacy_api"] { legacyAPI = try LegacyShortLinkConfiguration(from: value) }
    }
}

/// Short links of a running gateway: the in-memory index the request path reads, the store behind it, the admin
/// operations, and the once-a-second click flush.
public final class LinkService: Sendable {
    public let configuration: LinksConfiguration
    public let index = LinkIndex()
    let store: any LinkStore
    private let pool: NIOThreadPool
    private let logger: Logger
    private let flushTask = Mutex<RepeatedTask?>(nil)
    private let refreshTask = Mutex<Task<Void, Never>?>(nil)
    /// Recent (visitor, link) clicks for repeat marking.
    public let recentClicks: RecentClicks

    /// Opens the store and loads every link; throws before anything listens when the store cannot be used.
    public init(configuration: LinksConfiguration, clickHouse: ClickHouseConfiguration?, pool: NIOThreadPool, logger: Logger) throws {
        self.configuration = configuration
        self.pool = pool
        self.logger = logger
        recentClicks = RecentClicks(capacity: 1 << 20, windowSeconds: configuration.repeatWindowSeconds)
        if configuration.store == "clickhouse" {
            guard let clickHouse else {
                throw AdminError.invalid("links.store: clickhouse needs tracking.clickhouse (its endpoints and credentials are used)")
            }
            store = ClickHouseLinkStore(configuration: clickHouse, logger: logger)
            return
        }
        let store = try JournalLinkStore(directory: configuration.directory, logger: logger)
        self.store = store
        let started = Date()
        let count = try store.load(into: index)
        logger.info("links: \(count) link(s) loaded from \(configuration.directory) in \(Int(Date().timeIntervalSince(started) * 1000)) ms")
    }

    /// Starts the click flush (every second, on the blocking pool), and with the ClickHouse store the refresh
    /// loop (the first pass loads every link; failures are retried with a growing pause and logged once a minute).
    public func start(on loop: any EventLoop) {
        if let shared = store as? ClickHouseLinkStore {
            let index = self.index, logger = self.logger, interval = configuration.refresh
            let task = Task {
                var loaded = false
                var pause = interval
                var lastWarning = NIODeadline.uptimeNanoseconds(0)
                while !Task.isCancelled {
                    do {
                        let applied = try await shared.refresh(into: index)
                        if !loaded {
                            loaded = true
                            logger.info("links: \(index.count) link(s) loaded from ClickHouse")
                        } else if applied > 0 {
                            logger.debug("links: \(applied) change(s) from ClickHouse")
                        }
                        pause = interval
                    } catch {
                        if NIODeadline.now() - lastWarning >= .seconds(60) {
                            lastWarning = NIODeadline.now()
                            logger.warning("links: cannot refresh from ClickHouse (retrying): \(error)")
                        }
                        pause = min(pause * 2, .seconds(30))
                    }
                    try? await Task.sleep(nanoseconds: UInt64(pause.nanoseconds))
                }
            }
            refreshTask.withLock { $0 = task }
        }
        let task = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            pool.submit { _ in self.flushClicks() }
        }
        flushTask.withLock { $0 = task }
    }

    /// Why the store takes no changes, if it does not: the journal folder's lock was lost (checked here once a
    /// second by ``flushClicks()``, and logged once by the store).
    public var storeProblem: String? { (store as? JournalLinkStore)?.ownershipProblem }

    /// Writes pending click counts (and at shutdown). Counts stay in memory while the store takes no changes.
    public func flushClicks() {
        if storeProblem != nil { return }
        let changed = index.takeUnsavedClicks()
        do {
            try store.saveClicks(changed)
            if let journal = store as? JournalLinkStore { try journal.compactIfWorthIt { index.snapshot() } }
        } catch {
            logger.error("links: cannot save click counts: \(error)")
        }
    }

    public func shutdown() async {
        flushTask.withLock { $0?.cancel() }
        let refresh = refreshTask.withLock { $0 }
        refresh?.cancel()
        await refresh?.value
        flushClicks()
        if let shared = store as? ClickHouseLinkStore { await shared.shutdown() }
    }

    // MARK: - Admin operations (off the event loops)

    public enum AdminError: Error, CustomStringConvertible {
        case invalid(String)
        case notFound(String)
        case conflict(String)

        public var description: String {
            switch self {
            case .invalid(let text), .notFound(let text), .conflict(let text): text
            }
        }
    }

    /// The JSON object of an admin request body.
    public static func fields(_ json: Data) throws -> [String: Any] {
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw AdminError.invalid("expected a JSON object")
        }
        return object
    }

    /// Creates a link from the admin API's JSON fields; the slug is generated when missing.
    public func create(_ fields: [String: Any], now: Int64) throws -> Link {
        guard let host = fields["host"] as? String, !host.isEmpty else { throw AdminError.invalid("expected host") }
        guard let destination = fields["destination"] as? String ?? fields["url"] as? String else {
            throw AdminError.invalid("expected destination (an absolute http(s) URL)")
        }
        let normalizedHost = LinkRules.normalizeHost(host)
        var slug = fields["slug"] as? String
        if slug == nil {
            for _ in 0..<10 {
                let candidate = LinkRules.generateSlug()
                if index.link(host: normalizedHost, slug: candidate) == nil {
                    slug = candidate
                    break
                }
            }
        }
        guard let slug else { throw AdminError.conflict("could not generate a free slug") }
        var link = Link(id: UUID().uuidString.lowercased(), host: normalizedHost, slug: slug, destination: destination, createdAt: now)
        try apply(fields, to: &link)
        guard index.link(host: link.host, slug: link.slug) == nil else {
            throw AdminError.conflict("\(link.host)/\(link.slug) exists already")
        }
        try store.put(link)
        index.put([link])
        return link
    }

    /// Changes the fields present in `fields` (host and slug included).
    public func update(id: String, _ fields: [String: Any], now: Int64) throws -> Link {
        guard let (current, clicks) = index.link(id: id) else { throw AdminError.notFound("no link \(id)") }
        var link = current
        if let host = fields["host"] as? String { link.host = LinkRules.normalizeHost(host) }
        if let slug = fields["slug"] as? String { link.slug = slug }
        if let destination = fields["destination"] as? String ?? fields["url"] as? String { link.destination = destination }
        try apply(fields, to: &link)
        link.updatedAt = now
        if link.host != current.host || link.slug != current.slug {
            guard index.link(host: link.host, slug: link.slug) == nil else {
                throw AdminError.conflict("\(link.host)/\(link.slug) exists already")
            }
        }
        try store.put(link)
        if link.host != current.host || link.slug != current.slug { index.remove(host: current.host, slug: current.slug) }
        index.put([link], clicks: [link.id: clicks])
        return link
    }

    public func delete(id: String) throws -> Link {
        guard let (link, _) = index.link(id: id) else { throw AdminError.notFound("no link \(id)") }
        try store.delete(link)
        index.remove(host: link.host, slug: link.slug)
        return link
    }

    /// Validates and applies the optional settings present in `fields`.
    private func apply(_ fields: [String: Any], to link: inout Link) throws {
        do {
            if let status = fields["status"] { link.status = try Self.int(status, "status") }
            if fields.keys.contains("expires_at") {
                if let text = fields["expires_at"] as? String {
                    guard let date = ISO8601DateFormatter().date(from: text) else {
                        throw AdminError.invalid("expected expires_at as an ISO 8601 time such as 2026-12-31T23:59:59Z")
                    }
                    link.expiresAt = Int64(date.timeIntervalSince1970 * 1000)
                } else if fields["expires_at"] is NSNull {
                    link.expiresAt = nil
                } else {
                    throw AdminError.invalid("expected expires_at as an ISO 8601 time")
                }
            }
            if fields.keys.contains("fallback") {
                link.fallback = fields["fallback"] as? String
                if let fallback = link.fallback {
                    try LinkRules.checkDestination(fallback, host: link.host, slug: link.slug)
                }
            }
            if fields.keys.contains("max_clicks") {
                link.maxClicks = fields["max_clicks"] is NSNull ? nil : try Self.int(fields["max_clicks"]!, "max_clicks")
                if let max = link.maxClicks, max < 1 { throw AdminError.invalid("expected max_clicks of 1 or more") }
            }
            if let pass = fields["pass_query"] {
                guard let flag = pass as? Bool else { throw AdminError.invalid("expected pass_query true or false") }
                link.passQuery = flag
            }
            if let deny = fields["query_deny"] {
                guard let names = deny as? [String] else { throw AdminError.invalid("expected query_deny as a list of names") }
                link.queryDenyList = names
            }
            if let add = fields["utm"] ?? fields["add_query"] {
                guard let pairs = add as? [String: String] else {
                    throw AdminError.invalid("expected utm as an object of strings ({\"utm_source\": \"mail\"})")
                }
                link.addQuery = pairs
            }
            if let tags = fields["tags"] {
                guard let list = tags as? [String], list.count <= 32 else { throw AdminError.invalid("expected tags as up to 32 strings") }
                link.tags = list
            }
            try LinkRules.checkSlug(link.slug)
            try LinkRules.checkStatus(link.status)
            try LinkRules.checkDestination(link.destination, host: link.host, slug: link.slug)
        } catch let error as LinkValidationError {
            throw AdminError.invalid(error.description)
        }
    }

    private static func int(_ value: Any, _ name: String) throws -> Int {
        if let number = value as? NSNumber, String(cString: number.objCType) != "c" { return number.intValue }
        if let text = value as? String, let number = Int(text) { return number }
        throw AdminError.invalid("expected \(name) to be a number")
    }

    /// The JSON form of a link for the admin API and the CLI.
    public static func json(_ link: Link, clicks: Int) -> [String: Any] {
        var object: [String: Any] = [
            "id": link.id, "host": link.host, "slug": link.slug, "destination": link.destination,
            "status": link.status, "pass_query": link.passQuery, "clicks": clicks,
            "created_at": iso(link.createdAt), "updated_at": iso(link.updatedAt),
        ]
        if let expiresAt = link.expiresAt { object["expires_at"] = iso(expiresAt) }
        if let fallback = link.fallback { object["fallback"] = fallback }
        if let maxClicks = link.maxClicks { object["max_clicks"] = maxClicks }
        if !link.queryDenyList.isEmpty { object["query_deny"] = link.queryDenyList }
        if !link.addQuery.isEmpty { object["utm"] = link.addQuery }
        if !link.tags.isEmpty { object["tags"] = link.tags }
        return object
    }

    static func iso(_ milliseconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

/// Which visitor clicked which link lately (repeat marking): a bounded table of hashes and times, sharded, lossy
/// at the bound (a forgotten click makes the next one count as unique again).
public final class RecentClicks: Sendable {
    final class Shard: Sendable {
        let table = Mutex<[UInt64: UInt32]>([:])
    }

    private let shards: [Shard]
    private let capacityPerShard: Int
    private let windowSeconds: UInt32

    init(capacity: Int, windowSeconds: Int) {
        shards = (0..<64).map { _ in Shard() }
        capacityPerShard = max(1, capacity / 64)
        self.windowSeconds = UInt32(windowSeconds)
    }

    /// Records a click of `key` (a hash of visitor and link) at `now`; true when the same key clicked within the
    /// window.
    public func isRepeat(_ key: UInt64, now: UInt32) -> Bool {
        shards[Int(key >> 58)].table.withLock { table in
            if let last = table[key], now &- last < windowSeconds {
                table[key] = now
                return true
            }
            if table.count >= capacityPerShard {
                // Drop what has aged out; if nothing has, start over (the bound wins over precision).
                let window = windowSeconds
                table = table.filter { now &- $0.value < window }
                if table.count >= capacityPerShard { table.removeAll(keepingCapacity: true) }
            }
            table[key] = now
            return false
        }
    }
}
