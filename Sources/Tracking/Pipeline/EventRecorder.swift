import Logging
import NIOCore
import Synchronization

/// One event loop's entry to the pipeline: makes event ids and writes events into the spool through the loop's
/// appender. Only used on its loop (`@unchecked Sendable` so it can be handed to the loop once).
public final class EventRecorder: @unchecked Sendable {
    private let appender: SpoolAppender
    private var ids = EventIDGenerator()
    private let sealAfterMilliseconds: Int64
    private let dropLog: DropLog
    /// When the pending segment got its first record (0: nothing pending).
    private var pendingSince: Int64 = 0

    let recorded = SingleWriterCounter()
    /// Records in the loop's open segment.
    let pending = SingleWriterCounter()
    let droppedFull = SingleWriterCounter()
    let droppedError = SingleWriterCounter()
    let droppedLost = SingleWriterCounter()

    /// Sealed segments waiting beyond which age no longer seals a segment.
    static let maxSealedBacklog = 64

    /// What leaves query strings before they are stored (also for the access log and link destinations).
    /// `tracking.privacy.query` (a reload replaces it, on the recorder's loop).
    public var scrubber: QueryScrubber

    init(spool: Spool, sealAfter: TimeAmount, dropLog: DropLog, scrubber: QueryScrubber = QueryScrubber()) {
        self.scrubber = scrubber
        appender = SpoolAppender(spool: spool)
        sealAfterMilliseconds = max(1, sealAfter.nanoseconds / 1_000_000)
        self.dropLog = dropLog
    }

    /// A new event id for an event happening at `unixMilliseconds`.
    @inline(__always)
    public func nextID(unixMilliseconds: Int64) -> EventID {
        ids.next(unixMilliseconds: UInt64(max(0, unixMilliseconds)))
    }

    /// Writes the event to the spool (or counts it dropped when the spool is full), its target's and referrer's query
    /// strings scrubbed of personal data first: nothing personal reaches the disk. When this returns, the event
    /// survives a crash of the process.
    public func record(_ event: TrackingEvent, nowMilliseconds: Int64) {
        var event = event
        record(inPlace: &event, nowMilliseconds: nowMilliseconds)
    }

    /// ``record(_:nowMilliseconds:)`` for an event the caller keeps: the encoder's closure reaches it by address
    /// (an event passed by value was copied whole, 568 bytes, into the closure's context).
    @inline(__always)
    func record(inPlace event: inout TrackingEvent, nowMilliseconds: Int64) {
        // The scrubbed strings go to the encoder beside the event: a scrubbed copy of the event would copy all of it.
        let target = scrubber.scrub(url: event.target)
        let referrer = event.referrer.isEmpty ? nil : scrubber.scrub(url: event.referrer)
        let outcome = appender.append(nowMilliseconds: nowMilliseconds) {
            EventRecord.encode(event, target: target, referrer: referrer, into: &$0)
        }
        switch outcome {
        case .written:
            recorded.add(1)
            pending.add(1)
            if pendingSince == 0 { pendingSince = nowMilliseconds }
        case .droppedQuotaFull:
            droppedFull.add(1)
            dropLog.note(reason: "the spool is full (tracking.spool.max_size); ClickHouse is behind or absent", nowMilliseconds: nowMilliseconds)
        case .droppedNoSegment:
            droppedError.add(1)
            dropLog.note(reason: "no spool segment could be created", nowMilliseconds: nowMilliseconds)
        case .droppedFolderLost:
            droppedLost.add(1)
            dropLog.note(reason: "the spool folder's lock was lost (see /health)", nowMilliseconds: nowMilliseconds)
        }
    }

    /// Seals the loop's segment once its first record is old enough (called every sync interval on the loop), so
    /// the shipper gets events within about a second. Only while the shipper keeps up: when sealed segments pile
    /// up (ClickHouse down) or nobody ships (no ClickHouse), segments fill to their size instead, so a long outage
    /// at low traffic does not leave a folder of tiny files.
    func tick(nowMilliseconds: Int64, shipping: Bool) {
        guard shipping, pendingSince != 0, nowMilliseconds - pendingSince >= sealAfterMilliseconds,
            appender.spool.sealedSegmentCount < Self.maxSealedBacklog
        else { return }
        appender.sealIfPending()
        pending.add(-pending.value)
        pendingSince = 0
    }

    /// Seals the loop's open segment now (an erasure rewrites sealed segments only; on the loop).
    func sealNow() {
        appender.sealIfPending()
        pending.add(-pending.value)
        pendingSince = 0
    }

    /// Seals what is pending and gives back unused quota (shutdown, on the loop).
    func close() {
        appender.close()
        pending.add(-pending.value)
        pendingSince = 0
    }
}

/// Logs dropped events at most once a minute for the whole process, with the running total.
final class DropLog: Sendable {
    private let lastMinute = Atomic<Int64>(-1)
    /// Drops so far, all loops (only touched when an event is dropped).
    private let total = Atomic<Int>(0)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func note(reason: String, nowMilliseconds: Int64) {
        let dropped = total.add(1, ordering: .relaxed).newValue
        let minute = nowMilliseconds / 60_000
        let last = lastMinute.load(ordering: .relaxed)
        guard last != minute, lastMinute.compareExchange(expected: last, desired: minute, ordering: .relaxed).exchanged
        else { return }
        logger.warning("dropping events: \(reason); \(dropped) dropped so far (vantage_events_dropped_total)")
    }
}
