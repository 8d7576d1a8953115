import Compression
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Moves sealed spool segments into ClickHouse: prepares the schema, groups segments into large `RowBinary`
/// batches (by rows, bytes or age), sends them compressed where that pays, and removes a segment only after
/// ClickHouse acknowledged the batch holding it. Failures are retried with exponential backoff and jitter,
/// moving to the next endpoint, for as long as it takes: nothing is dropped here.
///
/// Delivery is at least once. A batch is resent byte for byte after a failure (Replicated tables drop the
/// repeat), and a crash between ClickHouse's acknowledgement and the segment removal resends at most that one
/// batch after the restart; the table's ReplacingMergeTree engine collapses such repeats by event id.
public final class Shipper: Sendable {
    /// Counters for `/metrics`.
    struct Figures {
        var shippedRows = 0
        var shippedBatches = 0
        var failedAttempts = 0
        var invalidRecords = 0
        var batchSecondsSum = 0.0
        var lastBatchSeconds = 0.0
        var lastBatchRows = 0
        var connected = false
        /// Why the last call failed, while it is the latest word (nil after a success or before any call).
        var lastFailure: String?
    }

    /// ClickHouse as the shipper last found it: nil before any call, or the reason the last call failed.
    public var lastFailure: String? { figures.withLock { $0.lastFailure } }

    /// Batches and rows shipped, failed calls and the seconds the batches took, for the older tracker's JSON.
    var batchFigures: (batches: Int, rows: Int, failures: Int, seconds: Double) {
        figures.withLock { ($0.shippedBatches, $0.shippedRows, $0.failedAttempts, $0.batchSecondsSum) }
    }

    private let spool: Spool
    private let client: ClickHouseClient
    private let configuration: ClickHouseConfiguration
    private let blockingPool: NIOThreadPool
    private let logger: Logger
    private let figures = Mutex(Figures())
    private let gzip: Bool
    /// Visitors erased while this process runs: their records are never shipped, even from a batch built before.
    let erased: ErasedVisitors
    /// Set by an erasure: the batch built before it is built again (without the erased records).
    private let rebuildPending = Atomic<Bool>(false)
    /// The visits written to the visits table (shared with the shipper a reload makes, so open visits go on).
    let ledger: SharedVisitLedger
    /// Which segments this shipper still has to take, and their removal once every sink has them (nil: the spool's
    /// sealed segments, removed when shipped).
    let sinks: SpoolSinks?

    public init(spool: Spool, client: ClickHouseClient, configuration: ClickHouseConfiguration, blockingPool: NIOThreadPool,
                erased: ErasedVisitors = ErasedVisitors(), ledger: SharedVisitLedger = SharedVisitLedger(), sinks: SpoolSinks? = nil,
                logger: Logger)
    {
        self.sinks = sinks
        self.erased = erased
        self.ledger = ledger
        self.spool = spool
        self.client = client
        self.configuration = configuration
        self.blockingPool = blockingPool
        self.logger = logger
        switch configuration.compression {
        case "gzip": gzip = true
        case "none": gzip = false
        default: gzip = !(ClickHouseEndpoint(configuration.endpoints[0])?.isLoopback ?? false)
        }
    }

    /// A batch ready to send: its segments and the encoded body, and the visit rows it changes.
    struct Batch {
        var segments: [Spool.Segment]
        var body: ByteBuffer
        var rows: Int
        var visits: VisitLedger.Batch
        var visitsBody: ByteBuffer
    }

    /// Ships until the task is cancelled.
    public func run() async {
        var backoff = Backoff(minimum: configuration.retryMin, maximum: configuration.retryMax)
        var schema: EventSchema?
        var failingSince: NIODeadline?
        var lastFailureLog: NIODeadline?
        var pending: Batch?
        var nextPrune = NIODeadline.now()
        while !Task.isCancelled {
            do {
                if schema == nil {
                    schema = try await SchemaManager(client: client, configuration: configuration).prepare(logger: logger)
                }
                guard let schema else { continue }
                if rebuildPending.exchange(false, ordering: .relaxed) { pending = nil }
                if let days = configuration.retentionDays, schema.dialect == .legacy, NIODeadline.now() >= nextPrune {
                    try await prune(schema, days: days)
                    nextPrune = NIODeadline.now() + .hours(6)
                }
                if pending == nil {
                    guard let segments = nextSegments() else {
                        try await Task.sleep(nanoseconds: UInt64(min(configuration.flushInterval.nanoseconds, 100_000_000)))
                        continue
                    }
                    pending = try await build(segments, schema: schema)
                }
                guard let batch = pending else { continue }
                let started = NIODeadline.now()
                if batch.rows > 0 {
                    try await client.insert(schema.insertQuery, rows: batch.body, gzip: gzip, logger: logger)
                }
                // After the events: a failure here sends both again (the events' repeat merges away by id).
                if !batch.visits.isEmpty {
                    try await client.insert(schema.insertVisitsQuery, rows: batch.visitsBody, gzip: gzip, logger: logger)
                }
                ledger.commit(batch.visits, logger: logger)
                let seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
                if let sinks {
                    try sinks.acknowledge(batch.segments, by: .clickHouse)
                } else {
                    for segment in batch.segments { try spool.remove(segment) }
                }
                pending = nil
                figures.withLock { figures in
                    figures.shippedRows += batch.rows
                    figures.shippedBatches += 1
                    figures.batchSecondsSum += seconds
                    figures.lastBatchSeconds = seconds
                    figures.lastBatchRows = batch.rows
                    figures.connected = true
                    figures.lastFailure = nil
                }
                if let since = failingSince {
                    logger.info("clickhouse: delivering again after \(Double((NIODeadline.now() - since).nanoseconds / 1_000_000) / 1000) s of failures")
                    failingSince = nil
                }
                backoff.reset()
            } catch is CancellationError {
                return
            } catch {
                figures.withLock { figures in
                    figures.failedAttempts += 1
                    figures.connected = false
                    figures.lastFailure = "\(error)"
                }
                let now = NIODeadline.now()
                if failingSince == nil {
                    failingSince = now
                    lastFailureLog = now
                    logger.warning("clickhouse: \(error); events stay in the spool and are retried")
                } else if let last = lastFailureLog, now - last >= .seconds(60) {
                    lastFailureLog = now
                    logger.warning("clickhouse: still failing: \(error)")
                }
                if error is Spool.SpoolError { logger.error("spool: \(error)") }
                do {
                    try await Task.sleep(nanoseconds: UInt64(backoff.next().nanoseconds))
                } catch {
                    return
                }
            }
        }
    }

    /// Drops the batch built before an erasure (its records are read again, without the erased ones).
    func invalidatePendingBatch() { rebuildPending.store(true, ordering: .relaxed) }

    /// Retention where ClickHouse has no TTL (before 20.1): deletes rows older than `days`, every six hours, with
    /// a mutation only when there is something to delete (a mutation rewrites the parts it touches).
    private func prune(_ schema: EventSchema, days: Int) async throws {
        let condition = "ts < now() - INTERVAL \(days) DAY"
        let old = try await client.query("SELECT count() FROM \(schema.qualifiedTable) WHERE \(condition)", logger: logger)
        guard let count = Int(old.trimmingCharacters(in: .whitespacesAndNewlines)), count > 0 else { return }
        _ = try await client.query(schema.deleteStatement(where: condition), logger: logger)
        logger.info("clickhouse: retention of \(days) days: deleting \(count) older row(s)")
    }

    /// The sealed segments of the next batch, or nil when it is not yet time: a batch goes when it reaches the
    /// row or byte limit, or when its oldest record waited the flush interval.
    private func nextSegments() -> [Spool.Segment]? {
        let sealed = sinks?.pending(for: .clickHouse) ?? spool.sealedSegments
        guard let first = sealed.first else { return nil }
        var chosen: [Spool.Segment] = []
        var rows = 0
        var bytes = 0
        for segment in sealed {
            if !chosen.isEmpty && (rows + segment.records > configuration.batchRows || bytes + segment.bytes > configuration.batchBytes) {
                return chosen  // full
            }
            chosen.append(segment)
            rows += segment.records
            bytes += segment.bytes
        }
        let oldest = chosen.map(\.firstRecordMilliseconds).min() ?? first.firstRecordMilliseconds
        let waited = wallClockMilliseconds() - oldest
        if rows >= configuration.batchRows || bytes >= configuration.batchBytes
            || waited >= configuration.flushInterval.nanoseconds / 1_000_000
        {
            return chosen
        }
        return nil
    }

    /// Reads and encodes the segments on the blocking pool (files, transcoding and compression stay off the
    /// cooperative threads).
    private func build(_ segments: [Spool.Segment], schema: EventSchema) async throws -> Batch {
        let writer = RowBinaryWriter(dialect: schema.dialect)
        let gzip = self.gzip
        let (body, rows, invalid, visits, visitsBody) = try await blockingPool.runIfActive { [spool, logger, erased, ledger] in
            var body = ByteBufferAllocator().buffer(capacity: segments.reduce(0) { $0 + $1.bytes } + segments.count * 64)
            var rows = 0
            var invalid: [String] = []
            // Read, not changed: the batch's visits are committed once ClickHouse has them.
            let written = ledger.current
            var visits = VisitLedger.Batch()
            for segment in segments {
                try spool.forEachRecord(of: segment) { record in
                    if erased.matches(record) { return }
                    let mark = body.writerIndex
                    do {
                        // One read of the record for its row and for its visit.
                        let fields = try EventRecord.Fields(record: record)
                        writer.writeRow(fields, recordSize: record.count, into: &body)
                        written.add(fields, to: &visits)
                        rows += 1
                    } catch {
                        body.moveWriterIndex(to: mark)
                        invalid.append("\(segment.path): \(error)")
                    }
                }
            }
            if let first = invalid.first {
                logger.warning("spool: \(invalid.count) record(s) could not be read and are skipped, first: \(first)")
            }
            var visitsBody = written.encode(visits)
            if gzip, let compressed = Compressor.compress(body, coding: .gzip, level: 1) { body = compressed }
            if gzip, visitsBody.readableBytes > 0, let compressed = Compressor.compress(visitsBody, coding: .gzip, level: 1) {
                visitsBody = compressed
            }
            return (body, rows, invalid.count, visits, visitsBody)
        }
        if invalid > 0 { figures.withLock { $0.invalidRecords += invalid } }
        return Batch(segments: segments, body: body, rows: rows, visits: visits, visitsBody: visitsBody)
    }

    /// Appends the shipper's metrics in Prometheus text format.
    func render(into text: inout String) {
        let figures = self.figures.withLock { $0 }
        text += "# HELP vantage_events_shipped_total Events ClickHouse acknowledged.\n"
        text += "# TYPE vantage_events_shipped_total counter\nvantage_events_shipped_total \(figures.shippedRows)\n"
        text += "# TYPE vantage_clickhouse_batches_total counter\nvantage_clickhouse_batches_total \(figures.shippedBatches)\n"
        text += "# HELP vantage_clickhouse_failures_total Failed ClickHouse calls (each is retried).\n"
        text += "# TYPE vantage_clickhouse_failures_total counter\nvantage_clickhouse_failures_total \(figures.failedAttempts)\n"
        text += "# TYPE vantage_clickhouse_retries_total counter\nvantage_clickhouse_retries_total \(figures.failedAttempts)\n"
        text += "# TYPE vantage_events_invalid_total counter\nvantage_events_invalid_total \(figures.invalidRecords)\n"
        text += "# HELP vantage_clickhouse_batch_duration_seconds Time ClickHouse took to acknowledge a batch.\n"
        text += "# TYPE vantage_clickhouse_batch_duration_seconds summary\n"
        text += "vantage_clickhouse_batch_duration_seconds_sum \(figures.batchSecondsSum)\n"
        text += "vantage_clickhouse_batch_duration_seconds_count \(figures.shippedBatches)\n"
        text += "# TYPE vantage_clickhouse_last_batch_rows gauge\nvantage_clickhouse_last_batch_rows \(figures.lastBatchRows)\n"
        text += "# TYPE vantage_clickhouse_up gauge\nvantage_clickhouse_up \(figures.connected ? 1 : 0)\n"
        let ledger = ledger.figures
        text += "# HELP vantage_visits_open Visits the shipper keeps current in the visits table.\n"
        text += "# TYPE vantage_visits_open gauge\nvantage_visits_open \(ledger.open)\n"
        text += "# HELP vantage_visits_evicted_total Open visits let go because the ledger was full (one that goes on is written as a second visit).\n"
        text += "# TYPE vantage_visits_evicted_total counter\nvantage_visits_evicted_total \(ledger.evictions)\n"
    }
}

/// Exponential backoff with jitter: each wait is drawn from the upper half of a window that doubles per failure,
/// so many gateways that lost the same ClickHouse do not come back in step.
struct Backoff {
    let minimum: TimeAmount
    let maximum: TimeAmount
    private var window: TimeAmount

    init(minimum: TimeAmount, maximum: TimeAmount) {
        self.minimum = minimum
        self.maximum = maximum
        window = minimum
    }

    mutating func next() -> TimeAmount {
        let current = window
        window = .nanoseconds(min(maximum.nanoseconds, window.nanoseconds * 2))
        let half = current.nanoseconds / 2
        return .nanoseconds(half + Int64.random(in: 0...max(0, half)))
    }

    mutating func reset() { window = minimum }
}

/// Unix time in milliseconds.
func wallClockMilliseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
}
