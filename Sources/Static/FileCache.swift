import Compression
import NIOCore
import NIOHTTP1
import Synchronization

/// One cached file: its bytes, the compressed forms worth keeping, and the validators and headers that go with
/// them. Immutable once built, so any event loop may read it without locking.
public final class CachedFile: Sendable {
    /// Identity of the file on disk, compared on revalidation.
    public struct Fingerprint: Equatable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int
        var modifiedNanoseconds: Int
    }

    /// A stored representation: identity, or one content coding.
    public struct Variant: Sendable {
        /// The coding, nil for identity.
        public let coding: ContentCoding?
        /// The body bytes.
        public let body: ByteBuffer
        /// Entity tag for this variant.
        public let etag: String
        /// Response headers for a full 200 answer, minus Date and Server which the edge adds.
        public let headers: HTTPHeaders
    }

    /// The absolute path on disk.
    public let path: String
    /// Identity on disk when loaded.
    public let fingerprint: Fingerprint
    /// The media type.
    public let contentType: String
    /// The media type is `text/html` (decided once: every answer from the cache asks).
    public let isHTML: Bool
    /// Validators of the identity representation.
    public let validators: Validators
    /// The identity representation.
    public let identity: Variant
    /// Compressed representations in server preference order (brotli before gzip).
    public let encoded: [Variant]
    /// The codings of `encoded`, in the same order.
    public let availableCodings: [ContentCoding]
    /// The entity tags of `encoded`, for If-None-Match (kept so a request does not build the list).
    public let variantTags: [String]
    /// Bytes this entry holds in memory.
    public let cost: Int

    init(path: String, fingerprint: Fingerprint, contentType: String, body: ByteBuffer,
         compressed: [(ContentCoding, ByteBuffer)], cacheControl: String?)
    {
        self.path = path
        self.fingerprint = fingerprint
        self.contentType = contentType
        self.isHTML = MediaTypes.isHTML(contentType)
        let lastModified = fingerprint.modifiedNanoseconds / 1_000_000_000
        let baseTag = "\(String(lastModified, radix: 16))-\(String(fingerprint.size, radix: 16))"
        self.validators = Validators(etag: "\"\(baseTag)\"", lastModified: lastModified)
        let hasVariants = !compressed.isEmpty
        func headers(_ coding: ContentCoding?, _ body: ByteBuffer, _ etag: String) -> HTTPHeaders {
            var headers = HTTPHeaders()
            headers.reserveCapacity(9)
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            headers.add(name: "Last-Modified", value: HTTPDate.format(epochSeconds: lastModified))
            headers.add(name: "ETag", value: etag)
            if let coding { headers.add(name: "Content-Encoding", value: coding.token) }
            if coding == nil { headers.add(name: "Accept-Ranges", value: "bytes") }
            if hasVariants { headers.add(name: "Vary", value: "Accept-Encoding") }
            if let cacheControl { headers.add(name: "Cache-Control", value: cacheControl) }
            return headers
        }
        self.identity = Variant(
            coding: nil, body: body, etag: validators.etag, headers: headers(nil, body, validators.etag))
        self.encoded = compressed.map { coding, bytes in
            let tag = "\"\(baseTag)-\(coding.token)\""
            return Variant(coding: coding, body: bytes, etag: tag, headers: headers(coding, bytes, tag))
        }
        self.availableCodings = compressed.map(\.0)
        self.variantTags = encoded.map(\.etag)
        self.cost = body.readableBytes + compressed.reduce(0) { $0 + $1.1.readableBytes } + path.utf8.count + 512
    }

    /// The variant for a coding, or identity.
    public func variant(for coding: ContentCoding?) -> Variant {
        guard let coding else { return identity }
        return encoded.first { $0.coding == coding } ?? identity
    }
}

/// A process-wide cache of hot files, bounded by total bytes and by entry count, evicting the least recently used.
///
/// Lookups take a short uncontended lock; loading, compressing and revalidating happen on the blocking pool, never
/// on an event loop.
public final class FileCache: Sendable {
    /// Counters the edge exports as metrics.
    public struct Statistics: Sendable, Equatable {
        /// Lookups answered from memory.
        public var hits = 0
        /// Lookups that had to go to disk.
        public var misses = 0
        /// Entries removed to stay within bounds.
        public var evictions = 0
        /// Entries currently held.
        public var entries = 0
        /// Bytes currently held.
        public var bytes = 0
    }

    struct Slot {
        var file: CachedFile
        /// Set on every hit, cleared when the eviction hand passes (second-chance "clock" eviction).
        var referenced: Bool
        var checkedAt: UInt64
        var revalidating: Bool
    }

    /// A cache key: which server (root and settings) and which normalized request path.
    public struct Key: Hashable, Sendable {
        public var namespace: Int
        public var path: String

        public init(namespace: Int, path: String) {
            self.namespace = namespace
            self.path = path
        }
    }

    struct State {
        var slots: [Key: Slot] = [:]
        /// Keys in insertion order for the eviction hand; may hold keys already removed (skipped and dropped).
        var ring: [Key] = []
        var hand = 0
        var namespaces: [String: Int] = [:]
        var statistics = Statistics()
    }

    /// Largest total of cached bytes.
    public let maxBytes: Int
    /// Largest number of entries.
    public let maxEntries: Int
    private let state = Mutex(State())

    /// Creates an empty cache.
    public init(maxBytes: Int, maxEntries: Int = 10_000) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
    }

    /// Result of a lookup.
    public enum Lookup {
        /// Not cached.
        case miss
        /// Cached; `needsRevalidation` says the caller should check the disk in the background.
        case hit(CachedFile, needsRevalidation: Bool)
    }

    /// Looks up `key`, marking the entry recently used. `now` and `validity` are monotonic nanoseconds; an entry
    /// older than `validity` is handed out once with `needsRevalidation` so exactly one check runs at a time.
    public func lookup(_ key: Key, now: UInt64, validity: UInt64) -> Lookup {
        state.withLock { state in
            guard let index = state.slots.index(forKey: key) else {
                state.statistics.misses += 1
                return .miss
            }
            state.statistics.hits += 1
            // Update in place through the index: one hash lookup per hit.
            state.slots.values[index].referenced = true
            let slot = state.slots.values[index]
            if !slot.revalidating, now &- slot.checkedAt > validity {
                state.slots.values[index].revalidating = true
                return .hit(slot.file, needsRevalidation: true)
            }
            return .hit(slot.file, needsRevalidation: false)
        }
    }

    /// Stores a file, evicting entries not used since the eviction hand last passed them (a second-chance clock, which
    /// approximates least-recently-used in amortized constant time). Returns false when the file alone exceeds the
    /// budget (it is then served without caching).
    @discardableResult
    public func insert(_ key: Key, _ file: CachedFile, now: UInt64) -> Bool {
        guard file.cost <= maxBytes else { return false }
        return state.withLock { state in
            if let old = state.slots.removeValue(forKey: key) {
                state.statistics.bytes -= old.file.cost
            }
            while state.statistics.bytes + file.cost > maxBytes || state.slots.count >= maxEntries {
                guard !state.ring.isEmpty else { break }
                if state.hand >= state.ring.count { state.hand = 0 }
                let candidate = state.ring[state.hand]
                guard let index = state.slots.index(forKey: candidate) else {
                    // Removed by revalidation or replaced: drop the stale ring entry.
                    state.ring.swapAt(state.hand, state.ring.count - 1)
                    state.ring.removeLast()
                    continue
                }
                if state.slots.values[index].referenced {
                    state.slots.values[index].referenced = false
                    state.hand += 1
                    continue
                }
                state.statistics.bytes -= state.slots.values[index].file.cost
                state.slots.remove(at: index)
                state.ring.swapAt(state.hand, state.ring.count - 1)
                state.ring.removeLast()
                state.statistics.evictions += 1
            }
            if state.ring.count > 2 * max(state.slots.count, 16) {
                // Keep the ring bounded when entries keep being dropped outside eviction.
                state.ring.removeAll { state.slots[$0] == nil }
                state.hand = 0
            }
            state.slots[key] = Slot(file: file, referenced: false, checkedAt: now, revalidating: false)
            state.ring.append(key)
            state.statistics.bytes += file.cost
            state.statistics.entries = state.slots.count
            return true
        }
    }

    /// Records the result of a background revalidation: keeps the entry when it is unchanged, drops it otherwise.
    public func finishRevalidation(_ key: Key, file: CachedFile, stillCurrent: Bool, now: UInt64) {
        state.withLock { state in
            guard var slot = state.slots[key], slot.file === file else { return }
            if stillCurrent {
                slot.checkedAt = now
                slot.revalidating = false
                state.slots[key] = slot
            } else {
                state.slots.removeValue(forKey: key)
                state.statistics.bytes -= file.cost
                state.statistics.entries = state.slots.count
            }
        }
    }

    /// A small number standing for a server's root and settings, so keys stay short to hash.
    public func namespace(for description: String) -> Int {
        state.withLock { state in
            if let existing = state.namespaces[description] { return existing }
            let next = state.namespaces.count + 1
            state.namespaces[description] = next
            return next
        }
    }

    /// A snapshot of the counters.
    public var statistics: Statistics {
        state.withLock { $0.statistics }
    }
}
