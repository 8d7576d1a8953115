import Logging
import Synchronization

/// Reports answered in the last ``lifetime``, by their parameters: a dashboard left open refreshing (or ten of them)
/// costs one read of the spool per lifetime instead of one per refresh, and requests for a report being computed
/// wait for that one computation. Bounded: at most ``capacity`` reports are kept; past it, expired ones go, then the
/// oldest.
actor ReportCache {
    let lifetime: Duration
    let capacity: Int
    private var entries: [String: (computed: ContinuousClock.Instant, task: Task<String, any Error>)] = [:]
    /// Reports dropped to make room for others before they expired (the bound at work; `/metrics`).
    nonisolated let evictions = Atomic<Int>(0)
    private let logger: Logger

    /// A cache key for a request's parameters (in name order).
    nonisolated static func key(_ parameters: [String: String]) -> String {
        parameters.sorted { $0.key < $1.key }.map { $0.key + "=" + $0.value }.joined(separator: "&")
    }

    init(lifetime: Duration = .seconds(5), capacity: Int = 64, logger: Logger = Logger(label: "vantage.reports")) {
        self.lifetime = lifetime
        self.capacity = capacity
        self.logger = logger
    }

    /// The report for `key`: a fresh one from the cache, else `compute`'s (a failure is not kept).
    func report(_ key: String, compute: @escaping @Sendable () async throws -> String) async throws -> String {
        let now = ContinuousClock.now
        if let entry = entries[key], now - entry.computed < lifetime { return try await entry.task.value }
        if entries.count >= capacity {
            entries = entries.filter { now - $0.value.computed < lifetime }
            if entries.count >= capacity, let oldest = entries.min(by: { $0.value.computed < $1.value.computed }) {
                entries[oldest.key] = nil
                if evictions.add(1, ordering: .relaxed).newValue == 1 {
                    logger.notice(
                        "reports: more than \(capacity) different reports within \(lifetime): the oldest are computed again (vantage_reports_evicted_total)")
                }
            }
        }
        let task = Task { try await compute() }
        entries[key] = (now, task)
        do {
            return try await task.value
        } catch {
            entries[key] = nil
            throw error
        }
    }
}
