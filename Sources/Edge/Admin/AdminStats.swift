import Foundation
import Insights
import NIOCore
import NIOHTTP1

extension Gateway {
    /// The stats API's answer to `parameters` (docs/INSIGHTS.md; JSON, or CSV with `format=csv`), or the same
    /// answer from the last ``ReportCache/lifetime``.
    func stats(_ parameters: [String: String]) async throws -> String {
        let query = try InsightsQuery.parse(parameters, defaultSite: defaultReportSite, now: Date())
        return try await reports.report("stats " + ReportCache.key(parameters)) {
            let result = try await self.evaluate(query)
            return parameters["format"] == "csv" ? ResultCSV.render(result) : ResultJSON.render(result) + "\n"
        }
    }
}

extension Gateway {
    /// The activity API's answer (short links, email opens, custom events, money): JSON, or one table as CSV
    /// with `format=csv&table=`.
    func activityAnswer(_ parameters: [String: String]) async throws -> String {
        let query = try InsightsQuery.parse(parameters, defaultSite: defaultReportSite, now: Date())
        var table: ActivityReport.Table?
        if parameters["format"] == "csv" {
            let name = parameters["table"] ?? ""
            guard let known = ActivityReport.Table(rawValue: name) else {
                throw InsightsQueryError(
                    parameter: "table",
                    problem: "unknown \(name); expected one of \(ActivityReport.Table.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            table = known
        }
        let chosen = table
        return try await reports.report("activity " + ReportCache.key(parameters)) {
            let report = try await self.activity(query)
            if let table = chosen { return ActivityRendering.csv(report, table: table) }
            return ActivityRendering.json(report, site: query.site, range: query.range) + "\n"
        }
    }
}

extension AdminHandler {
    /// A URI's query as names and values, percent-decoded (`+` is a space); a repeated name keeps its last value.
    static func queryParameters(_ uri: String) -> [String: String] {
        guard let question = uri.firstIndex(of: "?") else { return [:] }
        return formParameters(uri[uri.index(after: question)...])
    }

    /// `name=value&...` (a query string, or a form's `application/x-www-form-urlencoded` body) as names and values.
    static func formParameters(_ query: Substring) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            parameters[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return parameters
    }
}
