import Foundation

/// The dashboard as one HTML page, rendered on the server: no script, no external asset but the stylesheet it is
/// served with (`/assets/insights.css`, so the policy can forbid inline styles), inline SVG for the chart. Every
/// choice (site, period, a row to filter by, machines in or out) is a link or a GET form, so the URL holds the whole
/// state: it can be shared, bookmarked and gone back to, and the page works in a text browser.
public struct DashboardPage {
    public var dashboard: Dashboard
    /// Every configured site's name, for the site menu.
    public var sites: [String]
    /// The page's own parameters (site, period, from, to, filters, bots), kept by every link.
    public var parameters: [String: String]
    /// Where the page and the API are mounted (`/` and `/api/v1/stats` on the admin listener).
    public var basePath: String
    /// Whether a sign-out link makes sense (a token is configured).
    public var signsIn: Bool
    /// Short links of the site that no longer redirect: the link, why (expired, click limit), its clicks.
    public var endedLinks: [(link: String, reason: String, clicks: Int)] = []

    public init(dashboard: Dashboard, sites: [String], parameters: [String: String], basePath: String = "/", signsIn: Bool = true) {
        self.signsIn = signsIn
        self.dashboard = dashboard
        self.sites = sites
        self.parameters = parameters
        self.basePath = basePath
    }

    static let periods = [("today", "Today"), ("yesterday", "Yesterday"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("month", "This month")]
    static let kept = ["site", "period", "from", "to", "filters", "bots", "versions"] + Dashboard.cards.map(\.parameter)

    var query: InsightsQuery { dashboard.current.query }

    /// A link to this page with `changes` applied to its parameters (nil removes one).
    func link(_ changes: [String: String?]) -> String {
        var values = parameters.filter { Self.kept.contains($0.key) }
        for (name, value) in changes { values[name] = value }
        return basePath + Self.queryString(values)
    }

    static func queryString(_ values: [String: String]) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~/"))
        let pairs = values.sorted { $0.key < $1.key }.map { name, value in
            name + "=" + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
        }
        return pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&")
    }

    public var html: String {
        var page = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escapeHTML(query.site)) · Vantage insights</title>
            <link rel="stylesheet" href="\(basePath)assets/insights.css">
            </head>
            <body>
            <header>
            <p class="brand">Vantage <span>insights</span></p>

            """
        page += siteMenu() + viewsMenu() + periodMenu() + filterBar()
        page += "</header>\n<main>\n"
        page += headline() + chart()
        page += "<div class=\"panels\">\n" + zip(Dashboard.cards, dashboard.panels).map(card).joined() + "</div>\n"
        page += activitySection()
        page += edgeSection()
        page += "</main>\n<footer><p>Metrics as defined in docs/INSIGHTS.md. \(dashboard.current.truncated ? "More visits than the dashboard keeps were in range: the later ones are not counted. " : "")\(signsIn ? "<a href=\"\(basePath)logout\">Sign out</a>" : "")</p></footer>\n</body>\n</html>\n"
        return page
    }

    func siteMenu() -> String {
        guard sites.count > 1 else { return "<h1>\(escapeHTML(query.site))</h1>\n" }
        let items = sites.map { site in
            site == query.site ? "<li><a aria-current=\"page\" href=\"\(escapeHTML(link(["site": site])))\">\(escapeHTML(site))</a></li>"
                : "<li><a href=\"\(escapeHTML(link(["site": site, "filters": nil])))\">\(escapeHTML(site))</a></li>"
        }
        return "<h1>\(escapeHTML(query.site))</h1>\n<nav aria-label=\"Sites\"><ul>\(items.joined())</ul></nav>\n"
    }

    /// The dashboard and the live view.
    func viewsMenu() -> String {
        let live = basePath + "live" + Self.queryString(["site": query.site])
        return "<nav aria-label=\"Views\"><ul><li><a aria-current=\"page\" href=\"\(escapeHTML(link([:])))\">Dashboard</a></li><li><a href=\"\(escapeHTML(live))\">Live</a></li></ul></nav>\n"
    }

    func periodMenu() -> String {
        let current = parameters["period"] ?? "30d"
        let items = Self.periods.map { period, label in
            let attributes = period == current ? " aria-current=\"page\"" : ""
            return "<li><a\(attributes) href=\"\(escapeHTML(link(["period": period, "from": nil, "to": nil])))\">\(label)</a></li>"
        }
        let from = escapeHTML(parameters["from"] ?? ""), to = escapeHTML(parameters["to"] ?? "")
        var hidden = ""
        for name in ["site", "filters", "bots"] {
            if let value = parameters[name] { hidden += "<input type=\"hidden\" name=\"\(name)\" value=\"\(escapeHTML(value))\">" }
        }
        return """
            <nav aria-label="Period"><ul>\(items.joined())</ul></nav>
            <form class="custom" method="get" action="\(basePath)"><input type="hidden" name="period" value="custom">\(hidden)\
            <label>From <input type="date" name="from" value="\(from)" required></label> \
            <label>to <input type="date" name="to" value="\(to)" required></label> <button>Show</button></form>

            """
    }

    func filterBar() -> String {
        var items = query.filters.enumerated().map { index, filter -> String in
            let remaining = query.filters.enumerated().filter { $0.offset != index }.map { Self.text($0.element) }
            let without = link(["filters": remaining.isEmpty ? nil : remaining.joined(separator: ";")])
            let operation = filter.operation == .is ? "is" : filter.operation == .isNot ? "is not" : "contains"
            return "<li>\(escapeHTML(filter.dimension.rawValue.replacingOccurrences(of: "_", with: " "))) \(operation) <strong>\(escapeHTML(filter.values.joined(separator: " or ")))</strong> <a href=\"\(escapeHTML(without))\" aria-label=\"Remove this filter\">×</a></li>"
        }
        let bots = query.includeBots
            ? "<a href=\"\(escapeHTML(link(["bots": nil])))\">Leave machines out</a>"
            : "<a href=\"\(escapeHTML(link(["bots": "include"])))\">Count machines too</a>"
        items.append("<li class=\"bots\">\(query.includeBots ? "Machines counted. " : "")\(bots)</li>")
        return "<nav aria-label=\"Filters\"><ul class=\"filters\">\(items.joined())</ul></nav>\n"
    }

    static func text(_ filter: Filter) -> String {
        filter.dimension.rawValue + filter.operation.rawValue + filter.values.joined(separator: "|")
    }

    func headline() -> String {
        let current = dashboard.current, previous = dashboard.previous
        let items = Metric.headline.map { metric -> String in
            let value = current.total(metric), before = previous.total(metric)
            var change = ""
            if let value, let before, before > 0 {
                let percent = Int(((value - before) / before * 100).rounded())
                // Fewer bounces and longer visits are the good news; the arrow only says which way it went.
                change = "<span class=\"change\">\(percent > 0 ? "▲" : percent < 0 ? "▼" : "=") \(abs(percent))%<span class=\"hidden\"> compared with the previous period</span></span>"
            }
            return "<div><dt>\(metric.label)</dt><dd>\(ResultTable.format(value, metric)) \(change)</dd></div>"
        }
        return "<section aria-labelledby=\"headline\"><h2 id=\"headline\" class=\"hidden\">Summary</h2><dl class=\"headline\">\(items.joined())</dl></section>\n"
    }

    func chart() -> String {
        let series = dashboard.current.series
        guard !series.isEmpty, let visitorsIndex = dashboard.current.query.metrics.firstIndex(of: .visitors) else { return "" }
        let values = series.map { $0.values[visitorsIndex] ?? 0 }
        let top = max(1, values.max() ?? 1)
        let width = 800.0, height = 180.0, gap = series.count > 60 ? 0.0 : 2.0
        let step = width / Double(series.count)
        let interval = dashboard.current.query.interval ?? .day
        var bars = ""
        for (index, point) in series.enumerated() {
            let barHeight = (values[index] / top * (height - 20)).rounded()
            bars += "<rect x=\"\(format(Double(index) * step + gap / 2))\" y=\"\(format(height - barHeight))\" width=\"\(format(max(1, step - gap)))\" height=\"\(format(barHeight))\"><title>\(label(point.start, interval)): \(Int(values[index])) visitors</title></rect>"
        }
        let first = label(series.first!.start, interval), last = label(series.last!.start, interval)
        let rows = zip(series, values).map { point, value in "<tr><th scope=\"row\">\(label(point.start, interval))</th><td>\(Int(value))</td></tr>" }
        return """
            <section aria-labelledby="over-time"><h2 id="over-time">Visitors over time</h2>
            <svg class="chart" viewBox="0 0 \(Int(width)) \(Int(height + 20))" role="img" aria-labelledby="chart-title">\
            <title id="chart-title">Visitors by \(interval.rawValue), \(first) to \(last); at most \(Int(top))</title>\
            <text x="0" y="12" class="axis">\(Int(top))</text>\(bars)\
            <text x="0" y="\(Int(height + 16))" class="axis">\(first)</text>\
            <text x="\(Int(width))" y="\(Int(height + 16))" class="axis end">\(last)</text></svg>
            <details><summary>As a table</summary><table><caption>Visitors by \(interval.rawValue)</caption><thead><tr><th scope="col">\(interval.rawValue.capitalized)</th><th scope="col">Visitors</th></tr></thead><tbody>\(rows.joined())</tbody></table></details>
            </section>

            """
    }

    /// A card: its title, its tabs (links that choose one, keeping the rest of the page's state) and the chosen
    /// tab's table.
    func card(_ card: Dashboard.Card, _ result: InsightsResult) -> String {
        guard let dimension = result.query.dimension else { return "" }
        let id = "card-" + card.parameter
        var tabs = ""
        if card.tabs.count > 1 {
            let items = card.tabs.enumerated().map { index, tab -> String in
                let shown = tab.dimension == dimension || (tab.dimension == .browser && dimension == .browserVersion)
                    || (tab.dimension == .os && dimension == .osVersion)
                let target = link([card.parameter: index == 0 ? nil : tab.dimension.rawValue])
                return "<li><a\(shown ? " aria-current=\"true\"" : "") href=\"\(escapeHTML(target))\">\(tab.title)</a></li>"
            }
            tabs = "<nav class=\"tabs\" aria-label=\"\(card.title): what to show\"><ul>\(items.joined())</ul></nav>\n"
        }
        return """
            <section aria-labelledby="\(id)"><h2 id="\(id)">\(card.title)</h2>
            \(tabs)\(panel(result, title: Dashboard.title(of: dimension)))</section>

            """
    }

    /// A panel's table (each row a link that filters by it) and its CSV link.
    func panel(_ result: InsightsResult, title: String) -> String {
        guard let dimension = result.query.dimension else { return "" }
        let metrics = result.query.metrics
        let first = result.rows.first.flatMap { $0.values.first ?? nil } ?? 0
        let id = dimension.rawValue.replacingOccurrences(of: "_", with: "-")
        var rows = ""
        for row in result.rows {
            let share = first > 0 ? Int(((row.values.first ?? 0) ?? 0) / first * 20) * 5 : 0
            let filters = (query.filters.filter { $0.dimension != dimension }.map(Self.text) + [Self.text(Filter(dimension, .is, [row.key]))]).joined(separator: ";")
            let cells = zip(metrics, row.values).map { "<td>\(ResultTable.format($1, $0))</td>" }.joined()
            rows += "<tr><th scope=\"row\"><a class=\"bar w\(share)\" href=\"\(escapeHTML(link(["filters": filters])))\">\(escapeHTML(row.key))</a></th>\(cells)</tr>"
        }
        if result.rows.isEmpty { rows = "<tr><td class=\"empty\" colspan=\"\(metrics.count + 1)\">Nothing in this period.</td></tr>" }
        var csv = parameters.filter { Self.kept.contains($0.key) }
        csv["dimension"] = dimension.rawValue
        csv["metrics"] = metrics.map(\.rawValue).joined(separator: ",")
        csv["format"] = "csv"
        csv["limit"] = "10000"
        let header = metrics.map { "<th scope=\"col\">\($0.label)</th>" }.joined()
        return """
            <table id="\(id)"><caption>\(title)<span class="hidden">, \(escapeHTML(query.site))</span></caption><thead><tr><th scope="col">\(dimension.title)</th>\(header)</tr></thead><tbody>\(rows)</tbody></table>
            <p class="download">\(versionsLink(dimension))<a href="\(escapeHTML(basePath + "api/v1/stats" + Self.queryString(csv)))" download="\(id).csv">CSV</a></p>
            """
    }

    /// For browsers and systems: a link that shows (or hides) their versions.
    func versionsLink(_ dimension: Dimension) -> String {
        var shown = Set((parameters["versions"] ?? "").split(separator: ",").map(String.init))
        let name: String
        switch dimension {
        case .browser, .browserVersion: name = "browser"
        case .os, .osVersion: name = "os"
        default: return ""
        }
        let showing = shown.contains(name)
        if showing { shown.remove(name) } else { shown.insert(name) }
        let target = link(["versions": shown.isEmpty ? nil : shown.sorted().joined(separator: ",")])
        return "<a href=\"\(escapeHTML(target))\">\(showing ? "Hide versions" : "Show versions")</a> · "
    }

    func label(_ milliseconds: Int64, _ interval: Interval) -> String {
        let text = ResultJSON.instant(milliseconds)
        return interval == .hour ? String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") : String(text.prefix(10))
    }

    func format(_ value: Double) -> String { String(format: "%.1f", value) }
}

/// Text made safe inside HTML elements and quoted attributes.
public func escapeHTML(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.append(character)
        }
    }
    return escaped
}
