import Foundation

extension ActivityReport.Table {
    /// The columns a table shows: (header, value of a row), the key first.
    var columns: [(name: String, title: String, value: (ActivityReport.Row) -> String)] {
        func count(_ value: Int) -> String { String(value) }
        let key: (name: String, title: String, value: (ActivityReport.Row) -> String) = ("key", keyTitle, { $0.key })
        switch self {
        case .links:
            return [key, ("clicks", "Clicks", { count($0.count) }), ("visitors", "Visitors", { count($0.people) }),
                    ("machines", "Machines", { count($0.machines) }), ("previews", "Previews", { count($0.previews) })]
        case .linkReferrers, .linkCountries:
            return [key, ("clicks", "Clicks", { count($0.count) }), ("visitors", "Visitors", { count($0.people) })]
        case .pixels:
            return [key, ("opens", "Opens", { count($0.count) }), ("readers", "Readers", { count($0.people) }),
                    ("machine_opens", "Machine opens", { count($0.machines) })]
        case .events, .eventTypes:
            return [key, ("events", "Events", { count($0.count) }), ("visitors", "Visitors", { count($0.people) })]
        case .revenue:
            return [key, ("payments", "Payments", { count($0.count) }), ("payers", "Payers", { count($0.people) }),
                    ("amount", "Amount", { String(format: "%.2f", $0.amount) })]
        }
    }
}

/// The activity report as the API answers it: JSON (`{"site", "period", "tables": {"links": [{"key", "clicks",
/// ...}]}, "truncated"}`) or one table as CSV.
public enum ActivityRendering {
    public static func json(_ report: ActivityReport, site: String, range: TimeRange) -> String {
        var tables: [String: Any] = [:]
        for table in ActivityReport.Table.allCases {
            tables[table.rawValue] = report[table].map { row -> [String: Any] in
                var object: [String: Any] = [:]
                for column in table.columns {
                    let text = column.value(row)
                    object[column.name] = column.name == "key" ? text : (Int(text) as Any?) ?? (Double(text) ?? 0)
                }
                return object
            }
        }
        let object: [String: Any] = [
            "site": site, "period": ["from": ResultJSON.instant(range.start), "to": ResultJSON.instant(range.end)],
            "tables": tables, "truncated": report.truncated,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    public static func csv(_ report: ActivityReport, table: ActivityReport.Table) -> String {
        var lines = [table.columns.map { $0.name == "key" ? table.keyTitle.lowercased() : $0.name }.joined(separator: ",")]
        for row in report[table] { lines.append(table.columns.map { ResultCSV.field($0.value(row)) }.joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
