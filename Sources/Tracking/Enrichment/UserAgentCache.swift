/// A bounded map for one event loop (no lock), kept as two generations: lookups that miss the current one look in
/// the previous one and promote what they find; when the current generation is full it becomes the previous one
/// and the old previous one is dropped. So at most `2 × capacity` entries live, recently used ones survive a
/// rotation, and every operation is O(1).
public final class TwoGenerationCache<Key: Hashable, Value> {
    public let capacity: Int
    private var current: [Key: Value] = [:]
    private var previous: [Key: Value] = [:]
    /// Times a full generation was dropped (the bound at work).
    public private(set) var rotations = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        current.reserveCapacity(self.capacity)
    }

    public subscript(key: Key) -> Value? {
        get {
            if let known = current[key] { return known }
            guard let known = previous[key] else { return nil }
            insert(key, known)
            return known
        }
        set {
            if let newValue { insert(key, newValue) }
        }
    }

    /// Entries held now (both generations).
    public var count: Int { current.count + previous.count }

    public func removeAll() {
        current.removeAll(keepingCapacity: true)
        previous = [:]
    }

    private func insert(_ key: Key, _ value: Value) {
        if current.count >= capacity {
            // The dropped generation's storage becomes the new current one: no allocation, so no fresh pages to
            // fault in (a new 4096-entry table each rotation was a megabyte from the kernel every few seconds).
            swap(&previous, &current)
            current.removeAll(keepingCapacity: true)
            rotations += 1
        }
        current[key] = value
    }
}

/// Remembers classified user agents, since a site's traffic repeats a few thousand of them. One per event loop, so
/// lookups take no lock; hits and misses are counted for `/metrics`.
public final class UserAgentCache {
    /// A header with its hash taken once: a new agent is looked up in both generations and then inserted, and
    /// hashing its 100-odd bytes each time cost more than the lookups.
    struct Key: Hashable {
        let text: String
        let hash: Int

        init(_ text: String) {
            var text = text
            var hasher = Hasher()
            text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            (self.text, hash) = (text, hasher.finalize())
        }

        static func == (left: Key, right: Key) -> Bool { left.hash == right.hash && left.text == right.text }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    private let entries: TwoGenerationCache<Key, UserAgent>
    public let hits = SingleWriterCounter()
    public let misses = SingleWriterCounter()

    /// The lists, and this loop's memory for matching them.
    private let rules: UserAgentRules?
    private let scratch: UserAgentRules.Scratch?

    public init(capacity: Int = 4096, rules: UserAgentRules? = nil) {
        entries = TwoGenerationCache(capacity: capacity)
        self.rules = rules
        scratch = rules.map { UserAgentRules.Scratch(for: $0) }
    }

    public var capacity: Int { entries.capacity }
    /// Entries held now (both generations).
    public var count: Int { entries.count }
    /// Times a full generation was dropped.
    public var rotations: Int { entries.rotations }

    /// The classification of `header`, from the cache or computed and remembered.
    public func classify(_ header: String?) -> UserAgent {
        guard let header, !header.isEmpty else { return UserAgent(parsing: nil) }
        let key = Key(header)
        if let known = entries[key] {
            hits.add(1)
            return known
        }
        misses.add(1)
        let parsed = UserAgent(parsing: header, rules: rules, scratch: scratch)
        entries[key] = parsed
        return parsed
    }
}
