import Logging
import Synchronization
import NIOCore

/// The visits the shipper keeps current in the visits table (``EventSchema/visitsTable``): what it last wrote for
/// each open visit, so a batch that adds to a visit writes the old row with `sign = -1` and the new one with
/// `sign = 1`. A pure value: ``Batch`` gathers a batch's changes without touching it, ``commit(_:)`` takes them once
/// ClickHouse acknowledged the batch (a failed batch is built again from the same records and the same ledger).
///
/// Bounded: visits over ``timeoutMilliseconds`` idle can no longer grow and are let go; past ``capacity`` open
/// visits the least recently active go too (``evictions``; such a visit, if it goes on, is written as a second
/// one).
public struct VisitLedger: Sendable {
    /// A visit: its site and key (the session id, or `visitor:` and the visitor id for an event without one),
    /// hashed (a lookup per shipped event makes no string).
    public struct Key: Hashable, Sendable {
        private let value: Int

        public init(site: String, visit: String) {
            var site = site, visit = visit
            value = site.withUTF8 { siteBytes in
                visit.withUTF8 { visitBytes in
                    let prefixed = visitBytes.starts(with: Self.visitorPrefix)
                    let rest = prefixed ? UnsafeBufferPointer(rebasing: visitBytes[Self.visitorPrefix.count...]) : visitBytes
                    return Self.hash(site: UnsafeRawBufferPointer(siteBytes), visitor: prefixed, id: UnsafeRawBufferPointer(rest))
                }
            }
        }

        /// The key of a record's visit, read in place.
        init(_ fields: EventRecord.Fields) {
            let byVisitor = fields.sessionID.isEmpty
            value = Self.hash(site: fields.site, visitor: byVisitor, id: byVisitor ? fields.visitorID : fields.sessionID)
        }

        static let visitorPrefix = Array("visitor:".utf8)

        private static func hash(site: UnsafeRawBufferPointer, visitor: Bool, id: UnsafeRawBufferPointer) -> Int {
            var hasher = Hasher()
            hasher.combine(site.count)
            hasher.combine(bytes: site)
            hasher.combine(visitor)
            hasher.combine(bytes: id)
            return hasher.finalize()
        }
    }

    /// A visit as written: the numbers and the landing's values (``EventSchema/visitDimensionColumns``' order).
    public struct Visit: Sendable, Equatable {
        public var site: String
        /// The session id, or `visitor:` and the visitor id.
        public var id: String
        public var visitor: String
        public var start: Int64
        public var end: Int64
        public var pageviews: UInt32 = 0
        public var events: UInt32 = 0
        public var entryPage = ""
        public var entryTime = Int64.max
        public var exitPage = ""
        public var exitTime = Int64.min
        /// The time of the event the landing values were read from (the earliest seen).
        public var landingTime: Int64
        public var landing: [String]
        public var version: UInt32 = 0
    }

    public private(set) var visits: [Key: Visit] = [:]
    public let capacity: Int
    public let timeoutMilliseconds: Int64
    /// Open visits let go because the ledger was full.
    public private(set) var evictions = 0
    /// The latest event time committed (the ledger's clock: a backlog shipped late ages visits by its own times).
    private(set) var latest: Int64 = 0
    private var lastSweep: Int64 = 0

    public init(capacity: Int = 1_000_000, timeoutMilliseconds: Int64 = 30 * 60 * 1000) {
        self.capacity = max(1, capacity)
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// A batch's changes: the visits it touched, as they were and as they become.
    public struct Batch: Sendable {
        /// A visit the batch touched, as it was written before (nil: new) and as it becomes.
        struct Change: Sendable {
            var before: Visit?
            var after: Visit
        }

        var changes: [Key: Change] = [:]
        var latest: Int64 = 0

        public init() {}

        /// Whether the batch changed any visit.
        public var isEmpty: Bool { changes.isEmpty }
        /// Rows the batch writes (a cancelled row and its replacement, or a new visit's first row).
        public var rows: Int { changes.values.reduce(0) { $0 + ($1.before == nil ? 1 : 2) } }
    }

    /// Adds one spool record to `batch` (records of machines, and kinds visits do not count, change nothing).
    public func add(record: UnsafeRawBufferPointer, to batch: inout Batch) throws {
        let fields = try EventRecord.Fields(record: record)
        add(fields, to: &batch)
    }

    func add(_ fields: EventRecord.Fields, to batch: inout Batch) {
        let kind = fields.kind
        guard kind == .pageview || kind == .track || kind == .serverTrack || kind == .ltv, fields.botReason.isEmpty,
            !fields.visitorID.isEmpty || !fields.sessionID.isEmpty
        else { return }
        func text(_ bytes: UnsafeRawBufferPointer) -> String { bytes.isEmpty ? "" : String(decoding: bytes, as: UTF8.self) }
        let key = Key(fields)
        let time = fields.timeMilliseconds
        if batch.changes[key] == nil {
            let before = visits[key]
            let id = fields.sessionID.isEmpty ? "visitor:" + text(fields.visitorID) : text(fields.sessionID)
            batch.changes[key] = Batch.Change(
                before: before,
                after: before ?? Visit(
                    site: text(fields.site), id: id, visitor: text(fields.visitorID), start: time, end: time,
                    landingTime: Int64.max, landing: []))
        }
        Self.apply(fields, to: &batch.changes[key]!.after)
        batch.latest = max(batch.latest, time)
    }

    /// What one event adds to its visit.
    private static func apply(_ fields: EventRecord.Fields, to visit: inout Visit) {
        let time = fields.timeMilliseconds
        if time < visit.landingTime {
            visit.landingTime = time
            visit.landing = landing(fields)
        }
        visit.start = min(visit.start, time)
        visit.end = max(visit.end, time)
        guard fields.kind == .pageview else {
            visit.events += 1
            return
        }
        visit.pageviews += 1
        if time < visit.entryTime || time >= visit.exitTime {
            let bytes = fields.pathAndQuery.path
            let path = bytes.isEmpty ? "/" : String(decoding: bytes, as: UTF8.self)
            if time < visit.entryTime { (visit.entryPage, visit.entryTime) = (path, time) }
            if time >= visit.exitTime { (visit.exitPage, visit.exitTime) = (path, time) }
        }
    }

    /// The landing values of an event, as the visits table stores them.
    static func landing(_ fields: EventRecord.Fields) -> [String] {
        func text(_ bytes: UnsafeRawBufferPointer) -> String { bytes.isEmpty ? "" : String(decoding: bytes, as: UTF8.self) }
        let internalSource = fields.sourceCategory.elementsEqual("internal".utf8)
        return [
            text(fields.sessionChannel.isEmpty ? fields.channel : fields.sessionChannel),
            internalSource ? "" : text(fields.referrerHost), text(fields.utmSource), text(fields.utmMedium),
            text(fields.utmCampaign), text(fields.utmTerm), text(fields.utmContent), text(fields.country), text(fields.region),
            text(fields.city), text(fields.device), text(fields.browser), text(fields.browserVersion), text(fields.os),
            text(fields.osVersion),
        ]
    }

    /// The batch's rows in `RowBinary` (``EventSchema/visitColumns``' order).
    public func encode(_ batch: Batch) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: batch.changes.count * 400)
        for change in batch.changes.values {
            let version = (change.before?.version ?? 0) + 1
            if let before = change.before { Self.write(before, sign: -1, version: before.version, into: &out) }
            Self.write(change.after, sign: 1, version: version, into: &out)
        }
        return out
    }

    private static func write(_ visit: Visit, sign: Int8, version: UInt32, into out: inout ByteBuffer) {
        func string(_ text: String) {
            var length = UInt64(text.utf8.count)
            repeat {
                var byte = UInt8(length & 0x7f)
                length >>= 7
                if length != 0 { byte |= 0x80 }
                out.writeInteger(byte)
            } while length != 0
            out.writeString(text)
        }
        string(visit.site)
        string(visit.id)
        string(visit.visitor)
        var hasher = SipHash24(key0: 0, key1: 0)
        hasher.combine(visit.visitor.utf8)
        out.writeInteger(hasher.finalize(), endianness: .little)
        out.writeInteger(UInt64(max(0, visit.start)), endianness: .little)
        out.writeInteger(UInt64(max(0, visit.end)), endianness: .little)
        out.writeInteger(visit.pageviews, endianness: .little)
        out.writeInteger(visit.events, endianness: .little)
        string(visit.entryPage)
        string(visit.exitPage)
        for index in 0..<EventSchema.visitDimensionColumns.count { string(index < visit.landing.count ? visit.landing[index] : "") }
        out.writeInteger(sign)
        out.writeInteger(version, endianness: .little)
    }

    /// Takes a batch ClickHouse acknowledged: its visits as written, at their new version.
    public mutating func commit(_ batch: Batch) {
        for (key, change) in batch.changes {
            var visit = change.after
            visit.version = (change.before?.version ?? 0) + 1
            visits[key] = visit
        }
        latest = max(latest, batch.latest)
        // Idle visits can no longer grow (the edge opens a new session after the timeout): let them go, at most
        // once a timeout, and whenever the ledger is over its size.
        if latest - lastSweep >= timeoutMilliseconds || visits.count > capacity {
            let cutoff = latest - timeoutMilliseconds
            visits = visits.filter { $0.value.end >= cutoff }
            lastSweep = latest
        }
        if visits.count > capacity {
            let over = visits.count - capacity + capacity / 10
            for (key, _) in visits.sorted(by: { $0.value.end < $1.value.end }).prefix(over) { visits[key] = nil }
            evictions += over
        }
    }
}

/// A ``VisitLedger`` shared by the shippers of one pipeline (a reload that changes `tracking.clickhouse` makes a new
/// shipper; open visits go on in it).
public final class SharedVisitLedger: Sendable {
    private let ledger: Mutex<VisitLedger>
    private let warned = Atomic<Bool>(false)

    public init(capacity: Int = 1_000_000, timeoutMilliseconds: Int64 = 30 * 60 * 1000) {
        ledger = Mutex(VisitLedger(capacity: capacity, timeoutMilliseconds: timeoutMilliseconds))
    }

    /// The ledger as it is (a copy: reading it while a batch is built costs no lock per record).
    var current: VisitLedger { ledger.withLock { $0 } }

    /// The open visits as bytes, for the next start (``VisitLedger/saved()``).
    public func saved() -> [UInt8] { ledger.withLock { $0.saved() } }

    /// Takes back the visits an earlier run saved; returns how many are still open at `now`.
    public func restore(_ bytes: [UInt8], now: Int64) -> Int { ledger.withLock { $0.restore(bytes, now: now) } }

    var figures: (open: Int, evictions: Int) { ledger.withLock { ($0.visits.count, $0.evictions) } }

    func commit(_ batch: VisitLedger.Batch, logger: Logger) {
        guard !batch.isEmpty else { return }
        let evicted = ledger.withLock { ledger in
            let before = ledger.evictions
            ledger.commit(batch)
            return ledger.evictions > before
        }
        if evicted, !warned.exchange(true, ordering: .relaxed) {
            logger.warning(
                "visits ledger full (tracking.visitors.max_sessions): letting the least recently active open visits go (vantage_visits_evicted_total)")
        }
    }
}

extension VisitLedger {
    static let savedMagic = Array("vantage visits 1\n".utf8)

    /// The open visits as bytes (kept across a restart, so a visit that goes on after it is not written as a
    /// second one): per visit its strings (length-prefixed), times and counts.
    public func saved() -> [UInt8] {
        var out = ByteBuffer(bytes: Self.savedMagic)
        for visit in visits.values {
            for text in [visit.site, visit.id, visit.visitor, visit.entryPage, visit.exitPage] + visit.landing {
                out.writeInteger(UInt32(text.utf8.count), endianness: .little)
                out.writeString(text)
            }
            for number in [visit.start, visit.end, visit.entryTime, visit.exitTime, visit.landingTime] {
                out.writeInteger(number, endianness: .little)
            }
            for number in [visit.pageviews, visit.events, visit.version] { out.writeInteger(number, endianness: .little) }
        }
        return Array(out.readableBytesView)
    }

    /// Takes back visits ``saved()`` wrote (those idle past the timeout at `now` are let go); returns how many.
    @discardableResult
    public mutating func restore(_ bytes: [UInt8], now: Int64) -> Int {
        guard bytes.starts(with: Self.savedMagic) else { return 0 }
        var input = ByteBuffer(bytes: bytes.dropFirst(Self.savedMagic.count))
        let strings = 5 + EventSchema.visitDimensionColumns.count
        var restored = 0
        while input.readableBytes > 0, visits.count < capacity {
            var texts: [String] = []
            for _ in 0..<strings {
                guard let length = input.readInteger(endianness: .little, as: UInt32.self),
                    let text = input.readString(length: Int(length))
                else { return restored }
                texts.append(text)
            }
            var times: [Int64] = []
            for _ in 0..<5 {
                guard let time = input.readInteger(endianness: .little, as: Int64.self) else { return restored }
                times.append(time)
            }
            var counts: [UInt32] = []
            for _ in 0..<3 {
                guard let count = input.readInteger(endianness: .little, as: UInt32.self) else { return restored }
                counts.append(count)
            }
            guard times[1] >= now - timeoutMilliseconds else { continue }
            var visit = Visit(
                site: texts[0], id: texts[1], visitor: texts[2], start: times[0], end: times[1], landingTime: times[4],
                landing: Array(texts[5...]))
            (visit.entryPage, visit.exitPage, visit.entryTime, visit.exitTime) = (texts[3], texts[4], times[2], times[3])
            (visit.pageviews, visit.events, visit.version) = (counts[0], counts[1], counts[2])
            visits[Key(site: texts[0], visit: texts[1])] = visit
            latest = max(latest, visit.end)
            restored += 1
        }
        return restored
    }
}
