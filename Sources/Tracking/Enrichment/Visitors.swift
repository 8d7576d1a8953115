import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Daily random keys for cookieless visitor ids (DESIGN.md §4): a visitor id is SipHash(key of the day; site, IP,
/// user agent), so the same browser is one visitor within a UTC day, cannot be followed across days, and the id says
/// nothing about the IP without the key. Yesterday's key is kept so a session running over midnight continues.
///
/// The keys are never written with the events. So that a restart (a deploy) does not split the day's visitors,
/// they are kept in an owner-only state file beside the spool (``VisitorStateFiles``), rewritten at every rotation,
/// so a key is gone from the disk the day after its own.
public final class VisitorKeyring: Sendable {
    public struct Keys: Sendable, Equatable {
        /// UTC day number (Unix days).
        public var day: Int64
        public var today: Key
        public var yesterday: Key

        public init(day: Int64, today: Key, yesterday: Key) {
            self.day = day
            self.today = today
            self.yesterday = yesterday
        }
    }

    /// A SipHash key.
    public struct Key: Sendable, Equatable {
        public var k0: UInt64
        public var k1: UInt64

        public init(_ k0: UInt64, _ k1: UInt64) {
            self.k0 = k0
            self.k1 = k1
        }

        static func random() -> Key {
            var random = SystemRandomNumberGenerator()
            return Key(random.next(), random.next())
        }
    }

    /// The keys, and whether they changed since ``takeUnsaved()`` last handed them out.
    private let state: Mutex<(keys: Keys?, unsaved: Bool)>

    /// Starts from `restored` keys (a state file of an earlier run), used for their day and as yesterday's the day
    /// after; older ones are dropped.
    public init(restored: Keys? = nil) {
        state = Mutex((restored, false))
    }

    /// The keys for `day`, rotating when the day moved on (yesterday's becomes the previous key; after a gap of
    /// more than a day both are new).
    public func keys(day: Int64) -> Keys {
        state.withLock { state in
            if let current = state.keys, current.day >= day { return current }
            let previous = state.keys.flatMap { $0.day == day - 1 ? $0.today : nil } ?? .random()
            let keys = Keys(day: day, today: .random(), yesterday: previous)
            state = (keys, true)
            return keys
        }
    }

    /// The keys when they changed since the last call (to be saved), else nil.
    public func takeUnsaved() -> Keys? {
        state.withLock { state in
            guard state.unsaved else { return nil }
            state.unsaved = false
            return state.keys
        }
    }

    static func visitorHash(key: Key, site: String, clientAddress: String, userAgent: String) -> UInt64 {
        var hasher = SipHash24(key0: key.k0, key1: key.k1)
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
        /// The ``MarketingChannel`` of the session's first touch (0 until one is known); in the slot's padding.
        var channel: UInt8 = 0
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
        /// The session's first-touch ``MarketingChannel`` (0: none known yet).
        public var channel: UInt8 = 0
    }

    static let shardCount = 64
    static let window = 16
    private let shards: [Shard]
    private let shardMask: Int
    /// Slots (24 bytes each).
    public let capacity: Int
    private let timeout: Atomic<UInt32>
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
        timeout = Atomic(UInt32(clamping: max(1, timeoutSeconds)))
        self.logger = logger
    }

    /// A session ends after this many seconds without a request (a reload may change it).
    public var timeoutSeconds: UInt32 {
        get { timeout.load(ordering: .relaxed) }
        set { timeout.store(max(1, newValue), ordering: .relaxed) }
    }

    /// Visitors dropped early because their window was full.
    public var evictions: Int { evictionCount.load(ordering: .relaxed) }

    /// Records a request of `visitor` at `now` (Unix seconds): continues its session, or opens one with
    /// `newSession` when it had none or it timed out. `channel` is the request's own touch (0: none, as for a
    /// subresource); the session keeps its first known one. `carriedFrom` is the visitor's id under yesterday's key
    /// (the cookieless id changes at midnight); its open session moves over to `visitor`.
    public func visit(
        visitor: UInt64, now: UInt32, newSession: UInt64, channel: UInt8 = 0, carriedFrom previous: UInt64? = nil
    ) -> Visit {
        let key = visitor == 0 ? 1 : visitor
        var result = touch(key: key, now: now, newSession: newSession, channel: channel)
        if result.isNew, let previous, let carried = take(key: previous == 0 ? 1 : previous, now: now) {
            let carriedChannel = carried.channel != 0 ? carried.channel : channel
            _ = touch(key: key, now: now, newSession: carried.session, channel: carriedChannel, replaceSession: true)
            result = Visit(session: carried.session, isNew: false, channel: carriedChannel)
        }
        return result
    }

    /// Visitors with a session in the table (a scan: metrics and tests, not the request path).
    public var count: Int {
        shards.reduce(0) { total, shard in
            total + shard.withSlots { slots in (0..<shard.size).reduce(0) { $0 + (slots[$1].visitor != 0 ? 1 : 0) } }
        }
    }

    private func touch(key: UInt64, now: UInt32, newSession: UInt64, channel: UInt8, replaceSession: Bool = false) -> Visit {
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
                        slots[index] = Slot(visitor: key, session: newSession, lastSeen: now, channel: channel)
                        return (Visit(session: newSession, isNew: !replaceSession, channel: channel), false)
                    }
                    slots[index].lastSeen = max(slot.lastSeen, now)
                    if slot.channel == 0 { slots[index].channel = channel }
                    return (Visit(session: slot.session, isNew: false, channel: slots[index].channel), false)
                }
                if free < 0 && (slot.visitor == 0 || now &- slot.lastSeen > timeout) { free = index }
                if slot.lastSeen < slots[oldest].lastSeen { oldest = index }
            }
            let evicted = free < 0
            slots[evicted ? oldest : free] = Slot(visitor: key, session: newSession, lastSeen: now, channel: channel)
            return (Visit(session: newSession, isNew: true, channel: channel), evicted)
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

    /// The sessions still open at `now` (for saving at shutdown; a scan under each shard's lock).
    public func openSessions(now: UInt32) -> [SavedSession] {
        var open: [SavedSession] = []
        let timeout = timeoutSeconds
        for shard in shards {
            shard.withSlots { slots in
                for index in 0..<shard.size where slots[index].visitor != 0 && now &- slots[index].lastSeen <= timeout {
                    let slot = slots[index]
                    open.append(SavedSession(visitor: slot.visitor, session: slot.session, lastSeen: slot.lastSeen, channel: slot.channel))
                }
            }
        }
        return open
    }

    /// Puts saved sessions back (those still open at `now`); returns how many.
    @discardableResult
    public func restore(_ sessions: [SavedSession], now: UInt32) -> Int {
        var restored = 0
        for saved in sessions where saved.visitor != 0 && now &- saved.lastSeen <= timeoutSeconds && saved.lastSeen <= now {
            _ = touch(key: saved.visitor, now: saved.lastSeen, newSession: saved.session, channel: saved.channel, replaceSession: true)
            restored += 1
        }
        return restored
    }

    /// Removes and returns the open session of `key`, if any.
    private func take(key: UInt64, now: UInt32) -> (session: UInt64, channel: UInt8)? {
        let shard = shards[Int(truncatingIfNeeded: key >> 58)]
        let timeout = timeoutSeconds
        return shard.withSlots { slots in
            let start = Int(truncatingIfNeeded: key) & shardMask
            for step in 0..<Self.window {
                let index = (start + step) & shardMask
                guard slots[index].visitor == key else { continue }
                let slot = slots[index]
                slots[index] = Slot()
                return now &- slot.lastSeen > timeout ? nil : (slot.session, slot.channel)
            }
            return nil
        }
    }
}

/// An open session as saved across a restart.
public struct SavedSession: Sendable, Equatable {
    public var visitor: UInt64
    public var session: UInt64
    public var lastSeen: UInt32
    public var channel: UInt8
}

/// Short ids without allocation: 64 bits in 13 characters of lower-case base 32 (Crockford's alphabet), which fits
/// Swift's inline small-string storage (15 bytes), unlike 16 hex digits.
enum ShortID {
    /// Crockford's base 32 in lower case (no i, l, o, u). A static string read through its pointer: no lazy
    /// global or array bounds check for the two ids of every event.
    private static var alphabet: StaticString { "0123456789abcdefghjkmnpqrstvwxyz" }

    static func string(_ value: UInt64) -> String {
        var value = value
        let digits = alphabet.utf8Start
        return String(unsafeUninitializedCapacity: 13) { buffer in
            for index in stride(from: 12, through: 0, by: -1) {
                buffer[index] = digits[Int(value & 31)]
                value >>= 5
            }
            return 13
        }
    }
}
