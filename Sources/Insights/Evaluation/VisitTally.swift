extension VisitAggregator {
    /// Counts for one group of visits (a row, or the totals).
    struct Tally {
        var visitors = Set<UInt64>()
        var visits = Set<Int32>()
        var pageviews = 0
        var events = 0
        /// Visits with a page view, and those of them with one page view and nothing else.
        var viewedVisits = 0
        var bounces = 0
        /// Visits whose bounce and duration were counted (for a page: those that entered on it).
        var outcomes = 0
        var durationMilliseconds: Int64 = 0

        /// Counts a whole visit (`pageviews`, `events`: what the filters let through of it).
        mutating func add(visit index: Int32, _ visit: Visit, pageviews: Int, events: Int) {
            visitors.insert(visit.visitor)
            guard visits.insert(index).inserted else { return }
            self.pageviews += pageviews
            self.events += events
            addOutcome(of: visit)
        }

        /// The bounce and duration of a visit.
        mutating func addOutcome(of visit: Visit) {
            if visit.pageviews > 0 {
                viewedVisits += 1
                if visit.pageviews == 1 && visit.events == 0 { bounces += 1 }
            }
            outcomes += 1
            durationMilliseconds += visit.end - visit.start
        }

        /// The tally's numbers.
        var counts: VisitCounts {
            VisitCounts(
                visitors: visitors.count, visits: visits.count, pageviews: pageviews, events: events,
                viewedVisits: viewedVisits, bounces: bounces, outcomes: outcomes, durationMilliseconds: durationMilliseconds)
        }

        func value(_ metric: Metric) -> Double? { counts.value(metric) }
    }
}

/// Strings kept once, named by a number (a page seen a million times is one string).
struct Interner {
    private var ids: [String: Int32] = [:]
    private var texts: [String] = []

    mutating func id(_ text: String) -> Int32 {
        if let known = ids[text] { return known }
        let id = Int32(texts.count)
        texts.append(text)
        ids[text] = id
        return id
    }

    func text(_ id: Int32) -> String { texts[Int(id)] }
}
