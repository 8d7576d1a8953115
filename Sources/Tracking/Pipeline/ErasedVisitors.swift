import Synchronization

/// Visitors erased (`vantage erase --vid`) while this process runs. Their records may still sit in a batch being
/// built or retried; the shipper checks each record against this set, so nothing of theirs reaches ClickHouse
/// after the erasure. Only erasures are remembered (rare, operator-driven), bounded all the same.
public final class ErasedVisitors: Sendable {
    private let ids = Mutex<Set<String>>([])
    private let count = Atomic<Int>(0)
    static let capacity = 100_000

    public init() {}

    public func insert(_ visitorID: String) {
        let size = ids.withLock { ids -> Int in
            if ids.count >= Self.capacity { ids.removeAll() }  // the spool was rewritten already: older ones are gone
            ids.insert(visitorID)
            return ids.count
        }
        count.store(size, ordering: .relaxed)
    }

    /// Whether a spool record belongs to an erased visitor (free when nobody was erased).
    @inline(__always)
    func matches(_ record: UnsafeRawBufferPointer) -> Bool {
        guard count.load(ordering: .relaxed) > 0 else { return false }
        guard let fields = try? EventRecord.Fields(record: record), fields.visitorID.count > 0 else { return false }
        let visitor = String(decoding: fields.visitorID, as: UTF8.self)
        return ids.withLock { $0.contains(visitor) }
    }
}
