import Foundation
import Insights
import NIOCore
import NIOHTTP1
import Tracking

extension Gateway {
    /// The dashboard page for `parameters`, mounted at `basePath` (or the same page from the last
    /// ``ReportCache/lifetime``). A share link's page (`sharedSite`) shows that site only, with no sign-out.
    func dashboardPage(_ parameters: [String: String], basePath: String = "/", sharedSite: String? = nil) async throws -> String {
        var asked = parameters
        if let sharedSite { asked["site"] = sharedSite }
        let parameters = asked
        let sites = sharedSite.map { [$0] } ?? siteNames
        let query = try InsightsQuery.parse(parameters, defaultSite: defaultReportSite, now: Date())
        let signsIn = adminToken != nil && sharedSite == nil
        return try await reports.report("page \(basePath) " + ReportCache.key(parameters)) {
            let dashboard = try await self.dashboard(query, panels: Dashboard.panels(choosing: parameters))
            var page = DashboardPage(dashboard: dashboard, sites: sites, parameters: parameters, basePath: basePath, signsIn: signsIn)
            page.endedLinks = self.endedLinks(site: query.site, now: Int64(Date().timeIntervalSince1970 * 1000))
            return page.html
        }
    }
}

extension AdminHandler {
    /// Whether an admin API call may go on: no token configured, or the bearer token (a signed-in browser reads
    /// reports, `InsightsWeb.swift`, and changes nothing).
    func isAuthorized(_ head: HTTPRequestHead) -> Bool {
        guard let token = endpoints.gateway.adminToken else { return true }
        return Signatures.equal(head.headers.first(name: "authorization") ?? "", "Bearer " + token)
    }
}
