extension DashboardPage {
    /// Short links, email opens, custom events and money: what visits do not show.
    func activitySection() -> String {
        let activity = dashboard.activity
        func table(_ table: ActivityReport.Table) -> String {
            let columns = table.columns
            let id = "activity-" + table.rawValue.replacingOccurrences(of: "_", with: "-")
            let header = columns.map { "<th scope=\"col\">\(escapeHTML($0.title))</th>" }.joined()
            var body = activity[table].map { row in
                "<tr><th scope=\"row\">\(escapeHTML(row.key))</th>"
                    + columns.dropFirst().map { "<td>\(escapeHTML($0.value(row)))</td>" }.joined() + "</tr>"
            }.joined()
            if body.isEmpty { body = "<tr><td class=\"empty\" colspan=\"\(columns.count)\">None in this period.</td></tr>" }
            var csv = parameters.filter { Self.kept.contains($0.key) && $0.key != "filters" }
            (csv["table"], csv["format"]) = (table.rawValue, "csv")
            return """
                <section aria-labelledby="\(id)"><h3 id="\(id)">\(table.title)</h3><table><caption class="hidden">\(table.title), \(escapeHTML(query.site))</caption><thead><tr>\(header)</tr></thead><tbody>\(body)</tbody></table>
                <p class="download"><a href="\(escapeHTML(basePath + "api/v1/activity" + Self.queryString(csv)))" download="\(table.rawValue).csv">CSV</a></p></section>

                """
        }
        var ended = ""
        if !endedLinks.isEmpty {
            let rows = endedLinks.map {
                "<tr><th scope=\"row\">\(escapeHTML($0.link))</th><td>\(escapeHTML($0.reason))</td><td>\($0.clicks)</td></tr>"
            }.joined()
            ended = """
                <section aria-labelledby="activity-ended"><h3 id="activity-ended">Links past their limit or expiry</h3><table><caption class="hidden">Links that no longer redirect</caption><thead><tr><th scope="col">Link</th><th scope="col">Why</th><th scope="col">Clicks</th></tr></thead><tbody>\(rows)</tbody></table></section>

                """
        }
        return """
            <section class="activity" aria-labelledby="activity"><h2 id="activity">Links, emails and money</h2>
            <p>Clicks, opens and payments in the period\(query.filters.isEmpty ? "" : " (the filters above apply to visits, not here)"); \
            machines (link previews, mail proxies, crawlers) are counted apart.</p>
            <div class="panels">
            \(table(.links))\(ended)\(table(.linkReferrers))\(table(.linkCountries))\(table(.pixels))\(table(.eventTypes))\(table(.revenue))\
            </div></section>

            """
    }
}
