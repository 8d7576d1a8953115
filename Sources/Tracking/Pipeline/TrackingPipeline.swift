import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The tracking pipeline of a running gateway: the spool, one ``EventRecorder`` per event loop, the per-loop
/// timers that seal aged segments and sync written ones, and the ClickHouse shipper when one is configured.
///
/// ```swift
/// let pipeline = try TrackingPipeline(configuration: tracking, loops: loops, blockingPool: pool, logger: logger)
/// pipeline.start()                       // timers and shipper
/// pipeline.recorder(forLoop: 0)?.record(event, nowMilliseconds: now)
/// await pipeline.shutdown()              // after the loops stopped serving
/// ```
public final class TrackingPipeline: Sendable {
    /// The settings in force (a reload replaces the parts it may change; see ``stageReload(to:)``).
    public var configuration: TrackingConfiguration { current.withLock { $0 } }
    private let current: Mutex<TrackingConfiguration>
    public let spool: Spool
    private let loops: [any EventLoop]
    private let recorders: [EventRecorder]
    private let enrichers: [Enricher]
    public let enrichment: EnrichmentContext
    private let blockingPool: NIOThreadPool
    private let erased: ErasedVisitors
    /// The visits the shipper keeps current in ClickHouse (shared by the shippers a reload makes, saved at shutdown).
    private let visitLedger: SharedVisitLedger
    /// The tracking API (mounted on the sites when `tracking.api` enables it) and the compatibility profiles.
    public let api: TrackingAPI?
    /// Where events go (ClickHouse, or the spool only); a reload may replace it.
    private let sink: EventSink
    /// `tracking.nats`: every event published to NATS too, independently of ClickHouse.
    private let natsSink: NATSSink?
    private let sinks: SpoolSinks
    private let logger: Logger
    private let timers = Mutex<[RepeatedTask]>([])
    private let stateFiles: VisitorStateFiles
    private let stateWarned = Atomic<Bool>(false)

    /// Opens the spool (recovering what an earlier run left) and prepares a recorder per loop. Throws when the
    /// spool folder cannot be used, before anything listens.
    public init(configuration: TrackingConfiguration, loops: [any EventLoop], blockingPool: NIOThreadPool, logger: Logger) throws {
        current = Mutex(configuration)
        self.loops = loops
        self.logger = logger
        self.blockingPool = blockingPool
        let geoIP = try GeoIPSource(path: configuration.geoIPPath, keepCoordinates: configuration.geoIPCoordinates, logger: logger)
        let spool = try Spool(configuration: configuration.spool, appenders: loops.count, logger: logger)
        self.spool = spool
        if spool.recovery.segments > 0 {
            logger.info(
                "spool: \(spool.recovery.records) event(s) in \(spool.recovery.segments) segment(s) from an earlier run will be shipped")
        }
        // The visitor state lives beside the spool, which this process now holds.
        let stateFiles = VisitorStateFiles(directory: configuration.spool.directory)
        self.stateFiles = stateFiles
        var visitors = configuration.visitors
        visitors.enrich = configuration.enrichment
        let now = wallClockMilliseconds()
        let enrichment = EnrichmentContext(
            visitors: visitors, clientAddressPolicy: configuration.clientAddressPolicy, geoIP: geoIP,
            keys: stateFiles.loadKeys(today: now / 86_400_000),
            userAgentRules: configuration.enrichment ? try Self.loadUserAgentRules(configuration, logger: logger) : nil,
            logger: logger)
        self.enrichment = enrichment
        let restored = enrichment.sessions.restore(
            stateFiles.takeSessions(limit: enrichment.sessions.capacity), now: UInt32(clamping: now / 1000))
        if restored > 0 { logger.info("tracking: \(restored) open session(s) from before the restart go on") }
        // Today's keys exist (and are on disk) before the first request.
        _ = enrichment.keyring.keys(day: now / 86_400_000)
        enrichers = loops.map { _ in Enricher(context: enrichment) }
        let dropLog = DropLog(logger: logger)
        recorders = loops.map { _ in
            EventRecorder(spool: spool, sealAfter: configuration.sealAfter, dropLog: dropLog, scrubber: configuration.queryScrubber)
        }
        let erased = ErasedVisitors()
        self.erased = erased
        let ledger = SharedVisitLedger(
            capacity: configuration.visitors.maxSessions,
            timeoutMilliseconds: Int64(configuration.visitors.sessionTimeoutSeconds) * 1000)
        let visitsGoingOn = ledger.restore(stateFiles.takeVisits(limit: 1 << 30), now: now)
        if visitsGoingOn > 0 { logger.info("tracking: \(visitsGoingOn) open visit(s) from before the restart go on") }
        self.visitLedger = ledger
        // With NATS, ClickHouse and NATS each take every segment (a segment goes once both have it).
        let sinks = SpoolSinks(spool: spool, clickHouse: configuration.clickHouse != nil, nats: configuration.nats != nil, logger: logger)
        self.sinks = sinks
        let sink = EventSink(clickHouse: configuration.clickHouse, group: loops[0], logger: logger) { clickHouse, client in
            Shipper(
                spool: spool, client: client, configuration: clickHouse, blockingPool: blockingPool, erased: erased,
                ledger: ledger, sinks: sinks, logger: logger)
        }
        natsSink = configuration.nats.map {
            NATSSink(configuration: $0, spool: spool, sinks: sinks, erased: erased, group: loops[0], blockingPool: blockingPool, logger: logger)
        }
        self.sink = sink
        // Made even when `tracking.api` is off: the sites' compatibility profiles (`compat:`) answer through it.
        let history = SpoolConsentHistory(spoolDirectory: configuration.spool.directory, pool: blockingPool, logger: logger) {
            try await sink.query($0)
        }
        api = TrackingAPI(
            configuration: configuration.api, enrichment: enrichment, consentHistory: history,
            scrubber: configuration.queryScrubber, logger: logger)
        saveKeysIfChanged()
    }

    /// The recorder of the loop at `index`; use it only on that loop.
    public func recorder(forLoop index: Int) -> EventRecorder { recorders[index] }

    /// The enricher of the loop at `index`; use it only on that loop.
    public func enricher(forLoop index: Int) -> Enricher { enrichers[index] }

    /// The user-agent lists: the configured files (an unusable one is a configuration error), or the default paths
    /// when the install step put the files there (the built-in rules otherwise, said once in the log).
    static func loadUserAgentRules(_ configuration: TrackingConfiguration, logger: Logger) throws -> UserAgentRules? {
        let regexes = configuration.userAgentRegexesPath ?? UserAgentRules.defaultRegexesPath
        let crawlers = configuration.userAgentCrawlersPath ?? UserAgentRules.defaultCrawlersPath
        let configured = configuration.userAgentRegexesPath != nil || configuration.userAgentCrawlersPath != nil
        if !configured {
            let missing = [regexes, crawlers].filter { !FileManager.default.isReadableFile(atPath: $0) }
            guard missing.isEmpty else {
                logger.notice(
                    "tracking: no user-agent lists at \(missing.joined(separator: " and ")) (scripts/install-deps.sh installs them); using the built-in rules")
                return nil
            }
        }
        let started = ContinuousClock.now
        let rules = try UserAgentRules(regexesPath: regexes, crawlersPath: crawlers)
        logger.info("tracking: user agents by \(rules.summary) (compiled in \(ContinuousClock.now - started))")
        return rules
    }

    /// Starts the per-loop timers and the shipper.
    public func start() {
        let configuration = self.configuration
        let interval = configuration.spool.batchInterval
        var timers: [RepeatedTask] = []
        for (index, loop) in loops.enumerated() {
            let recorder = recorders[index]
            let spool = self.spool
            timers.append(loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                recorder.tick(nowMilliseconds: wallClockMilliseconds(), shipping: sink.isShipping || natsSink != nil)
                if index == 0 {
                    spool.syncActive()
                    spool.checkOwnership()
                }
            })
        }
        // Checking the GeoIP file's modification time and saving rotated visitor keys are syscalls: off the loop,
        // on the blocking pool.
        let pool = blockingPool
        let geoIP = enrichment.geoIP
        timers.append(loops[0].scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { [self] _ in
            pool.submit { _ in
                geoIP.reloadIfChanged()
                self.saveKeysIfChanged()
            }
        })
        self.timers.withLock { $0 = timers }
        sink.start()
        natsSink?.start()
        if configuration.clickHouse == nil {
            logger.info("tracking: no ClickHouse configured; events stay in \(configuration.spool.directory) (see `vantage events`)")
        }
    }

    // MARK: - Reload

    /// A reload's tracking settings, checked and with any new GeoIP file open, ready for ``commitReload(_:)``.
    public struct StagedReload: Sendable {
        let configuration: TrackingConfiguration
        let geoIPDatabase: GeoIPDatabase?
    }

    /// Checks that `new` can be applied while running and opens what it names (blocking: off the loops). Throws,
    /// changing nothing, when a key that needs a restart changed (naming it) or the new GeoIP file cannot be read.
    public func stageReload(to new: TrackingConfiguration) throws -> StagedReload {
        let changed = configuration.restartOnlyChanges(to: new)
        guard changed.isEmpty else { throw RestartNeeded(keys: changed) }
        return StagedReload(configuration: new, geoIPDatabase: try enrichment.geoIP.open(forReloadTo: new.geoIPPath))
    }

    /// Applies a staged reload: visitor, privacy and address settings on every loop, the GeoIP database, and a new
    /// ClickHouse sink when `tracking.clickhouse` changed (the old shipper finishes or abandons its batch first;
    /// queued events stay in the spool and go to the new one).
    public func commitReload(_ staged: StagedReload) {
        let new = staged.configuration
        let old = current.withLock { old in
            defer { old = new }
            return old
        }
        var settings = new.visitors
        settings.enrich = new.enrichment
        let visitors = settings
        enrichment.update(visitors: visitors, clientAddressPolicy: new.clientAddressPolicy)
        for (index, loop) in loops.enumerated() {
            let enricher = enrichers[index], recorder = recorders[index], policy = new.clientAddressPolicy
            let scrubber = new.queryScrubber
            loop.execute {
                enricher.apply(visitors: visitors, clientAddressPolicy: policy)
                recorder.scrubber = scrubber
            }
        }
        api?.scrubber = new.queryScrubber
        enrichment.geoIP.install(path: new.geoIPPath, keepCoordinates: new.geoIPCoordinates, opened: staged.geoIPDatabase)
        if old.clickHouse != new.clickHouse {
            sinks.setClickHouse(new.clickHouse != nil)
            sink.replace(with: new.clickHouse)
        }
    }

    /// A reload changed keys that a running process cannot apply.
    public struct RestartNeeded: Error, CustomStringConvertible {
        public var keys: [String]

        public init(keys: [String]) { self.keys = keys }

        public var description: String {
            "\(keys.joined(separator: ", ")) changed: \(keys.count == 1 ? "it takes" : "they take") effect only at a restart, "
                + "so the reload is refused (restart Vantage to apply it, or put the old value back)"
        }
    }

    /// Seals every loop's segment and closes the spool. Call once requests stopped, while the loops still run.
    public func shutdown() async {
        for timer in timers.withLock({ $0 }) { timer.cancel() }
        for (index, loop) in loops.enumerated() {
            let recorder = recorders[index]
            try? await loop.submit { recorder.close() }.get()
        }
        await sink.stop()
        await natsSink?.stop()
        saveVisitorState()
        saveVisits()
        spool.close()
    }

    // MARK: - Visitor state

    /// Saves the visits the shipper keeps current, when there is a ClickHouse to keep them in.
    private func saveVisits() {
        guard configuration.clickHouse != nil else { return }
        do {
            try stateFiles.saveVisits(visitLedger.saved())
        } catch {
            logger.warning("tracking: \(error); visits open now are counted again if they go on after the restart")
        }
    }

    /// Writes the visitor keys when they rotated since last saved (blocking: off the loops).
    private func saveKeysIfChanged() {
        guard let keys = enrichment.keyring.takeUnsaved() else { return }
        do {
            try stateFiles.saveKeys(keys)
        } catch {
            if !stateWarned.exchange(true, ordering: .relaxed) {
                logger.warning("tracking: \(error); a restart today will count returning visitors again")
            }
        }
    }

    /// Saves the keys and the open sessions, so the next start goes on with them (at shutdown, before the spool's
    /// lock is released).
    private func saveVisitorState() {
        saveKeysIfChanged()
        let open = enrichment.sessions.openSessions(now: UInt32(clamping: wallClockMilliseconds() / 1000))
        do {
            try stateFiles.saveSessions(open)
            if !open.isEmpty { logger.info("tracking: \(open.count) open session(s) saved for the next start") }
        } catch {
            logger.warning("tracking: \(error); open sessions start anew after the restart")
        }
    }

    /// The ClickHouse sink in use (its client and settings), if any: reports read from it.
    public var clickHouse: (client: ClickHouseClient, configuration: ClickHouseConfiguration)? { sink.clickHouse }

    /// Runs a read query against the ClickHouse sink (`{table}` is replaced by the events table); nil without one.
    public func query(_ sql: String) async throws -> String? {
        try await sink.query(sql)
    }

    // MARK: - Erasure

    /// Removes a visitor's events from the spool: every loop seals its open segment, then the sealed segments are
    /// rewritten without them on the spool's thread; the shipper skips them from now on, even in a batch it built
    /// before. Returns how many events were removed. (`vantage erase` then deletes what ClickHouse already has.)
    public func erase(visitorID: String) async throws -> Int {
        erased.insert(visitorID)
        sink.shipper?.invalidatePendingBatch()
        for (index, loop) in loops.enumerated() {
            let recorder = recorders[index]
            try await loop.submit { recorder.sealNow() }.get()
        }
        let spool = self.spool
        let target = Array(visitorID.utf8)
        let removed = try await spool.afterPendingSeals {
            try spool.eraseRecords { record in EventRecord.visitorID(of: record).elementsEqual(target) }
        }
        logger.notice("erased visitor \(visitorID): \(removed) event(s) removed from the spool")
        return removed
    }

    // MARK: - Figures

    /// The older tracker's `/metrics` JSON (`compat: [tracker]`), in its shape so `jq '.batching.enabled'` and its
    /// dashboards keep working: the batching figures are the ClickHouse shipper's, the rest the spool's.
    public func trackerMetricsJSON(uptimeSeconds: Double) -> String {
        let shipper = sink.shipper
        let (batches, rows, failures, seconds) = shipper?.batchFigures ?? (0, 0, 0, 0)
        let queued = recorders.reduce(0) { $0 + $1.pending.value } + spool.sealedRecords
        let uptime = max(uptimeSeconds, 0.001)
        let object: [String: Any] = [
            "metrics": ["events_recorded": recordedEvents, "events_dropped": droppedEvents, "events_queued": queued],
            "batching": [
                "enabled": shipper != nil, "total_batches": batches, "total_items": rows, "failed_batches": failures,
                "avg_batch_size": batches == 0 ? 0 : rows / batches,
                "avg_flush_latency_ms": batches == 0 ? 0 : Int(seconds / Double(batches) * 1000),
                "queued_items": queued, "memory_usage_mb": 0,
            ],
            "calculated": [
                "uptime_seconds": Int(uptime), "events_per_second": Double(recordedEvents) / uptime,
                "error_rate": batches + failures == 0 ? 0 : Double(failures) / Double(batches + failures),
                "batch_success_rate": batches + failures == 0 ? 1 : Double(batches) / Double(batches + failures),
                "avg_items_per_batch": batches == 0 ? 0 : rows / batches,
            ],
            "timestamp": ISO8601DateFormatter().string(from: Date()),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Events recorded since start, over all loops.
    public var recordedEvents: Int { recorders.reduce(0) { $0 + $1.recorded.value } }

    /// Events dropped since start because the spool was full or failed.
    public var droppedEvents: Int {
        recorders.reduce(0) { $0 + $1.droppedFull.value + $1.droppedError.value + $1.droppedLost.value }
    }

    /// Appends the pipeline's metrics in Prometheus text format.
    public func renderMetrics(into text: inout String) {
        let full = recorders.reduce(0) { $0 + $1.droppedFull.value }
        let failed = recorders.reduce(0) { $0 + $1.droppedError.value }
        let lost = recorders.reduce(0) { $0 + $1.droppedLost.value }
        let pending = recorders.reduce(0) { $0 + $1.pending.value }
        text += "# HELP vantage_events_recorded_total Events written to the spool.\n"
        text += "# TYPE vantage_events_recorded_total counter\nvantage_events_recorded_total \(recordedEvents)\n"
        text += "# HELP vantage_events_dropped_total Events lost because the spool was full or could not be written.\n"
        text += "# TYPE vantage_events_dropped_total counter\n"
        text += "vantage_events_dropped_total{reason=\"spool_full\"} \(full)\n"
        text += "vantage_events_dropped_total{reason=\"spool_error\"} \(failed)\n"
        text += "vantage_events_dropped_total{reason=\"spool_lost\"} \(lost)\n"
        text += "# HELP vantage_events_queued Events in the spool not yet shipped (open and sealed segments).\n"
        text += "# TYPE vantage_events_queued gauge\nvantage_events_queued \(pending + spool.sealedRecords)\n"
        text += "# TYPE vantage_spool_bytes gauge\nvantage_spool_bytes \(spool.usedBytes)\n"
        text += "# TYPE vantage_spool_quota_bytes gauge\nvantage_spool_quota_bytes \(spool.configuration.quota)\n"
        text += "# TYPE vantage_spool_segments gauge\nvantage_spool_segments \(spool.sealedSegments.count)\n"
        let oldest = spool.oldestSealedMilliseconds.map { Double(max(0, wallClockMilliseconds() - $0)) / 1000 } ?? 0
        text += "# HELP vantage_events_oldest_unshipped_seconds Age of the oldest sealed, unshipped segment.\n"
        text += "# TYPE vantage_events_oldest_unshipped_seconds gauge\nvantage_events_oldest_unshipped_seconds \(oldest)\n"
        let hits = enrichers.reduce(0) { $0 + $1.userAgentCacheHits }
        let misses = enrichers.reduce(0) { $0 + $1.userAgentCacheMisses }
        text += "# HELP vantage_useragent_cache_lookups_total User-agent classifications by cache outcome.\n"
        text += "# TYPE vantage_useragent_cache_lookups_total counter\n"
        text += "vantage_useragent_cache_lookups_total{result=\"hit\"} \(hits)\n"
        text += "vantage_useragent_cache_lookups_total{result=\"miss\"} \(misses)\n"
        text += "# HELP vantage_sessions_capacity Visitors the session table holds at most (tracking.visitors.max_sessions).\n"
        text += "# TYPE vantage_sessions_capacity gauge\nvantage_sessions_capacity \(enrichment.sessions.capacity)\n"
        text += "# HELP vantage_sessions_evicted_total Visitors evicted from a full session table before their session ended.\n"
        text += "# TYPE vantage_sessions_evicted_total counter\nvantage_sessions_evicted_total \(enrichment.sessions.evictions)\n"
        api?.renderMetrics(into: &text)
        natsSink?.render(into: &text)
        if let shipper = sink.shipper {
            shipper.render(into: &text)
        } else {
            text += "# TYPE vantage_events_shipped_total counter\nvantage_events_shipped_total 0\n"
        }
    }

    /// A summary for `/health`.
    /// What `/health` weighs of tracking.
    public struct HealthFacts: Sendable {
        /// Whether events go to ClickHouse.
        public var clickHouseConfigured: Bool
        /// Why the last ClickHouse call failed, while that is the latest word.
        public var clickHouseFailure: String?
        /// Age of the oldest sealed segment not yet shipped (0 when none waits).
        public var backlogSeconds: Double
        /// The spool folder is no longer this process's.
        public var spoolProblem: String?
    }

    public var healthFacts: HealthFacts {
        HealthFacts(
            clickHouseConfigured: configuration.clickHouse != nil, clickHouseFailure: sink.clickHouseFailure,
            backlogSeconds: configuration.clickHouse == nil
                ? 0 : spool.oldestSealedMilliseconds.map { Double(max(0, wallClockMilliseconds() - $0)) / 1000 } ?? 0,
            spoolProblem: spool.ownershipProblem)
    }

    public var healthReport: [String: any Sendable] {
        var report: [String: any Sendable] = [
            "recorded": recordedEvents, "dropped": droppedEvents, "spool_bytes": spool.usedBytes,
            "queued_segments": spool.sealedSegments.count, "clickhouse": configuration.clickHouse?.endpoints ?? [],
            "spool": spool.isOwned ? "ok" : "lost",
        ]
        if let problem = spool.ownershipProblem { report["spool_error"] = problem }
        return report
    }
}
