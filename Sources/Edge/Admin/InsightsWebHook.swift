import Synchronization

/// How a site's `insights` route reaches the reports' pages: the gateway attaches itself once it is made (the route
/// table is built before it), weakly, so the gateway and its core do not hold each other.
final class InsightsWebHook: Sendable {
    private struct Reference {
        weak var gateway: Gateway?
    }

    private let reference = Mutex(Reference())

    func attach(_ gateway: Gateway) { reference.withLock { $0.gateway = gateway } }

    /// The answer to `request`; nil when it is not one of the reports' pages (or the gateway is gone).
    func answer(_ request: InsightsWebRequest) async -> WebAnswer? {
        guard let gateway = reference.withLock({ $0.gateway }) else { return nil }
        return await gateway.insightsWeb(request)
    }
}

/// How a site's `health` route reaches the gateway's verdict (attached like ``InsightsWebHook``).
final class HealthHook: Sendable {
    private struct Reference {
        weak var gateway: Gateway?
    }

    private let reference = Mutex(Reference())

    func attach(_ gateway: Gateway) { reference.withLock { $0.gateway = gateway } }

    /// The verdict now; nil when the gateway is gone (shutting down).
    func verdict() -> HealthVerdict? { reference.withLock { $0.gateway }?.healthVerdict }

    /// The older tracker's `/metrics` JSON; nil without tracking or once the gateway is gone.
    func trackerMetrics() -> String? {
        guard let gateway = reference.withLock({ $0.gateway }) else { return nil }
        return gateway.tracking?.trackerMetricsJSON(uptimeSeconds: gateway.uptimeSeconds)
    }
}
