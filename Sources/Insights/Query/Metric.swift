/// What a report counts. The definitions (docs/INSIGHTS.md) are Plausible's, computed from the events Vantage
/// stores; machines are left out unless a query includes them.
public enum Metric: String, Sendable, CaseIterable, Equatable {
    /// Distinct visitor ids (the cookie's, the API's or the cookieless daily hash).
    case visitors
    /// Distinct sessions: a visit ends after `tracking.visitors.session_timeout` without a request.
    case visits
    /// Page views (`pageview` events).
    case pageviews
    /// Page views per visit.
    case viewsPerVisit = "views_per_visit"
    /// The share of visits (in percent) with one page view and nothing else.
    case bounceRate = "bounce_rate"
    /// Mean seconds from a visit's first event to its last (a single-event visit lasts 0).
    case visitDuration = "visit_duration"
    /// Custom events (tracking API `track`, `str`, `ltv` events).
    case events

    /// The headline's metrics, in the order a dashboard shows them.
    public static let headline: [Metric] = [.visitors, .visits, .pageviews, .viewsPerVisit, .bounceRate, .visitDuration]

    /// The metric's name in a table's header.
    public var label: String {
        switch self {
        case .visitors: "Visitors"
        case .visits: "Visits"
        case .pageviews: "Pageviews"
        case .viewsPerVisit: "Views per visit"
        case .bounceRate: "Bounce rate"
        case .visitDuration: "Visit duration"
        case .events: "Events"
        }
    }
}
