import Logging
import NIOCore
import Synchronization
import Tracking

/// What the live view shows: visitors and page views of the last ``window``, and the latest events, from the spool
/// followed as it is written (``SpoolReader`` reads only what was added since the last call, and segments shipped
/// to ClickHouse meanwhile are simply gone: the live view is about the last seconds, which are still there).
///
/// Bounded: at most ``capacity`` events are kept (the oldest go first; ``dropped`` counts them).
public actor LiveFeed {
    /// One event as the live view lists it.
    public struct Entry: Sendable, Equatable {
        public var sequence: Int
        public var time: Int64
        public var site: String
        public var kind: TrackingEvent.Kind
        public var visitor: String
        /// The page (path without the query) or the event's name.
        public var what: String
        public var source: String
        public var country: String
        public var device: String
        public var machine: Bool
    }

    /// A site's live numbers.
    public struct Snapshot: Sendable {
        /// Distinct people with a page view or custom event in the window.
        public var visitors: Int
        public var pageviews: Int
        /// The latest events, newest first.
        public var recent: [Entry]
    }

    public static let window: Int64 = 30 * 60 * 1000
    public let capacity: Int
    private var reader: SpoolReader
    private var entries: [Entry] = []
    private var nextSequence = 0
    private var lastRead: Int64?
    private var reading: Task<Void, Never>?
    /// Events let go before they were 30 minutes old because ``capacity`` were kept (`/metrics`).
    public nonisolated let dropped = Atomic<Int>(0)
    private let logger: Logger
    private let read: @Sendable (SpoolReader, @escaping @Sendable (ByteBuffer) -> Void) async -> SpoolReader

    /// `read` runs the reader's `readNew` where blocking is fine (the blocking pool) and returns it advanced.
    public init(
        spool: String, capacity: Int = 100_000, logger: Logger = Logger(label: "vantage.live"),
        read: @escaping @Sendable (SpoolReader, @escaping @Sendable (ByteBuffer) -> Void) async -> SpoolReader
    ) {
        reader = SpoolReader(directory: spool)
        self.capacity = capacity
        self.logger = logger
        self.read = read
    }

    /// The events kinds the live view lists.
    static func isListed(_ kind: TrackingEvent.Kind) -> Bool {
        kind == .pageview || kind == .track || kind == .serverTrack || kind == .ltv || kind == .linkClick || kind == .pixelOpen
    }

    /// Reads what the spool gained, at most once per `every` milliseconds (callers in between share the last read).
    public func refresh(now: Int64, every: Int64 = 1000) async {
        if let reading {
            await reading.value
            return
        }
        if let lastRead, now - lastRead < every { return }
        lastRead = now
        let task = Task { await readNew(now: now) }
        reading = task
        await task.value
        reading = nil
    }

    private func readNew(now: Int64) async {
        let collected = Collected()
        let cutoff = now - Self.window
        reader = await read(reader) { record in
            guard let event = try? EventRecord.decodeForReports(record, keep: { kind, time in Self.isListed(kind) && time >= cutoff })
            else { return }
            collected.append(event)
        }
        for event in collected.take() {
            entries.append(Entry(
                sequence: nextSequence, time: event.timeMilliseconds, site: event.site, kind: event.kind, visitor: event.visitorID,
                what: event.kind == .pageview ? Dimension.path(of: event.target) : event.eventName,
                source: event.sourceCategory == "internal" ? "" : event.referrerHost, country: event.country, device: event.device,
                machine: !event.botReason.isEmpty))
            nextSequence += 1
        }
        if let first = entries.firstIndex(where: { $0.time >= cutoff }), first > 0 { entries.removeFirst(first) }
        if entries.count > capacity {
            if dropped.add(entries.count - capacity, ordering: .relaxed).oldValue == 0 {
                logger.notice("live view: more than \(capacity) events in 30 minutes: it keeps the latest (vantage_live_events_dropped_total)")
            }
            entries.removeFirst(entries.count - capacity)
        }
    }

    /// The live numbers of `site` at `now` (people only; machines are listed when `machines`).
    public func snapshot(site: String, now: Int64, after sequence: Int = -1, limit: Int = 25, machines: Bool = false) -> Snapshot {
        let cutoff = now - Self.window
        var visitors = Set<String>()
        var pageviews = 0
        var recent: [Entry] = []
        for entry in entries.reversed() where entry.site == site && entry.time >= cutoff && (machines || !entry.machine) {
            if entry.kind == .pageview || ActivityAggregator.isCustom(entry.kind) { visitors.insert(entry.visitor) }
            if entry.kind == .pageview { pageviews += 1 }
            if entry.sequence > sequence && recent.count < limit { recent.append(entry) }
        }
        return Snapshot(visitors: visitors.count, pageviews: pageviews, recent: recent)
    }
}

/// Events handed over from the reading thread.
private final class Collected: Sendable {
    private let events = Mutex<[TrackingEvent]>([])

    func append(_ event: TrackingEvent) { events.withLock { $0.append(event) } }
    func take() -> [TrackingEvent] { events.withLock { $0 } }
}
