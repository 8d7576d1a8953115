/// Remembers classified user agents, since a site's traffic repeats a few thousand of them. One per event loop, so
/// lookups take no lock.
///
/// Bounded as two generations: lookups that miss the current one look in the previous one and promote what they
/// find; when the current generation is full it becomes the previous one and the old previous one is dropped. So at
/// most `2 × capacity` entries live, recently used ones survive a rotation, and every operation is O(1).
public final class UserAgentCache {
    public let capacity: Int
    private var current: [String: UserAgent] = [:]
    private var previous: [String: UserAgent] = [:]
    public private(set) var hits = 0
    public private(set) var misses = 0
    /// Times a full generation was dropped (the bound at work).
    public private(set) var rotations = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        current.reserveCapacity(self.capacity)
    }

    /// The classification of `header`, from the cache or computed and remembered.
    public func classify(_ header: String?) -> UserAgent {
        guard let header, !header.isEmpty else { return UserAgent(parsing: nil) }
        if let known = current[header] {
            hits += 1
            return known
        }
        if let known = previous[header] {
            hits += 1
            insert(header, known)
            return known
        }
        misses += 1
        let parsed = UserAgent(parsing: header)
        insert(header, parsed)
        return parsed
    }

    /// Entries held now (both generations).
    public var count: Int { current.count + previous.count }

    private func insert(_ header: String, _ agent: UserAgent) {
        if current.count >= capacity {
            previous = current
            current = [:]
            current.reserveCapacity(capacity)
            rotations += 1
        }
        current[header] = agent
    }
}
