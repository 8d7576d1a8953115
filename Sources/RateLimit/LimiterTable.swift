import Synchronization

/// Keys (hashes of client addresses, API keys, ...) and their ``KeyState`` under one ``Policy``, bounded.
///
/// Sharded 64 ways, each shard a fixed array of 48-byte slots behind its own lock, open addressing within an 8-slot
/// window (so a table of `capacity` keys is at most 48 × `capacity` bytes; random keys soon touch every page of it):
/// a check for a known key touches one lock and a few slots and allocates nothing. When a key's window is full an
/// idle entry (nothing it holds would change an answer) is reused; only when none is idle is the entry closest to
/// idle evicted and counted, so a flood of new keys cannot grow memory and costs the flooders, not the limits of
/// active keys, first.
public final class LimiterTable: Sendable {
    struct Slot {
        var key: UInt64 = 0
        var state = KeyState()
    }

    static let window = 8
    public let policy: Policy
    public let capacity: Int
    private let shards: [SlotShard<Slot>]
    private let mask: Int
    private let evictionCount = Atomic<Int>(0)

    public init(policy: Policy, capacity: Int) {
        self.policy = policy
        (shards, self.capacity, mask) = SlotShard<Slot>.make(capacity: capacity, window: Self.window)
    }

    /// Entries evicted while not idle (the table's bound at work).
    public var evictions: Int { evictionCount.load(ordering: .relaxed) }

    /// Keys held (a scan: metrics and tests).
    public var count: Int {
        shards.reduce(0) { total, shard in
            total + shard.withSlots { slots in (0..<shard.size).reduce(0) { $0 + (slots[$1].key != 0 ? 1 : 0) } }
        }
    }

    /// Decides one request of `key` (any 64-bit hash; 0 is mapped to 1).
    public func check(key rawKey: UInt64, now: UInt64, day: Int32, dayLeft: UInt64 = 0, cost: Int = 1) -> Decision {
        let key = rawKey == 0 ? 1 : rawKey
        let policy = self.policy
        let mask = self.mask
        let (decision, evicted) = shards[Int(key >> 58)].withSlots { slots -> (Decision, Bool) in
            let start = Int(truncatingIfNeeded: key) & mask
            var reusable = -1
            var closest = start
            var closestTAT = UInt64.max
            for step in 0..<Self.window {
                let index = (start + step) & mask
                if slots[index].key == key {
                    return (policy.check(&slots[index].state, now: now, day: day, dayLeft: dayLeft, cost: cost), false)
                }
                if reusable < 0 && (slots[index].key == 0 || slots[index].state.isIdle(now: now, day: day)) { reusable = index }
                let latest = max(slots[index].state.arrival.0, slots[index].state.arrival.1, slots[index].state.arrival.2,
                                 slots[index].state.arrival.3)
                if latest < closestTAT {
                    closestTAT = latest
                    closest = index
                }
            }
            let index = reusable >= 0 ? reusable : closest
            slots[index] = Slot(key: key, state: KeyState())
            return (policy.check(&slots[index].state, now: now, day: day, dayLeft: dayLeft, cost: cost), reusable < 0)
        }
        if evicted { evictionCount.add(1, ordering: .relaxed) }
        return decision
    }
}
