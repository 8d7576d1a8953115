import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Daily random keys for cookieless visitor ids (DESIGN.md §4): a visitor id is SipHash(key of the day; site, IP,
/// user agent), so the same browser is one visitor within a UTC day, cannot be followed across days, and the id says
/// nothing about the IP without the key. Keys live only in memory (a restart starts new ones, as a day change does)
/// and are never written with the events. Yesterday's key is kept so a session running over midnight continues.
public final class VisitorKeyring: Sendable {
    public struct Keys: Sendable {
        /// UTC day number (Unix days).
        public var day: Int64
        public var today: (UInt64, UInt64)
        public var yesterday: (UInt64, UInt64)
    }

    private let state: Mutex<Keys?> = Mutex(nil)

    public init() {}

    /// The keys for `day`, rotating when the day moved on (yesterday's becomes the previous key; after a gap of
    /// more than a day both are new).
    public func keys(day: Int64) -> Keys {
        state.withLock { state in
            if let current = state, current.day >= day { return current }
            var random = SystemRandomNumberGenerator()
            let fresh = (random.next() as UInt64, random.next() as UInt64)
            let previous = state.flatMap { $0.day == day - 1 ? $0.today : nil } ?? (random.next(), random.next())
            let keys = Keys(day: day, today: fresh, yesterday: previous)
            state = keys
            return keys
        }
    }

    static func visitorHash(key: (UInt64, UInt64), site: String, clientAddress: String, userAgent: String) -> UInt64 {
        var hasher = SipHash24(key0: key.0, key1: key.1)
        hasher.combineField(site)
        hasher.combineField(clientAddress)
        hasher.combineField(userAgent)
        return hasher.finalize()
    }
}

/// The open sessions of recent visitors, shared by all loops: a visitor's session continues while it is active
/// within the timeout (30 minutes by default) and ends after that much inactivity; midnight does not end it.
///
/// Bounded: a fixed array of slots split into shards, each behind its own lock (held for a few probes). A visitor's
/// slot is looked for in a short window after its hash; when the window is full the least recently seen entry goes
/// (counted in ``evictions``: that visitor's next request opens a new session). 24 bytes a slot, allocated up
/// front and touched as used.
public final class SessionTable: Sendable {
    struct Slot {
        /// 0: empty.
        var visitor: UInt64 = 0
        var session: UInt64 = 0
        /// Unix seconds of the last request.
        var lastSeen: UInt32 = 0
    }

    /// A shard's slots come from `calloc`: large blocks are fresh zero pages from the kernel, so memory is only
    /// resident once visitors use it (a zero slot is an empty one). Touched only under `lock`.
    final class Shard: @unchecked Sendable {
        let lock = Mutex<Void>(())
        let slots: UnsafeMutablePointer<Slot>
        let size: Int

        init(size: Int) {
            self.size = size
            slots = calloc(size, MemoryLayout<Slot>.stride)!.bindMemory(to: Slot.self, capacity: size)
        }

        deinit { free(slots) }

        func withSlots<T>(_ body: (UnsafeMutablePointer<Slot>) -> T) -> T {
            lock.withLock { _ in body(slots) }
        }
    }

    /// The outcome of a request for a visitor.
    public struct Visit: Sendable, Equatable {
        public var session: UInt64
        /// The request opened the session.
        public var isNew: Bool
    }

    static let shardCount = 64
    static let window = 16
    private let shards: [Shard]
    private let shardMask: Int
    /// Slots (24 bytes each).
    public let capacity: Int
    public let timeoutSeconds: UInt32
    private let evictionCount = Atomic<Int>(0)
    private let warned = Atomic<Bool>(false)
    private let logger: Logger

    /// Room for `visitors` at once: slots for a quarter more (rounded up to a power of two), since probing within
    /// a short window evicts early when the table is nearly full. Sessions end after `timeoutSeconds` idle.
    public init(visitors: Int, timeoutSeconds: Int, logger: Logger = Logger(label: "vantage.sessions")) {
        var total = Self.shardCount * Self.window
        while total < visitors + visitors / 4 { total <<= 1 }
        self.capacity = total
        let perShard = total / Self.shardCount
        shardMask = perShard - 1
        shards = (0..<Self.shardCount).map { _ in Shard(size: perShard) }
        self.timeoutSeconds = UInt32(clamping: max(1, timeoutSeconds))
        self.logger = logger
    }

    /// Visitors dropped early because their window was full.
    public var evictions: Int { evictionCount.load(ordering: .relaxed) }

    /// Records a request of `visitor` at `now` (Unix seconds): continues its session, or opens one with
    /// `newSession` when it had none or it timed out. `carriedFrom` is the visitor's id under yesterday's key (the
    /// cookieless id changes at midnight); its open session moves over to `visitor`.
    public func visit(visitor: UInt64, now: UInt32, newSession: UInt64, carriedFrom previous: UInt64? = nil) -> Visit {
        let key = visitor == 0 ? 1 : visitor
        var result = touch(key: key, now: now, newSession: newSession)
        if result.isNew, let previous, let carried = take(key: previous == 0 ? 1 : previous, now: now) {
            _ = touch(key: key, now: now, newSession: carried, replaceSession: true)
            result = Visit(session: carried, isNew: false)
        }
        return result
    }

    /// Visitors with a session in the table (a scan: metrics and tests, not the request path).
    public var count: Int {
        shards.reduce(0) { total, shard in
            total + shard.withSlots { slots in (0..<shard.size).reduce(0) { $0 + (slots[$1].visitor != 0 ? 1 : 0) } }
        }
    }

    private func touch(key: UInt64, now: UInt32, newSession: UInt64, replaceSession: Bool = false) -> Visit {
        let shard = shards[Int(truncatingIfNeeded: key >> 58)]
        let timeout = timeoutSeconds
        let outcome: (Visit, evicted: Bool) = shard.withSlots { slots in
            let start = Int(truncatingIfNeeded: key) & shardMask
            var free = -1
            var oldest = start
            for step in 0..<Self.window {
                let index = (start + step) & shardMask
                let slot = slots[index]
                if slot.visitor == key {
                    if replaceSession || now &- slot.lastSeen > timeout {
                        slots[index].session = newSession
                        slots[index].lastSeen = now
                        return (Visit(session: newSession, isNew: !replaceSession), false)
                    }
                    slots[index].lastSeen = max(slot.lastSeen, now)
                    return (Visit(session: slot.session, isNew: false), false)
                }
                if free < 0 && (slot.visitor == 0 || now &- slot.lastSeen > timeout) { free = index }
                if slot.lastSeen < slots[oldest].lastSeen { oldest = index }
            }
            let evicted = free < 0
            slots[evicted ? oldest : free] = Slot(visitor: key, session: newSession, lastSeen: now)
            return (Visit(session: newSession, isNew: true), evicted)
        }
        if outcome.evicted {
            evictionCount.add(1, ordering: .relaxed)
            if !warned.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "session table full (tracking.visitors.max_sessions = \(capacity)): evicting the least recently seen visitors (vantage_sessions_evicted_total)")
            }
        }
        return outcome.0
    }

    /// Removes and returns the open session of `key`, if any.
    private func take(key: UInt64, now: UInt32) -> UInt64? {
        let shard = shards[Int(truncatingIfNeeded: key >> 58)]
        let timeout = timeoutSeconds
        return shard.withSlots { slots in
            let start = Int(truncatingIfNeeded: key) & shardMask
            for step in 0..<Self.window {
                let index = (start + step) & shardMask
                guard slots[index].visitor == key else { continue }
                let slot = slots[index]
                slots[index] = Slot()
                return now &- slot.lastSeen > timeout ? nil : slot.session
            }
            return nil
        }
    }
}

/// Short ids without allocation: 64 bits in 13 characters of lower-case base 32 (Crockford's alphabet), which fits
/// Swift's inline small-string storage (15 bytes), unlike 16 hex digits.
enum ShortID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)

    static func string(_ value: UInt64) -> String {
        var value = value
        return String(unsafeUninitializedCapacity: 13) { buffer in
            for index in stride(from: 12, through: 0, by: -1) {
                buffer[index] = alphabet[Int(value & 31)]
                value >>= 5
            }
            return 13
        }
    }
}
