import Foundation

/// The JSON the API answers with: `{"site", "period": {"from", "to"}, "dimension", "results": [{<dimension>: key,
/// <metric>: value, ...}], "totals": {...}, "truncated"}` (ISO 8601 instants; integers where a metric is a count).
public enum ResultJSON {
    public static func render(_ result: InsightsResult) -> String {
        let query = result.query
        func number(_ value: Double?) -> Any {
            guard let value else { return NSNull() }
            return value == value.rounded() && abs(value) < 1e15 ? Int(value) as Any : value as Any
        }
        func metrics(_ values: [Double?]) -> [String: Any] {
            Dictionary(uniqueKeysWithValues: zip(query.metrics, values).map { ($0.rawValue, number($1)) })
        }
        var object: [String: Any] = [
            "site": query.site,
            "period": ["from": instant(query.range.start), "to": instant(query.range.end)],
            "totals": metrics(result.totals),
            "truncated": result.truncated,
        ]
        if let interval = query.interval {
            object["interval"] = interval.rawValue
            object["series"] = result.series.map { point in metrics(point.values).merging(["date": instant(point.start)]) { $1 } }
        }
        if let dimension = query.dimension {
            object["dimension"] = dimension.rawValue
            object["results"] = result.rows.map { row in metrics(row.values).merging([dimension.rawValue: row.key]) { $1 } }
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func instant(_ milliseconds: Int64) -> String {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(.iso8601)
    }

    /// The UTC day of an instant, `YYYY-MM-DD`.
    public static func day(_ milliseconds: Int64) -> String { String(instant(milliseconds).prefix(10)) }
}

/// The aligned text table `vantage stats` prints: the dimension's values down the left, the metrics across.
public enum ResultTable {
    public static func render(_ result: InsightsResult) -> String {
        let query = result.query
        guard query.dimension != nil else { return headline(result) }
        let header = [query.dimension?.title ?? ""] + query.metrics.map(\.label)
        var lines = result.rows.map { row in [row.key] + zip(query.metrics, row.values).map { format($1, $0) } }
        lines.append(["Total"] + zip(query.metrics, result.totals).map { format($1, $0) })
        let widths = header.indices.map { column in ([header] + lines).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + padding : padding + cell
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        var text = [line(header), String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))]
        text += lines.dropLast().map(line)
        text.append(String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)))
        text.append(line(lines.last!))
        if result.truncated { text.append("(more visits than the evaluator keeps: the later ones are not counted)") }
        return text.joined(separator: "\n") + "\n"
    }

    /// The totals alone, a metric a line.
    static func headline(_ result: InsightsResult) -> String {
        let labels = result.query.metrics.map(\.label)
        let values = zip(result.query.metrics, result.totals).map { format($1, $0) }
        let labelWidth = labels.map(\.count).max() ?? 0
        let valueWidth = values.map(\.count).max() ?? 0
        var lines = zip(labels, values).map { label, value in
            label + String(repeating: " ", count: labelWidth - label.count + 2 + valueWidth - value.count) + value
        }
        if result.truncated { lines.append("(more visits than the evaluator keeps: the later ones are not counted)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A metric as people read it: counts whole, rates in percent, durations in minutes and seconds.
    public static func format(_ value: Double?, _ metric: Metric) -> String {
        guard let value else { return "-" }
        switch metric {
        case .bounceRate: return "\(Int(value))%"
        case .visitDuration:
            let seconds = Int(value)
            return seconds >= 60 ? "\(seconds / 60)m \(seconds % 60)s" : "\(seconds)s"
        case .viewsPerVisit: return String(format: "%.2f", value)
        default: return Int(value).formatted(.number.grouping(.automatic))
        }
    }
}

/// A report as CSV (RFC 4180): the dimension's column, then the metrics'; no totals row (a spreadsheet sums).
public enum ResultCSV {
    public static func render(_ result: InsightsResult) -> String {
        let query = result.query
        func number(_ value: Double?) -> String {
            guard let value else { return "" }
            return value == value.rounded() ? String(Int(value)) : String(value)
        }
        var lines = [([query.dimension?.rawValue ?? "period"] + query.metrics.map(\.rawValue)).joined(separator: ",")]
        if query.dimension == nil {
            lines.append(([ResultJSON.instant(query.range.start) + "/" + ResultJSON.instant(query.range.end)] + result.totals.map(number)).joined(separator: ","))
        }
        for row in result.rows { lines.append(([field(row.key)] + row.values.map(number)).joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// A field, quoted when it holds a comma, a quote or a line break.
    static func field(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}
