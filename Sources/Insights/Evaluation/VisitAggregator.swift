import Tracking

/// Answers an ``InsightsQuery`` from events read one by one, in any order (the embedded default's spool, where the
/// loops' segments interleave): a pass gathers each visit (its first and last event, its page views and custom
/// events, its landing's values), then the visits that pass the filters are grouped and counted.
///
/// Memory is bounded by ``maximumVisits`` (about 80 bytes a visit and 4 per visit dimension asked for, plus 8 a page
/// view when pages are asked for);
/// past it, further visits are not counted and the result says so.
public struct VisitAggregator {
    public var query: InsightsQuery
    public let maximumVisits: Int
    public private(set) var truncated = false

    /// One visit as the pass saw it.
    struct Visit {
        var visitor: UInt64
        var start: Int64
        var end: Int64
        var pageviews: Int32 = 0
        var events: Int32 = 0
        /// The earliest event's time (the visit-level dimensions' values are read from it, into ``attributes``).
        var landingTime: Int64
        var entryPage: Int32 = -1
        var entryTime = Int64.max
        var exitPage: Int32 = -1
        var exitTime = Int64.min
    }

    /// An event-level fact: a page view's page or a custom event's name, and its visit.
    struct Occurrence {
        var visit: Int32
        var value: Int32
    }

    private var strings = Interner()
    private var visitIndex: [UInt64: Int32] = [:]
    private var visits: [Visit] = []
    /// Visit `n`'s values of ``visitDimensions``, at `n * visitDimensions.count` (one flat array: no allocation per
    /// visit).
    private var attributes: [Int32] = []
    private var pageviews: [Occurrence] = []
    private var customEvents: [Occurrence] = []
    /// The visit-level dimensions read from each visit's landing (filters' and the breakdown's).
    private let visitDimensions: [Dimension]
    private let keepsPages: Bool
    private let keepsEvents: Bool

    /// `breakdowns`: further dimensions ``result(by:metrics:)`` will be asked for, gathered in the same pass.
    public init(query: InsightsQuery, breakdowns: [Dimension] = [], maximumVisits: Int = 2_000_000) {
        self.query = query
        self.maximumVisits = maximumVisits
        var dimensions = query.filters.map(\.dimension) + breakdowns
        if let dimension = query.dimension { dimensions.append(dimension) }
        visitDimensions = Array(Set(dimensions.filter { $0.isVisitLevel && $0 != .entryPage && $0 != .exitPage }))
            .sorted { $0.rawValue < $1.rawValue }
        keepsPages = dimensions.contains(.page)
        keepsEvents = dimensions.contains(.event)
    }

    /// The kinds of event site analytics count: page views and the tracking API's custom events. Plain requests
    /// (stylesheets, API calls), link clicks and pixel opens have reports of their own.
    static func counts(_ kind: TrackingEvent.Kind) -> Bool {
        kind == .pageview || kind == .track || kind == .serverTrack || kind == .ltv
    }

    /// Whether an event of `kind` at `milliseconds` can count (what a reader may check before decoding the rest).
    public func wants(_ kind: TrackingEvent.Kind, at milliseconds: Int64) -> Bool {
        Self.counts(kind) && query.range.contains(milliseconds)
    }

    /// Takes one event into account.
    public mutating func add(_ event: TrackingEvent) {
        guard Self.counts(event.kind), query.range.contains(event.timeMilliseconds), event.site == query.site,
            query.includeBots || event.botReason.isEmpty
        else { return }
        let key = Self.hash(event.sessionID.isEmpty ? "visitor:" + event.visitorID : event.sessionID)
        let time = event.timeMilliseconds
        let index: Int
        if let known = visitIndex[key] {
            index = Int(known)
            if time < visits[index].landingTime {
                visits[index].landingTime = time
                for (offset, dimension) in visitDimensions.enumerated() {
                    attributes[index * visitDimensions.count + offset] = strings.id(dimension.value(of: event))
                }
            }
            visits[index].start = min(visits[index].start, time)
            visits[index].end = max(visits[index].end, time)
        } else {
            guard visits.count < maximumVisits else {
                truncated = true
                return
            }
            index = visits.count
            visitIndex[key] = Int32(index)
            visits.append(Visit(visitor: Self.hash(event.visitorID), start: time, end: time, landingTime: time))
            for dimension in visitDimensions { attributes.append(strings.id(dimension.value(of: event))) }
        }
        if event.kind == .pageview {
            visits[index].pageviews += 1
            let page = strings.id(Dimension.path(of: event.target))
            if time < visits[index].entryTime { (visits[index].entryPage, visits[index].entryTime) = (page, time) }
            if time >= visits[index].exitTime { (visits[index].exitPage, visits[index].exitTime) = (page, time) }
            if keepsPages { pageviews.append(Occurrence(visit: Int32(index), value: page)) }
        } else {
            visits[index].events += 1
            if keepsEvents { customEvents.append(Occurrence(visit: Int32(index), value: strings.id(Dimension.event.value(of: event)))) }
        }
    }

    static func hash(_ text: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(text)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Visit `index`'s value of a visit-level dimension.
    private func value(_ dimension: Dimension, of index: Int) -> String {
        let visit = visits[index]
        switch dimension {
        case .entryPage: return visit.entryPage < 0 ? dimension.emptyLabel : strings.text(visit.entryPage)
        case .exitPage: return visit.exitPage < 0 ? dimension.emptyLabel : strings.text(visit.exitPage)
        default: return strings.text(attributes[index * visitDimensions.count + visitDimensions.firstIndex(of: dimension)!])
        }
    }

    /// The answer, from what the pass gathered.
    public func result() -> InsightsResult { result(by: query.dimension, metrics: query.metrics) }

    /// The answer with another breakdown (one the pass gathered: the query's, or one of `breakdowns`) and metrics.
    public func result(by dimension: Dimension?, metrics: [Metric]) -> InsightsResult {
        var query = self.query
        (query.dimension, query.metrics) = (dimension, metrics)
        let visitFilters = query.filters.filter { $0.dimension.isVisitLevel }
        let pageFilters = query.filters.filter { $0.dimension == .page }
        let eventFilters = query.filters.filter { $0.dimension == .event }
        // The page views and custom events the filters let through, by visit.
        var matchedPageviews = [Int32](repeating: 0, count: visits.count)
        var matchedEvents = [Int32](repeating: 0, count: visits.count)
        var pageOccurrences: [Occurrence] = []
        var eventOccurrences: [Occurrence] = []
        for occurrence in pageviews where pageFilters.allSatisfy({ $0.holds(for: strings.text(occurrence.value)) }) {
            matchedPageviews[Int(occurrence.visit)] += 1
            pageOccurrences.append(occurrence)
        }
        for occurrence in customEvents where eventFilters.allSatisfy({ $0.holds(for: strings.text(occurrence.value)) }) {
            matchedEvents[Int(occurrence.visit)] += 1
            eventOccurrences.append(occurrence)
        }
        var passes = [Bool](repeating: false, count: visits.count)
        for index in visits.indices {
            guard visitFilters.allSatisfy({ $0.holds(for: value($0.dimension, of: index)) }) else { continue }
            if !pageFilters.isEmpty && matchedPageviews[index] == 0 { continue }
            if !eventFilters.isEmpty && matchedEvents[index] == 0 { continue }
            passes[index] = true
        }
        func pageviewsCounted(_ index: Int) -> Int { Int(keepsPages ? matchedPageviews[index] : visits[index].pageviews) }
        func eventsCounted(_ index: Int) -> Int { Int(keepsEvents ? matchedEvents[index] : visits[index].events) }

        var totals = Tally()
        for (index, visit) in visits.enumerated() where passes[index] {
            totals.add(visit: Int32(index), visit, pageviews: pageviewsCounted(index), events: eventsCounted(index))
        }
        var groups: [String: Tally] = [:]
        switch query.dimension {
        case nil:
            break
        case .page?:
            for occurrence in pageOccurrences where passes[Int(occurrence.visit)] {
                let visit = visits[Int(occurrence.visit)]
                groups[strings.text(occurrence.value), default: Tally()].visitors.insert(visit.visitor)
                groups[strings.text(occurrence.value), default: Tally()].visits.insert(occurrence.visit)
                groups[strings.text(occurrence.value), default: Tally()].pageviews += 1
            }
            // A page's bounce rate and visit duration are those of the visits that entered on it (as Plausible's).
            for (index, visit) in visits.enumerated() where passes[index] && visit.entryPage >= 0 {
                let page = strings.text(visit.entryPage)
                if groups[page] != nil { groups[page]!.addOutcome(of: visit) }
            }
        case .event?:
            for occurrence in eventOccurrences where passes[Int(occurrence.visit)] {
                let visit = visits[Int(occurrence.visit)]
                let name = strings.text(occurrence.value)
                groups[name, default: Tally()].visitors.insert(visit.visitor)
                if groups[name]!.visits.insert(occurrence.visit).inserted { groups[name]!.addOutcome(of: visit) }
                groups[name]!.events += 1
            }
        case let dimension?:
            for (index, visit) in visits.enumerated() where passes[index] {
                groups[value(dimension, of: index), default: Tally()]
                    .add(visit: Int32(index), visit, pageviews: pageviewsCounted(index), events: eventsCounted(index))
            }
        }
        var series: [InsightsResult.Point] = []
        if let interval = query.interval {
            var steps: [Int64: Tally] = [:]
            for (index, visit) in visits.enumerated() where passes[index] {
                steps[interval.start(of: visit.start), default: Tally()]
                    .add(visit: Int32(index), visit, pageviews: pageviewsCounted(index), events: eventsCounted(index))
            }
            var step = interval.start(of: query.range.start)
            while step < query.range.end && series.count < 10_000 {
                series.append(InsightsResult.Point(start: step, values: metrics.map { (steps[step] ?? Tally()).value($0) }))
                step = interval.next(after: step)
            }
        }
        let rows = InsightsResult.ordered(groups.map { key, tally in
            InsightsResult.Row(key: key, values: metrics.map { tally.value($0) })
        })
        return InsightsResult(
            query: query, rows: Array(rows.prefix(query.limit)), totals: metrics.map { totals.value($0) }, series: series,
            truncated: truncated)
    }
}
