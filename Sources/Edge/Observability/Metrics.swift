import CoreMetrics
import Metrics
import NIOHTTP1

/// Metric handles of one route, created once per configuration load so the request path only increments.
final class RouteMetrics: Sendable {
    /// Requests by status class: index 0 for 1xx through 4 for 5xx.
    let requests: [Counter]
    let duration: Metrics.Timer
    let bytesSent: Counter
    let bytesReceived: Counter

    init(site: String, route: String) {
        let dimensions = [("site", site), ("route", route)]
        requests = ["1xx", "2xx", "3xx", "4xx", "5xx"].map { code in
            Counter(label: "vantage_requests_total", dimensions: dimensions + [("code", code)])
        }
        duration = Metrics.Timer(label: "vantage_request_duration_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        bytesSent = Counter(label: "vantage_response_bytes_total", dimensions: dimensions)
        bytesReceived = Counter(label: "vantage_request_bytes_total", dimensions: dimensions)
    }

    @inline(__always)
    func record(status: HTTPResponseStatus, nanoseconds: Int64, sent: Int, received: Int) {
        let classIndex = min(max(Int(status.code) / 100 - 1, 0), 4)
        requests[classIndex].increment()
        duration.recordNanoseconds(nanoseconds)
        if sent > 0 { bytesSent.increment(by: sent) }
        if received > 0 { bytesReceived.increment(by: received) }
    }
}

/// Process-wide metric handles.
struct GatewayMetrics: Sendable {
    let openConnections = Meter(label: "vantage_open_connections")
    let acceptedConnections = Counter(label: "vantage_connections_total")
    let refusedConnections = Counter(label: "vantage_connections_refused_total")
    let tlsHandshakes = Counter(label: "vantage_tls_handshakes_total")
    let tlsHandshakeFailures = Counter(label: "vantage_tls_handshake_failures_total")
    /// Requests that matched no site or route, or were refused before routing (bad requests).
    let unroutedRequests = [
        "1xx", "2xx", "3xx", "4xx", "5xx",
    ].map { Counter(label: "vantage_requests_total", dimensions: [("site", "-"), ("route", "-"), ("code", $0)]) }
    let accessLogDropped = Counter(label: "vantage_access_log_dropped_bytes_total")
    let reloads = Counter(label: "vantage_config_reloads_total", dimensions: [("result", "success")])
    let failedReloads = Counter(label: "vantage_config_reloads_total", dimensions: [("result", "failure")])

    static let shared = GatewayMetrics()
}
