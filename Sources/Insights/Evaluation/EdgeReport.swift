import Tracking

/// What no analytics tool shows and the edge knows: every request a site answered (page views, files, API calls,
/// proxied requests, refusals), by status class; the paths most often answered 404 and 5xx; the upstreams' latency
/// (median and 95th percentile); requests refused before routing; machines by reason.
public struct EdgeReport: Sendable {
    public var requests = 0
    /// `2xx`, `3xx`, `4xx`, `5xx` (and `1xx`), with their counts, largest first.
    public var statusClasses: [(key: String, count: Int)] = []
    public var notFound: [(key: String, count: Int)] = []
    public var serverErrors: [(key: String, count: Int)] = []
    /// Per upstream: proxied requests and their latency in milliseconds.
    public var upstreams: [(upstream: String, requests: Int, p50: Double, p95: Double)] = []
    /// Requests refused before routing (malformed, ambiguous, too slow).
    public var refused = 0
    /// Requests a route's rate limit refused (429), and those it would have refused in dry-run mode.
    public var rateLimited = 0
    public var rateLimitDryRun = 0
    /// Requests from machines, by reason.
    public var machines: [(key: String, count: Int)] = []
    public var truncated = false

    /// Counts in a report's order (largest first, then by key), at most `limit`.
    static func largest(_ counts: [(key: String, count: Int)], limit: Int = 10) -> [(key: String, count: Int)] {
        Array(counts.sorted { $0.count != $1.count ? $0.count > $1.count : $0.key < $1.key }.prefix(limit))
    }
}

/// Gathers an ``EdgeReport`` from events read one by one. Bounded: at most ``maximumKeys`` distinct paths per table
/// and ``samplesPerUpstream`` latencies per upstream (a reservoir: a fair sample once there are more).
public struct EdgeAggregator {
    public let site: String
    public let range: TimeRange
    static let maximumKeys = 100_000
    static let samplesPerUpstream = 20_000
    static let maximumUpstreams = 1000
    /// The `etyp` of requests a rate limit refused, and of those a dry-run limit let through.
    static let rateLimitedType = "rate_limited"
    static let rateLimitDryRunType = "rate_limited_dry_run"

    private var requests = 0
    private var refused = 0
    private var rateLimited = 0
    private var rateLimitDryRun = 0
    private var statusClasses: [String: Int] = [:]
    private var notFound: [String: Int] = [:]
    private var serverErrors: [String: Int] = [:]
    private var machines: [String: Int] = [:]
    private var upstreamCounts: [String: Int] = [:]
    private var latencies: [String: [Double]] = [:]
    private var random = SystemRandomNumberGenerator()
    private var truncated = false

    public init(site: String, range: TimeRange) {
        self.site = site
        self.range = range
    }

    /// Whether an event at `milliseconds` can count (any kind).
    public func wants(_ kind: TrackingEvent.Kind, at milliseconds: Int64) -> Bool { range.contains(milliseconds) }

    public mutating func add(_ event: TrackingEvent) {
        // A refusal before routing belongs to no site yet ("-"): it counts for every site's report.
        guard range.contains(event.timeMilliseconds), event.site == site || event.kind == .refused else { return }
        requests += 1
        if event.kind == .refused { refused += 1 }
        if event.eventType == Self.rateLimitedType { rateLimited += 1 }
        if event.eventType == Self.rateLimitDryRunType { rateLimitDryRun += 1 }
        statusClasses["\(event.status / 100)xx", default: 0] += 1
        if event.status == 404 { Self.count(Dimension.path(of: event.target), in: &notFound, full: &truncated) }
        if event.status >= 500 { Self.count(Dimension.path(of: event.target), in: &serverErrors, full: &truncated) }
        if !event.botReason.isEmpty { Self.count(event.botReason, in: &machines, full: &truncated) }
        if !event.upstream.isEmpty {
            guard upstreamCounts[event.upstream] != nil || upstreamCounts.count < Self.maximumUpstreams else {
                truncated = true
                return
            }
            let seen = upstreamCounts[event.upstream, default: 0] + 1
            upstreamCounts[event.upstream] = seen
            let milliseconds = Double(event.upstreamMicroseconds) / 1000
            if seen <= Self.samplesPerUpstream {
                latencies[event.upstream, default: []].append(milliseconds)
            } else {
                let slot = Int.random(in: 0..<seen, using: &random)
                if slot < Self.samplesPerUpstream { latencies[event.upstream]![slot] = milliseconds }
            }
        }
    }

    /// Counts `key` in `table`, unless the table is full with other keys (then `full` is set).
    private static func count(_ key: String, in table: inout [String: Int], full: inout Bool) {
        guard table[key] != nil || table.count < maximumKeys else {
            full = true
            return
        }
        table[key, default: 0] += 1
    }

    public func report(limit: Int = 10) -> EdgeReport {
        func top(_ table: [String: Int]) -> [(key: String, count: Int)] {
            EdgeReport.largest(table.map { (key: $0.key, count: $0.value) }, limit: limit)
        }
        /// The nearest-rank percentile of sorted values.
        func percentile(_ sorted: [Double], _ share: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Int((share * Double(sorted.count)).rounded(.up))
            return sorted[min(sorted.count, max(1, rank)) - 1]
        }
        var report = EdgeReport()
        report.requests = requests
        report.refused = refused
        report.rateLimited = rateLimited
        report.rateLimitDryRun = rateLimitDryRun
        report.statusClasses = top(statusClasses)
        report.notFound = top(notFound)
        report.serverErrors = top(serverErrors)
        report.machines = top(machines)
        report.upstreams = upstreamCounts.sorted { $0.value > $1.value }.prefix(limit).map { upstream, count in
            let sorted = (latencies[upstream] ?? []).sorted()
            return (upstream, count, (percentile(sorted, 0.5) * 10).rounded() / 10, (percentile(sorted, 0.95) * 10).rounded() / 10)
        }
        report.truncated = truncated
        return report
    }
}
