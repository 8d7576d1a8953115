/// What a report asks, whoever renders the answer (the dashboard, the JSON API, `vantage stats`): one site, a time
/// range, filters, an optional breakdown and the metrics. The model is Plausible's Stats API: `site`, `period`,
/// `filters`, `property` (here `dimension`), `metrics`.
public struct InsightsQuery: Sendable, Equatable {
    /// The site's name as configured (`sites[].name`), or its first host.
    public var site: String
    public var range: TimeRange
    /// All must hold.
    public var filters: [Filter]
    /// Rows by this dimension; nil: one row, the totals.
    public var dimension: Dimension?
    public var metrics: [Metric]
    /// Machines (crawlers, link previews, mail proxies, ...) are left out unless asked for.
    public var includeBots: Bool
    /// Rows at most (the largest first).
    public var limit: Int

    public init(
        site: String, range: TimeRange, filters: [Filter] = [], dimension: Dimension? = nil,
        metrics: [Metric] = Metric.headline, includeBots: Bool = false, limit: Int = 100
    ) {
        self.site = site
        self.range = range
        self.filters = filters
        self.dimension = dimension
        self.metrics = metrics
        self.includeBots = includeBots
        self.limit = limit
    }
}

/// A half-open span of time, `[start, end)`, in Unix milliseconds.
public struct TimeRange: Sendable, Equatable {
    public var start: Int64
    public var end: Int64

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    public func contains(_ milliseconds: Int64) -> Bool { milliseconds >= start && milliseconds < end }

    /// The span of the same length just before this one (what "compared to the previous period" means).
    public var previous: TimeRange { TimeRange(start: start - (end - start), end: start) }
}

/// One condition on events or visits: a dimension compared with values.
public struct Filter: Sendable, Equatable {
    public enum Operation: String, Sendable {
        /// Equal to one of the values.
        case `is` = "=="
        /// Equal to none of them.
        case isNot = "!="
        /// Containing one of them.
        case contains = "~"
    }

    public var dimension: Dimension
    public var operation: Operation
    public var values: [String]

    public init(_ dimension: Dimension, _ operation: Operation = .is, _ values: [String]) {
        self.dimension = dimension
        self.operation = operation
        self.values = values
    }

    public func holds(for value: String) -> Bool {
        switch operation {
        case .is: values.contains(value)
        case .isNot: !values.contains(value)
        case .contains: values.contains { value.contains($0) }
        }
    }
}
