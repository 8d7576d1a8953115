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
    func dashboard(_ query: InsightsQuery, panels: [Dashboard.Panel] = Dashboard.panels(choosing: [:])) async throws -> Dashboard {
        if let clickHouse = clickHouseReports { return try await clickHouse.dashboard(query, panels: panels) }
        let spool = spoolFolder
        return try await threadPool.runIfActive { try SpoolInsights(directory: spool).dashboard(query, panels: panels) }
    }

    /// The short links, email opens and money of a site and period.
    func activity(_ query: InsightsQuery) async throws -> ActivityReport {
        if let clickHouse = clickHouseReports {
            return try await clickHouse.activity(site: query.site, range: query.range, includeBots: query.includeBots)
        }
        let spool = spoolFolder
        return try await threadPool.runIfActive { try SpoolInsights(directory: spool).activity(query) }
    }

    /// The site's short links that no longer redirect (expired, or out of clicks), as the dashboard lists them.
    func endedLinks(site: String, now: Int64) -> [(link: String, reason: String, clicks: Int)] {
        guard let links else { return [] }
        let hosts = siteHosts(named: site)
        var ended: [(link: String, reason: String, clicks: Int)] = []
        for (link, clicks) in links.index.snapshot() where hosts.isEmpty || hosts.contains(link.host) || link.host.isEmpty {
            if let expiry = link.expiresAt, now >= expiry {
                ended.append((link.host + "/" + link.slug, "expired \(ResultJSON.day(expiry))", clicks))
            } else if let limit = link.maxClicks, clicks >= limit {
                ended.append((link.host + "/" + link.slug, "reached its limit of \(limit) clicks", clicks))
            }
            if ended.count == 50 { break }
        }
        return ended.sorted { $0.link < $1.link }
    }

    private var clickHouseReports: ClickHouseInsights? {
        tracking?.clickHouse.map { ClickHouseInsights(client: $0.client, configuration: $0.configuration, logger: controlLogger) }
    }
}
