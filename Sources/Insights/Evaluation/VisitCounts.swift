/// The numbers every metric of a group of visits (a row, the totals, a step of a series) is computed from, by
/// whichever evaluator counted them: so the spool's and ClickHouse's answers round and divide the same way.
public struct VisitCounts: Sendable, Equatable {
    public var visitors = 0
    public var visits = 0
    public var pageviews = 0
    public var events = 0
    /// Visits with a page view, and those of them with one page view and nothing else.
    public var viewedVisits = 0
    public var bounces = 0
    /// Visits whose bounce and duration were counted (for a page: those that entered on it).
    public var outcomes = 0
    public var durationMilliseconds: Int64 = 0

    public init(
        visitors: Int = 0, visits: Int = 0, pageviews: Int = 0, events: Int = 0, viewedVisits: Int = 0, bounces: Int = 0,
        outcomes: Int = 0, durationMilliseconds: Int64 = 0
    ) {
        (self.visitors, self.visits, self.pageviews, self.events) = (visitors, visits, pageviews, events)
        (self.viewedVisits, self.bounces, self.outcomes, self.durationMilliseconds) = (viewedVisits, bounces, outcomes, durationMilliseconds)
    }

    /// A metric's value (nil: it means nothing here, such as the bounce rate of a page no visit entered on).
    public func value(_ metric: Metric) -> Double? {
        switch metric {
        case .visitors: Double(visitors)
        case .visits: Double(visits)
        case .pageviews: Double(pageviews)
        case .events: Double(events)
        case .viewsPerVisit: visits == 0 ? 0 : (Double(pageviews) / Double(visits) * 100).rounded() / 100
        case .bounceRate: viewedVisits == 0 ? nil : (Double(bounces) * 100 / Double(viewedVisits)).rounded()
        case .visitDuration: outcomes == 0 ? nil : (Double(durationMilliseconds) / 1000 / Double(outcomes)).rounded()
        }
    }
}
