import Synchronization

/// Every link in memory, keyed by host and slug: what the request path consults (never the disk or the network).
///
/// Kept lean for a million links: the key holds host and slug (host strings are shared between a host's links), the
/// value only what a redirect needs plus a box for rarely used settings; click counts live next to the link so a
/// max-click limit is exact under concurrent clicks (one lock).
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
    public enum Resolution: Equatable, Sendable {
        /// Redirect with the link's status; `clicks` counts this one.
        case redirect(link: Link, clicks: Int)
        /// Expired or out of clicks: a fallback redirect (302) or 410 Gone.
        case gone(link: Link, fallback: String?)
        case unknown
    }

    struct Entry {
        var link: StoredLink
        var clicks: Int
        /// Clicks not yet written to the store.
        var unsavedClicks: Bool
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var hosts: [String: String] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var count: Int { state.withLock { $0.entries.count } }

    /// Replaces or adds links (loading, admin changes, a shared store's refresh).
    public func put(_ links: [Link], clicks: [String: Int] = [:]) {
        state.withLock { state in
            state.entries.reserveCapacity(state.entries.count + links.count)
            for link in links {
                let host = state.hosts[link.host] ?? {
                    state.hosts[link.host] = link.host
                    return link.host
                }()
                let key = Key(host: host, slug: link.slug)
                let previous = state.entries[key]
                state.entries[key] = Entry(
                    link: StoredLink(link), clicks: clicks[link.id] ?? previous.map { $0.link.id == link.id ? $0.clicks : 0 } ?? 0,
                    unsavedClicks: previous?.unsavedClicks ?? false)
            }
        }
    }

    public func remove(host: String, slug: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: Key(host: host, slug: slug)) }
    }

    public func link(host: String, slug: String) -> (Link, clicks: Int)? {
        state.withLock { state in
            state.entries[Key(host: host, slug: slug)].map { ($0.link.link(host: host, slug: slug), $0.clicks) }
        }
    }

    /// The link with `id` (a scan: admin calls only).
    public func link(id: String) -> (Link, clicks: Int)? {
        state.withLock { state in
            for (key, entry) in state.entries where entry.link.id == id {
                return (entry.link.link(host: key.host, slug: key.slug), entry.clicks)
            }
            return nil
        }
    }

    /// A host's links sorted by slug, from after `cursor`, at most `limit` (a scan: admin calls only).
    public func list(host: String, after cursor: String?, limit: Int) -> [(Link, clicks: Int)] {
        state.withLock { state in
            var found: [(Key, Entry)] = []
            for (key, entry) in state.entries where key.host == host && (cursor.map { key.slug > $0 } ?? true) {
                found.append((key, entry))
            }
            found.sort { $0.0.slug < $1.0.slug }
            return found.prefix(limit).map { ($0.1.link.link(host: $0.0.host, slug: $0.0.slug), $0.1.clicks) }
        }
    }

    /// The request path: resolves a click at `now` (Unix ms), counting it when it redirects.
    public func resolve(host: String, slug: Substring, now: Int64) -> Resolution {
        let key = Key(host: host, slug: String(slug))
        return state.withLock { state in
            guard var entry = state.entries[key] else { return .unknown }
            let link = entry.link
            if let extras = link.extras {
                let expired = extras.expiresAt.map { now >= $0 } ?? false
                let exhausted = extras.maxClicks.map { entry.clicks >= $0 } ?? false
                if expired || exhausted {
                    return .gone(link: link.link(host: key.host, slug: key.slug), fallback: extras.fallback)
                }
            }
            entry.clicks += 1
            entry.unsavedClicks = true
            state.entries[key] = entry
            return .redirect(link: link.link(host: key.host, slug: key.slug), clicks: entry.clicks)
        }
    }

    /// Click counts changed since the last call (for the store), by link id.
    public func takeUnsavedClicks() -> [(id: String, clicks: Int)] {
        state.withLock { state in
            var changed: [(id: String, clicks: Int)] = []
            for (key, entry) in state.entries where entry.unsavedClicks {
                changed.append((entry.link.id, entry.clicks))
                state.entries[key]?.unsavedClicks = false
            }
            return changed
        }
    }

    /// Every link with its clicks (compaction).
    public func snapshot() -> [(Link, clicks: Int)] {
        state.withLock { state in
            state.entries.map { ($0.value.link.link(host: $0.key.host, slug: $0.key.slug), $0.value.clicks) }
        }
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

    let id: String
    let destination: String
    let status: Int16
    let createdAt: Int64
    let updatedAt: Int64
    let extras: Extras?

    init(_ link: Link) {
        id = link.id
        destination = link.destination
        status = Int16(link.status)
        createdAt = link.createdAt
        updatedAt = link.updatedAt
        let plain = link.expiresAt == nil && link.fallback == nil && link.maxClicks == nil && !link.passQuery
            && link.queryDenyList.isEmpty && link.addQuery.isEmpty && link.tags.isEmpty
        extras = plain ? nil : Extras(link)
    }

    func link(host: String, slug: String) -> Link {
        var link = Link(id: id, host: host, slug: slug, destination: destination, createdAt: createdAt)
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
