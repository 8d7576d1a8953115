/// The answer to an ``InsightsQuery``: rows by its dimension (none without one) and the totals, each with the
/// query's metrics in its order.
public struct InsightsResult: Sendable {
    public struct Row: Sendable, Equatable {
        /// The dimension's value.
        public var key: String
        /// The query's metrics, in order (nil: the metric means nothing for this row).
        public var values: [Double?]
    }

    /// One step of the time series: its start (Unix milliseconds) and the metrics of the visits that started in it.
    public struct Point: Sendable, Equatable {
        public var start: Int64
        public var values: [Double?]
    }

    public var query: InsightsQuery
    public var rows: [Row]
    public var totals: [Double?]
    /// Every step of the range, empty ones included (none without an interval).
    public var series: [Point] = []
    /// More visits than the evaluator keeps were in range; those past the bound are not counted.
    public var truncated: Bool

    /// A metric's total.
    public func total(_ metric: Metric) -> Double? {
        query.metrics.firstIndex(of: metric).flatMap { totals[$0] }
    }

    /// A row's value of a metric.
    public func value(_ metric: Metric, of key: String) -> Double? {
        guard let index = query.metrics.firstIndex(of: metric), let row = rows.first(where: { $0.key == key }) else { return nil }
        return row.values[index]
    }

    /// Rows in a report's order: by the first metric, largest first (a value that means nothing counts as 0), then
    /// by key.
    public static func ordered(_ rows: [Row]) -> [Row] {
        rows.sorted { left, right in
            let a = left.values.first.flatMap { $0 } ?? 0
            let b = right.values.first.flatMap { $0 } ?? 0
            return a != b ? a > b : left.key < right.key
        }
    }
}
