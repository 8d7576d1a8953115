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
    /// A time series too, by this step (a visit counts in the step where it starts).
    public var interval: Interval?

    public init(
        site: String, range: TimeRange, filters: [Filter] = [], dimension: Dimension? = nil,
        metrics: [Metric] = Metric.headline, includeBots: Bool = false, limit: Int = 100, interval: Interval? = nil
    ) {
        self.interval = interval
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

/// A time series' step (UTC).
public enum Interval: String, Sendable, CaseIterable, Equatable {
    case hour, day, week, month

    /// The step that suits a span: hours for a day or two, days up to three months, weeks beyond.
    public static func suited(to range: TimeRange) -> Interval {
        let days = (range.end - range.start) / 86_400_000
        return days <= 2 ? .hour : days <= 92 ? .day : .week
    }

    /// The start of the step holding `milliseconds`.
    public func start(of milliseconds: Int64) -> Int64 {
        let day: Int64 = 86_400_000
        switch self {
        case .hour: return milliseconds - milliseconds.modulo(3_600_000)
        case .day: return milliseconds - milliseconds.modulo(day)
        case .week:
            // 1970-01-01 was a Thursday; weeks start on Monday.
            let days = (milliseconds - milliseconds.modulo(day)) / day
            return (days - (days + 3).modulo(7)) * day
        case .month:
            let days = Int((milliseconds - milliseconds.modulo(day)) / day)
            let (year, month, _) = Self.civil(days)
            return Int64(Self.days(year: year, month: month, day: 1)) * day
        }
    }

    /// The start of the step after the one starting at `start`.
    public func next(after start: Int64) -> Int64 {
        switch self {
        case .hour: return start + 3_600_000
        case .day: return start + 86_400_000
        case .week: return start + 7 * 86_400_000
        case .month:
            let (year, month, _) = Self.civil(Int(start / 86_400_000))
            return Int64(month == 12 ? Self.days(year: year + 1, month: 1, day: 1) : Self.days(year: year, month: month + 1, day: 1)) * 86_400_000
        }
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date, and back (Howard Hinnant's algorithms).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension Int64 {
    /// The remainder that is never negative (times before 1970 fall in the right step).
    func modulo(_ divisor: Int64) -> Int64 { ((self % divisor) + divisor) % divisor }
}
