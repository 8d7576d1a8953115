import Insights
import Logging
import Tracking

/// Where the dashboard and the stats API read: ClickHouse when the tracking pipeline ships there (shipped events
/// leave the spool), else the spool folder on the blocking pool (a report is control-plane work and never runs on a
/// loop that serves traffic).
extension Gateway {
    /// The answer to `query`.
    func evaluate(_ query: InsightsQuery) async throws -> InsightsResult {
        if let clickHouse = clickHouseReports { return try await clickHouse.evaluate(query) }
        let spool = spoolFolder
        return try await threadPool.runIfActive { try SpoolInsights(directory: spool).evaluate(query) }
    }

    /// The dashboard of `query`.
    func dashboard(_ query: InsightsQuery) async throws -> Dashboard {
        if let clickHouse = clickHouseReports { return try await clickHouse.dashboard(query) }
        let spool = spoolFolder
        return try await threadPool.runIfActive { try SpoolInsights(directory: spool).dashboard(query) }
    }

    private var clickHouseReports: ClickHouseInsights? {
        tracking?.clickHouse.map { ClickHouseInsights(client: $0.client, configuration: $0.configuration, logger: controlLogger) }
    }
}
