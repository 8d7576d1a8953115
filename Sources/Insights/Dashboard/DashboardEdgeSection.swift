extension DashboardPage {
    /// The edge's facts: every request of the period, not only page views.
    func edgeSection() -> String {
        let edge = dashboard.edge
        func counts(_ title: String, _ column: String, _ rows: [(key: String, count: Int)], id: String) -> String {
            let body = rows.isEmpty ? "<tr><td class=\"empty\" colspan=\"2\">None in this period.</td></tr>"
                : rows.map { "<tr><th scope=\"row\">\(escapeHTML($0.key))</th><td>\(ResultTable.format(Double($0.count), .events))</td></tr>" }.joined()
            return "<section aria-labelledby=\"\(id)\"><h3 id=\"\(id)\">\(title)</h3><table><caption class=\"hidden\">\(title)</caption><thead><tr><th scope=\"col\">\(column)</th><th scope=\"col\">Requests</th></tr></thead><tbody>\(body)</tbody></table></section>\n"
        }
        let upstreamRows = edge.upstreams.isEmpty ? "<tr><td class=\"empty\" colspan=\"4\">No proxied requests in this period.</td></tr>"
            : edge.upstreams.map { "<tr><th scope=\"row\">\(escapeHTML($0.upstream))</th><td>\(ResultTable.format(Double($0.requests), .events))</td><td>\($0.p50) ms</td><td>\($0.p95) ms</td></tr>" }.joined()
        return """
            <section class="edge" aria-labelledby="edge"><h2 id="edge">The edge</h2>
            <p>\(ResultTable.format(Double(edge.requests), .events)) requests answered for this site in the period (files, API calls and \
            proxied requests included), \(ResultTable.format(Double(edge.refused), .events)) refused before routing, \
            \(ResultTable.format(Double(edge.rateLimited), .events)) refused by a rate limit\(edge.rateLimitDryRun > 0 ? " (and \(ResultTable.format(Double(edge.rateLimitDryRun), .events)) a dry-run limit would have refused)" : "").</p>
            <div class="panels">
            \(counts("Answers by status", "Status", edge.statusClasses, id: "edge-status"))\
            \(counts("Machines by reason", "Reason", edge.machines, id: "edge-machines"))\
            \(counts("Most requested missing paths (404)", "Path", edge.notFound, id: "edge-404"))\
            \(counts("Paths answered with a server error (5xx)", "Path", edge.serverErrors, id: "edge-5xx"))\
            <section aria-labelledby="edge-upstreams"><h3 id="edge-upstreams">Upstream latency</h3><table><caption class="hidden">Upstream latency</caption><thead><tr><th scope="col">Upstream</th><th scope="col">Requests</th><th scope="col">Median</th><th scope="col">95th percentile</th></tr></thead><tbody>\(upstreamRows)</tbody></table></section>
            </div></section>

            """
    }
}
