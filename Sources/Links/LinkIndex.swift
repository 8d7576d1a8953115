import Synchronization
import Tracking

/// A link id: 128 bits written as a UUID, kept as two integers in the index (no string per link). The same value
/// type as an event id.
public typealias LinkID = EventID

/// Every link in memory, keyed by host and slug: what the request path consults (never the disk or the network).
///
/// Built for a million links: 16 shards (by key hash) each behind its own lock, so event loops rarely meet; in a
/// shard a dictionary maps the key to a position in a dense array of compact values (id as two integers, host
/// strings shared by a host's links, rarely used settings in an optional box). Click counts sit next to the link,
/// so a click limit is exact under concurrent clicks.
public final class LinkIndex: Sendable {
    public struct Key: Hashable, Sendable {
        public var host: String
        public var slug: String
        public init(host: String, slug: String) {
            self.host = host
            self.slug = slug
        }
    }

    /// What a click on a link resolves to.
    public enum Resolution: Sendable {
        /// Redirect; the click was counted.
        case redirect(ResolvedLink)
        /// Expired or out of clicks: a fallback redirect (302) or 410 Gone.
        case gone(ResolvedLink)
        case unknown
    }

    struct Value {
        var link: StoredLink
        var clicks: Int32
        var unsavedClicks: Bool
    }

    struct ShardState {
        var positions: [Key: Int32] = [:]
        var values: ContiguousArray<Value> = []
        var keys: ContiguousArray<Key?> = []
        var free: [Int32] = []
    }

    final class Shard: Sendable {
        let state = Mutex(ShardState())
    }

    static let shardCount = 16
    private let shards: [Shard] = (0..<16).map { _ in Shard() }
    /// One String per host, shared by its links.
    private let hosts = Mutex<[String: String]>([:])

    public init() {}

    @inline(__always)
    private func shard(_ key: Key) -> Shard {
        var hasher = Hasher()
        hasher.combine(key.slug)
        hasher.combine(key.host)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.shardCount))]
    }

    public var count: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.positions.count } } }

    /// Adds or replaces links (loading, admin changes); `clicks` by id, else a replaced link keeps its count.
    public func put(_ links: [Link], clicks: [String: Int] = [:]) {
        for link in links {
            guard let stored = StoredLink(link) else { continue }
            let host = hosts.withLock { hosts in
                if let shared = hosts[link.host] { return shared }
                hosts[link.host] = link.host
                return link.host
            }
            let key = Key(host: host, slug: link.slug)
            let count = Int32(clamping: clicks[link.id] ?? 0)
            shard(key).state.withLock { state in
                if let position = state.positions[key] {
                    let previous = state.values[Int(position)]
                    let kept = clicks[link.id] == nil && previous.link.id == stored.id ? previous.clicks : count
                    state.values[Int(position)] = Value(link: stored, clicks: kept, unsavedClicks: previous.unsavedClicks)
                    return
                }
                let value = Value(link: stored, clicks: count, unsavedClicks: false)
                if let reused = state.free.popLast() {
                    state.values[Int(reused)] = value
                    state.keys[Int(reused)] = key
                    state.positions[key] = reused
                } else {
                    state.positions[key] = Int32(state.values.count)
                    state.values.append(value)
                    state.keys.append(key)
                }
            }
        }
    }

    /// Sets a link's click count (loading).
    public func setClicks(_ clicks: Int, host: String, slug: String) {
        let key = Key(host: host, slug: slug)
        shard(key).state.withLock { state in
            if let position = state.positions[key] { state.values[Int(position)].clicks = Int32(clamping: clicks) }
        }
    }

    public func remove(host: String, slug: String) {
        let key = Key(host: host, slug: slug)
        shard(key).state.withLock { state in
            guard let position = state.positions.removeValue(forKey: key) else { return }
            state.keys[Int(position)] = nil
            state.free.append(position)
        }
    }

    public func link(host: String, slug: String) -> (Link, clicks: Int)? {
        let key = Key(host: host, slug: slug)
        return shard(key).state.withLock { state in
            state.positions[key].map { position in
                let value = state.values[Int(position)]
                return (value.link.link(host: host, slug: slug), Int(value.clicks))
            }
        }
    }

    /// The link with `id` (a scan: admin calls only).
    public func link(id text: String) -> (Link, clicks: Int)? {
        guard let id = LinkID(text) else { return nil }
        for shard in shards {
            let found = shard.state.withLock { state -> (Link, clicks: Int)? in
                for (position, key) in state.keys.enumerated() where key != nil && state.values[position].link.id == id {
                    return (state.values[position].link.link(host: key!.host, slug: key!.slug), Int(state.values[position].clicks))
                }
                return nil
            }
            if let found { return found }
        }
        return nil
    }

    /// A host's links sorted by slug, from after `cursor`, at most `limit` (a scan: admin calls only).
    public func list(host: String, after cursor: String?, limit: Int) -> [(Link, clicks: Int)] {
        list(LinkFilter(host: host), after: cursor.map { LinkCursor(host: host, slug: $0) }, limit: limit)
    }

    /// Links passing `filter`, sorted by host then slug, from after `cursor`, at most `limit` (a scan: admin calls
    /// and the CLI only).
    public func list(_ filter: LinkFilter, after cursor: LinkCursor?, limit: Int) -> [(Link, clicks: Int)] {
        var found: [(Link, clicks: Int)] = []
        for shard in shards {
            shard.state.withLock { state in
                for (position, key) in state.keys.enumerated() {
                    guard let key, filter.host.map({ key.host == $0 }) ?? true,
                        cursor.map({ (key.host, key.slug) > ($0.host, $0.slug) }) ?? true
                    else { continue }
                    let link = state.values[position].link.link(host: key.host, slug: key.slug)
                    guard filter.admits(link) else { continue }
                    found.append((link, Int(state.values[position].clicks)))
                }
            }
        }
        found.sort { ($0.0.host, $0.0.slug) < ($1.0.host, $1.0.slug) }
        return Array(found.prefix(limit))
    }


    /// The request path: resolves a click at `now` (Unix ms), counting it when it redirects.
    @inline(__always)
    public func resolve(host: String, slug: Substring, now: Int64) -> Resolution {
        let key = Key(host: host, slug: String(slug))
        return shard(key).state.withLock { state in
            guard let position = state.positions[key] else { return .unknown }
            let index = Int(position)
            let link = state.values[index].link
            if let extras = link.extras {
                let expired = extras.expiresAt.map { now >= $0 } ?? false
                let exhausted = extras.maxClicks.map { Int(state.values[index].clicks) >= $0 } ?? false
                if expired || exhausted { return .gone(ResolvedLink(link, slug: key.slug, expired: expired)) }
            }
            state.values[index].clicks &+= 1
            state.values[index].unsavedClicks = true
            return .redirect(ResolvedLink(link, slug: key.slug, expired: false))
        }
    }

    /// Click counts changed since the last call (for the store), by link id.
    public func takeUnsavedClicks() -> [(id: String, clicks: Int)] {
        var changed: [(id: String, clicks: Int)] = []
        for shard in shards {
            shard.state.withLock { state in
                for position in state.values.indices where state.values[position].unsavedClicks && state.keys[position] != nil {
                    changed.append((state.values[position].link.id.description, Int(state.values[position].clicks)))
                    state.values[position].unsavedClicks = false
                }
            }
        }
        return changed
    }

    /// Every link with its clicks (compaction).
    public func snapshot() -> [(Link, clicks: Int)] {
        var all: [(Link, clicks: Int)] = []
        for shard in shards {
            shard.state.withLock { state in
                for (position, key) in state.keys.enumerated() {
                    guard let key else { continue }
                    all.append((state.values[position].link.link(host: key.host, slug: key.slug), Int(state.values[position].clicks)))
                }
            }
        }
        return all
    }
}

/// What the request path needs of a link it resolved.
public struct ResolvedLink: Sendable {
    public let id: LinkID
    public let slug: String
    public let destination: String
    public let status: Int
    /// Gone because of its expiry (not its click limit).
    public let expired: Bool
    let extras: StoredLink.Extras?

    init(_ link: StoredLink, slug: String, expired: Bool) {
        id = link.id
        self.slug = slug
        destination = link.destination
        status = Int(link.status)
        self.expired = expired
        extras = link.extras
    }

    public var fallback: String? { extras?.fallback }

    /// Where the click goes, given the request's query.
    public func target(query: Substring) -> String {
        guard let extras, extras.passQuery || !extras.addQuery.isEmpty else { return destination }
        return Link.target(
            destination: destination, query: query, passQuery: extras.passQuery, denyList: extras.queryDenyList,
            addQuery: extras.addQuery)
    }
}

/// A link as the index keeps it: host and slug are the key; what most links leave at defaults stays out.
struct StoredLink: Sendable {
    final class Extras: Sendable {
        let expiresAt: Int64?
        let fallback: String?
        let maxClicks: Int?
        let passQuery: Bool
        let queryDenyList: [String]
        let addQuery: [String: String]
        let tags: [String]

        init(_ link: Link) {
            expiresAt = link.expiresAt
            fallback = link.fallback
            maxClicks = link.maxClicks
            passQuery = link.passQuery
            queryDenyList = link.queryDenyList
            addQuery = link.addQuery
            tags = link.tags
        }
    }

    let id: LinkID
    let destination: String
    let status: Int16
    let createdAt: Int64
    let updatedAt: Int64
    let extras: Extras?

    /// Nil when the link's id is not a UUID (links made here always have one).
    init?(_ link: Link) {
        guard let id = LinkID(link.id) else { return nil }
        self.id = id
        destination = link.destination
        status = Int16(link.status)
        createdAt = link.createdAt
        updatedAt = link.updatedAt
        let plain = link.expiresAt == nil && link.fallback == nil && link.maxClicks == nil && !link.passQuery
            && link.queryDenyList.isEmpty && link.addQuery.isEmpty && link.tags.isEmpty
        extras = plain ? nil : Extras(link)
    }

    func link(host: String, slug: String) -> Link {
        var link = Link(id: id.description, host: host, slug: slug, destination: destination, createdAt: createdAt)
        link.updatedAt = updatedAt
        link.status = Int(status)
        if let extras {
            link.expiresAt = extras.expiresAt
            link.fallback = extras.fallback
            link.maxClicks = extras.maxClicks
            link.passQuery = extras.passQuery
            link.queryDenyList = extras.queryDenyList
            link.addQuery = extras.addQuery
            link.tags = extras.tags
        }
        return link
    }
}

/// Which links a listing shows: a host, a tag, a text in the slug or destination.
public struct LinkFilter: Sendable {
    public var host: String?
    public var tag: String?
    public var search: String?

    public init(host: String? = nil, tag: String? = nil, search: String? = nil) {
        (self.host, self.tag, self.search) = (host, tag, search)
    }

    func admits(_ link: Link) -> Bool {
        if let tag, !link.tags.contains(tag) { return false }
        if let search, !link.slug.localizedCaseInsensitiveContains(search), !link.destination.localizedCaseInsensitiveContains(search) {
            return false
        }
        return true
    }
}

/// Where a listing goes on: after this host and slug (`host/slug` in the API).
public struct LinkCursor: Sendable {
    public var host: String
    public var slug: String

    public init(host: String, slug: String) { (self.host, self.slug) = (host, slug) }

    /// `host/slug`, or a bare slug of `host`.
    public init?(_ text: String, host: String?) {
        if let slash = text.firstIndex(of: "/") {
            (self.host, self.slug) = (String(text[..<slash]), String(text[text.index(after: slash)...]))
        } else if let host {
            (self.host, self.slug) = (host, text)
        } else {
            return nil
        }
    }
}
