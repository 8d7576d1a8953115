import CoreMetrics
import Foundation
import Metrics
import NIOHTTP1
import Synchronization
import Tracking

/// Request metrics of one route: requests by status class, a latency histogram, bytes in and out.
///
/// Each event loop writes its own slot, so recording a request takes no lock and no contended atomic; a scrape sums
/// the slots. swift-metrics handles cost about 7% of a small request in profiles (shared atomics plus a lock per
/// histogram observation), which is why the per-request metrics are kept here and rendered in Prometheus text by
/// ``RouteMetricsRegistry``; everything else goes through swift-metrics.
final class RouteMetrics: Sendable {
    /// Upper bounds of the latency buckets, in nanoseconds (1 ms to 10 s), then +Inf.
    static let bucketBounds: [Int] = [
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000, 500_000_000,
        1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]
    static let bucketLabels = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
                               "5", "10", "+Inf"]
    // Counter layout in a slot.
    static let sentIndex = 5, receivedIndex = 6, sumIndex = 7, firstBucketIndex = 8
    static let slotSize = firstBucketIndex + bucketBounds.count + 1

    let site: String
    let route: String
    /// One slot per event loop, each `slotSize` counters.
    private let slots: [[SingleWriterCounter]]

    init(site: String, route: String, loops: Int) {
        self.site = site
        self.route = route
        slots = (0..<max(1, loops)).map { _ in (0..<Self.slotSize).map { _ in SingleWriterCounter() } }
    }

    /// Records one request; call only from the event loop with index `loop`.
    @inline(__always)
    func record(loop: Int, status: HTTPResponseStatus, nanoseconds: Int, sent: Int, received: Int) {
        let slot = slots[loop]
        slot[min(max(Int(status.code) / 100 - 1, 0), 4)].add(1)
        if sent > 0 { slot[Self.sentIndex].add(sent) }
        if received > 0 { slot[Self.receivedIndex].add(received) }
        slot[Self.sumIndex].add(nanoseconds)
        var bucket = 0
        while bucket < Self.bucketBounds.count && nanoseconds > Self.bucketBounds[bucket] { bucket += 1 }
        slot[Self.firstBucketIndex + bucket].add(1)
    }

    /// The sum over all loops of counter `index`.
    func total(_ index: Int) -> Int {
        slots.reduce(0) { $0 + $1[index].value }
    }
}

/// Keeps one ``RouteMetrics`` per (site, route) across reloads, so counters do not restart when the configuration
/// does, and renders them in the Prometheus text format.
final class RouteMetricsRegistry: Sendable {
    private let loops: Int
    private let entries = Mutex<[String: RouteMetrics]>([:])

    init(loops: Int) {
        self.loops = loops
    }

    /// The metrics for a route, created on first use.
    func metrics(site: String, route: String) -> RouteMetrics {
        entries.withLock { entries in
            let key = site + "\u{0}" + route
            if let existing = entries[key] { return existing }
            let created = RouteMetrics(site: site, route: route, loops: loops)
            entries[key] = created
            return created
        }
    }

    /// Appends the request metrics in Prometheus text format: routes that never answered a request have no series
    /// (a configuration with many routes does not fill Prometheus with zeros); a route that has answered keeps all
    /// its status classes, so `rate()` sees a class's first request.
    func render(into text: inout String) {
        let all = entries.withLock { Array($0.values) }.sorted { ($0.site, $0.route) < ($1.site, $1.route) }
            .filter { metrics in (0..<5).contains { metrics.total($0) > 0 } }
        func labels(_ metrics: RouteMetrics) -> String {
            "site=\"\(escapeLabel(metrics.site))\",route=\"\(escapeLabel(metrics.route))\""
        }
        text += "# HELP vantage_requests_total Requests answered, by site, route and status class.\n"
        text += "# TYPE vantage_requests_total counter\n"
        for metrics in all {
            for (index, code) in ["1xx", "2xx", "3xx", "4xx", "5xx"].enumerated() {
                text += "vantage_requests_total{\(labels(metrics)),code=\"\(code)\"} \(metrics.total(index))\n"
            }
        }
        text += "# HELP vantage_request_duration_seconds Time from request head to the end of the response.\n"
        text += "# TYPE vantage_request_duration_seconds histogram\n"
        for metrics in all {
            var cumulative = 0
            for (offset, bound) in RouteMetrics.bucketLabels.enumerated() {
                cumulative += metrics.total(RouteMetrics.firstBucketIndex + offset)
                text += "vantage_request_duration_seconds_bucket{\(labels(metrics)),le=\"\(bound)\"} \(cumulative)\n"
            }
            let seconds = Double(metrics.total(RouteMetrics.sumIndex)) / 1e9
            text += "vantage_request_duration_seconds_sum{\(labels(metrics))} \(seconds)\n"
            text += "vantage_request_duration_seconds_count{\(labels(metrics))} \(cumulative)\n"
        }
        text += "# TYPE vantage_response_bytes_total counter\n"
        for metrics in all {
            text += "vantage_response_bytes_total{\(labels(metrics))} \(metrics.total(RouteMetrics.sentIndex))\n"
        }
        text += "# TYPE vantage_request_bytes_total counter\n"
        for metrics in all {
            text += "vantage_request_bytes_total{\(labels(metrics))} \(metrics.total(RouteMetrics.receivedIndex))\n"
        }
    }

    private func escapeLabel(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// Process-wide metric handles.
struct GatewayMetrics: Sendable {
    let openConnections = Meter(label: "vantage_open_connections")
    let acceptedConnections = Counter(label: "vantage_connections_total")
    /// Closed at once, over the hard ceiling.
    let refusedConnections = Counter(label: "vantage_connections_refused_total")
    /// Served one 503, over `limits.max_connections`.
    let overCapacityConnections = Counter(label: "vantage_connections_over_capacity_total")
    let tlsHandshakes = Counter(label: "vantage_tls_handshakes_total")
    let tlsHandshakeFailures = Counter(label: "vantage_tls_handshake_failures_total")
    let accessLogDropped = Counter(label: "vantage_access_log_dropped_bytes_total")
    /// Request bodies refused for stalling or trickling (`limits.body_timeout`, `body_min_rate`).
    let bodyTimeouts = Counter(label: "vantage_request_timeouts_total", dimensions: [("kind", "body")])
    /// Responses cut off because the client read nothing for `limits.send_timeout`.
    let sendTimeouts = Counter(label: "vantage_request_timeouts_total", dimensions: [("kind", "send")])
    let reloads = Counter(label: "vantage_config_reloads_total", dimensions: [("result", "success")])
    let failedReloads = Counter(label: "vantage_config_reloads_total", dimensions: [("result", "failure")])
    /// Requests refused, by ``Refusal/Kind``.
    private let refusals: [Refusal.Kind: Counter] = Dictionary(uniqueKeysWithValues: Refusal.Kind.allCases.map { kind in
        (kind, Counter(label: "vantage_refusals_total", dimensions: [("kind", kind.rawValue)]))
    })

    func counted(_ refusal: Refusal) { refusals[refusal.kind]?.increment() }

    static let shared = GatewayMetrics()
}
