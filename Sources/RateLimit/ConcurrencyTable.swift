import Synchronization

/// Requests in flight per key, bounded: the `concurrency` part of a route's limit (nginx's `limit_conn`, per key).
///
/// A key holds a slot only while it has requests in flight, so the table's size follows concurrency, not the number
/// of clients ever seen. Sharded 64 ways like ``LimiterTable``, each shard a fixed array of 16-byte slots behind its
/// own lock with an 8-slot probe window; lookups scan the whole window (an emptied slot needs no tombstone).
///
/// Every ``acquire(key:limit:)`` that answers ``Admission/admitted`` must be paired with exactly one
/// ``release(key:)``. When a key's window is full of other keys with requests in flight, the request is let through
/// untracked (``Admission/untracked``, counted in ``overflows``) rather than refused: a full table must not turn into
/// an outage for clients that did nothing wrong.
public final class ConcurrencyTable: Sendable {
    struct Slot {
        var key: UInt64 = 0
        var inFlight: Int64 = 0
    }

    /// The outcome of ``acquire(key:limit:)``.
    public enum Admission: Sendable, Equatable {
        /// Counted: call ``release(key:)`` when the request is over.
        case admitted
        /// The key already has `limit` requests in flight.
        case refused
        /// No room to count the key (its window is full): let through, nothing to release.
        case untracked
    }

    static let window = 8
    public let capacity: Int
    private let shards: [SlotShard<Slot>]
    private let mask: Int
    private let overflowCount = Atomic<Int>(0)

    public init(capacity: Int) {
        (shards, self.capacity, mask) = SlotShard<Slot>.make(capacity: capacity, window: Self.window)
    }

    /// Requests let through untracked because the table had no room for their key.
    public var overflows: Int { overflowCount.load(ordering: .relaxed) }

    /// Keys with requests in flight, and those requests (a scan: metrics and tests).
    public var usage: (keys: Int, inFlight: Int) {
        shards.reduce(into: (0, 0)) { total, shard in
            shard.withSlots { slots in
                for index in 0..<shard.size where slots[index].key != 0 {
                    total.0 += 1
                    total.1 += Int(slots[index].inFlight)
                }
            }
        }
    }

    /// Counts one more request of `key` (any 64-bit hash; 0 is mapped to 1) unless it already has `limit` in flight.
    public func acquire(key rawKey: UInt64, limit: Int) -> Admission {
        let key = rawKey == 0 ? 1 : rawKey
        let mask = self.mask
        let admission = shards[Int(key >> 58)].withSlots { slots -> Admission in
            let start = Int(truncatingIfNeeded: key) & mask
            var free = -1
            for step in 0..<Self.window {
                let index = (start + step) & mask
                if slots[index].key == key {
                    guard slots[index].inFlight < limit else { return .refused }
                    slots[index].inFlight += 1
                    return .admitted
                }
                if free < 0 && slots[index].key == 0 { free = index }
            }
            guard free >= 0 else { return .untracked }
            guard limit > 0 else { return .refused }
            slots[free] = Slot(key: key, inFlight: 1)
            return .admitted
        }
        if admission == .untracked { overflowCount.add(1, ordering: .relaxed) }
        return admission
    }

    /// Ends one admitted request of `key`; the key's slot is freed with its last request.
    public func release(key rawKey: UInt64) {
        let key = rawKey == 0 ? 1 : rawKey
        let mask = self.mask
        shards[Int(key >> 58)].withSlots { slots in
            let start = Int(truncatingIfNeeded: key) & mask
            for step in 0..<Self.window {
                let index = (start + step) & mask
                guard slots[index].key == key else { continue }
                slots[index].inFlight -= 1
                if slots[index].inFlight <= 0 { slots[index] = Slot() }
                return
            }
        }
    }
}
