import Foundation

/// Why a query's parameters cannot be answered: the parameter and what was expected of it.
public struct InsightsQueryError: Error, CustomStringConvertible, Equatable {
    public var parameter: String
    public var problem: String
    public var description: String { "\(parameter): \(problem)" }

    public init(parameter: String, problem: String) {
        self.parameter = parameter
        self.problem = problem
    }
}

extension InsightsQuery {
    /// The periods a report can cover (UTC days).
    public static let periods = ["today", "yesterday", "7d", "30d", "90d", "month", "custom"]

    /// A query from the parameters the API, the dashboard's URLs and `vantage stats` share (Plausible's names):
    /// `site`, `period` (today, yesterday, 7d, 30d, 90d, month, custom with `from` and `to` as YYYY-MM-DD),
    /// `filters` (`page==/blog|/docs;country!=FR;source~google`), `dimension`, `metrics` (comma-separated),
    /// `bots` (`include`), `limit`, `interval` (a time series: hour, day, week, month). `defaultSite` answers when no
    /// `site` is given.
    public static func parse(_ parameters: [String: String], defaultSite: String?, now: Date) throws(InsightsQueryError) -> InsightsQuery {
        guard let site = parameters["site"] ?? defaultSite, !site.isEmpty else {
            throw InsightsQueryError(parameter: "site", problem: "expected the name of a configured site")
        }
        let range = try timeRange(
            period: parameters["period"] ?? "30d", from: parameters["from"], to: parameters["to"], now: now)
        var dimension: Dimension?
        if let name = parameters["dimension"], !name.isEmpty {
            guard let known = Dimension(rawValue: name) else {
                throw InsightsQueryError(
                    parameter: "dimension", problem: "unknown \(name); expected one of \(Dimension.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            dimension = known
        }
        var metrics = dimension == nil ? Metric.headline : [.visitors, .visits, .pageviews, .bounceRate, .visitDuration]
        if dimension == .event { metrics = [.visitors, .events] }
        if let list = parameters["metrics"], !list.isEmpty {
            metrics = try list.split(separator: ",").map { name throws(InsightsQueryError) -> Metric in
                guard let metric = Metric(rawValue: String(name)) else {
                    throw InsightsQueryError(
                        parameter: "metrics", problem: "unknown \(name); expected some of \(Metric.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return metric
            }
        }
        var limit = 100
        if let text = parameters["limit"] {
            guard let value = Int(text), (1...10_000).contains(value) else {
                throw InsightsQueryError(parameter: "limit", problem: "expected a number from 1 to 10000, got \(text)")
            }
            limit = value
        }
        var interval: Interval?
        if let name = parameters["interval"], !name.isEmpty {
            guard let known = Interval(rawValue: name) else {
                throw InsightsQueryError(parameter: "interval", problem: "expected hour, day, week or month, got \(name)")
            }
            interval = known
        }
        let bots = parameters["bots"] ?? "exclude"
        guard bots == "exclude" || bots == "include" else {
            throw InsightsQueryError(parameter: "bots", problem: "expected include or exclude, got \(bots)")
        }
        return InsightsQuery(
            site: site, range: range, filters: try filters(parameters["filters"] ?? ""), dimension: dimension, metrics: metrics,
            includeBots: bots == "include", limit: limit, interval: interval)
    }

    /// `page==/blog|/docs;country!=FR;source~google`: conditions separated by `;`, alternatives by `|`.
    static func filters(_ text: String) throws(InsightsQueryError) -> [Filter] {
        try text.split(separator: ";").map { condition throws(InsightsQueryError) -> Filter in
            // The first operator in the condition splits it (a value may hold another).
            let found = [Filter.Operation.isNot, .is, .contains].compactMap { operation in
                condition.range(of: operation.rawValue).map { (operation, $0) }
            }.min { $0.1.lowerBound < $1.1.lowerBound }
            if let (operation, range) = found {
                let name = String(condition[..<range.lowerBound])
                guard let dimension = Dimension(rawValue: name) else {
                    throw InsightsQueryError(parameter: "filters", problem: "unknown dimension \(name) in \(condition)")
                }
                let values = condition[range.upperBound...].split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                return Filter(dimension, operation, values)
            }
            throw InsightsQueryError(parameter: "filters", problem: "expected dimension==value, != or ~ in \(condition)")
        }
    }

    /// The span a period names, in whole UTC days; `to` is inclusive.
    public static func timeRange(period: String, from: String?, to: String?, now: Date) throws(InsightsQueryError) -> TimeRange {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let today = calendar.startOfDay(for: now)
        let tomorrow = calendar.date(byAdding: .day, value: 1, to: today)!
        func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        func days(_ count: Int) -> TimeRange {
            TimeRange(start: milliseconds(calendar.date(byAdding: .day, value: 1 - count, to: today)!), end: milliseconds(tomorrow))
        }
        switch period {
        case "today": return days(1)
        case "yesterday": return TimeRange(start: milliseconds(calendar.date(byAdding: .day, value: -1, to: today)!), end: milliseconds(today))
        case "7d": return days(7)
        case "30d": return days(30)
        case "90d": return days(90)
        case "month":
            let start = calendar.date(from: calendar.dateComponents([.year, .month], from: today))!
            return TimeRange(start: milliseconds(start), end: milliseconds(tomorrow))
        case "custom":
            func day(_ text: String?, _ name: String) throws(InsightsQueryError) -> Date {
                let parts = (text ?? "").split(separator: "-").compactMap { Int($0) }
                guard parts.count == 3, let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])) else {
                    throw InsightsQueryError(parameter: name, problem: "expected a day as YYYY-MM-DD, got \(text ?? "nothing")")
                }
                return date
            }
            let start = try day(from, "from")
            let last = try day(to, "to")
            guard last >= start else { throw InsightsQueryError(parameter: "to", problem: "expected a day on or after from") }
            return TimeRange(start: milliseconds(start), end: milliseconds(calendar.date(byAdding: .day, value: 1, to: last)!))
        default:
            throw InsightsQueryError(parameter: "period", problem: "unknown \(period); expected one of \(periods.joined(separator: ", "))")
        }
    }
}
