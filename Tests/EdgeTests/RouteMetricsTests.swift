import Testing

@testable import Edge

@Suite struct RouteMetricsTests {
    @Test func slotsAddUpAndRenderAsPrometheusText() {
        let registry = RouteMetricsRegistry(loops: 2)
        let metrics = registry.metrics(site: "example.com", route: "/api/")
        #expect(registry.metrics(site: "example.com", route: "/api/") === metrics)  // kept across reloads
        metrics.record(loop: 0, status: .ok, nanoseconds: 500_000, sent: 100, received: 10)
        metrics.record(loop: 1, status: .notFound, nanoseconds: 30_000_000, sent: 20, received: 0)
        metrics.record(loop: 1, status: .ok, nanoseconds: 20_000_000_000, sent: 0, received: 0)
        var text = ""
        registry.render(into: &text)
        let labels = "site=\"example.com\",route=\"/api/\""
        #expect(text.contains("vantage_requests_total{\(labels),code=\"2xx\"} 2\n"))
        #expect(text.contains("vantage_requests_total{\(labels),code=\"4xx\"} 1\n"))
        #expect(text.contains("vantage_request_duration_seconds_bucket{\(labels),le=\"0.001\"} 1\n"))
        #expect(text.contains("vantage_request_duration_seconds_bucket{\(labels),le=\"0.05\"} 2\n"))
        #expect(text.contains("vantage_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} 3\n"))
        #expect(text.contains("vantage_request_duration_seconds_count{\(labels)} 3\n"))
        #expect(text.contains("vantage_response_bytes_total{\(labels)} 120\n"))
        #expect(text.contains("vantage_request_bytes_total{\(labels)} 10\n"))
    }

    @Test func labelsAreEscaped() {
        let registry = RouteMetricsRegistry(loops: 1)
        registry.metrics(site: "a\"b", route: "/x\\y").record(loop: 0, status: .ok, nanoseconds: 1000, sent: 1, received: 0)
        var text = ""
        registry.render(into: &text)
        #expect(text.contains("site=\"a\\\"b\",route=\"/x\\\\y\""))
    }

    @Test func aRouteNeverUsedHasNoSeries() {
        let registry = RouteMetricsRegistry(loops: 1)
        _ = registry.metrics(site: "s", route: "/quiet/")
        registry.metrics(site: "s", route: "/busy/").record(loop: 0, status: .notFound, nanoseconds: 1000, sent: 1, received: 0)
        var text = ""
        registry.render(into: &text)
        #expect(!text.contains("/quiet/"))
        #expect(text.contains("vantage_requests_total{site=\"s\",route=\"/busy/\",code=\"2xx\"} 0\n"), "a used route keeps every class")
        #expect(text.contains("vantage_requests_total{site=\"s\",route=\"/busy/\",code=\"4xx\"} 1\n"))
    }
}
