import Tracking

/// What visits do not show: short-link clicks, email pixel opens, the tracking API's custom events and the money
/// they carry, for a site and period. Each table holds its ten largest rows; machines are counted apart (link
/// previews and mail proxies are most of them), never mixed into people's numbers.
public struct ActivityReport: Sendable, Equatable {
    /// One row of a table: what people did (`count`, and `people` distinct visitors), what machines did, and money.
    public struct Row: Sendable, Equatable {
        public var key: String
        /// Occurrences by people (clicks, opens, events, payments).
        public var count = 0
        /// Distinct visitors among them.
        public var people = 0
        /// Occurrences by machines (crawlers, link previews, mail proxies, ...).
        public var machines = 0
        /// Of those, link previews (chat and social apps unfurling a link).
        public var previews = 0
        /// The sum of the occurrences' revenue.
        public var amount = 0.0

        public init(key: String, count: Int = 0, people: Int = 0, machines: Int = 0, previews: Int = 0, amount: Double = 0) {
            (self.key, self.count, self.people, self.machines, self.previews, self.amount) = (key, count, people, machines, previews, amount)
        }
    }

    /// The tables, by name: ``Table/allCases``.
    public enum Table: String, Sendable, CaseIterable {
        /// Per short link (its slug, or the API redirect's `ename`): clicks, visitors who clicked, machines, previews.
        case links
        /// Where people's clicks on short links came from (referrer hosts).
        case linkReferrers = "link_referrers"
        /// Countries of people's clicks on short links.
        case linkCountries = "link_countries"
        /// Per email pixel campaign (`ename`): opens, readers, machine opens (mail proxies fetch for readers).
        case pixels
        /// Per custom event name (`track`, `str`, `ltv`): occurrences and visitors.
        case events
        /// Per custom event type (`etyp`).
        case eventTypes = "event_types"
        /// Per currency: payments (events carrying revenue, LTV included) and their sum.
        case revenue

        public var title: String {
            switch self {
            case .links: "Short links"
            case .linkReferrers: "Link referrers"
            case .linkCountries: "Link countries"
            case .pixels: "Email opens"
            case .events: "Events"
            case .eventTypes: "Event types"
            case .revenue: "Revenue"
            }
        }

        /// The key column's header.
        public var keyTitle: String {
            switch self {
            case .links: "Link"
            case .linkReferrers: "Referrer"
            case .linkCountries: "Country"
            case .pixels: "Campaign"
            case .events: "Event"
            case .eventTypes: "Type"
            case .revenue: "Currency"
            }
        }

        /// What an empty key shows.
        var emptyLabel: String {
            switch self {
            case .linkReferrers: "Direct / None"
            default: "(not set)"
            }
        }
    }

    public var tables: [Table: [Row]] = [:]
    /// More distinct keys or visitors than the aggregator keeps were seen; the rest were not counted.
    public var truncated = false

    public init() {}

    public subscript(table: Table) -> [Row] { tables[table] ?? [] }

    /// Rows in a table's order: by people's count, then machines, then key.
    static func ordered(_ rows: [Row], limit: Int) -> [Row] {
        Array(
            rows.sorted { left, right in
                if left.count != right.count { return left.count > right.count }
                if left.machines != right.machines { return left.machines > right.machines }
                return left.key < right.key
            }.prefix(limit))
    }
}

/// Gathers an ``ActivityReport`` from events read one by one. Bounded: ``maximumKeys`` keys a table and
/// ``maximumVisitors`` distinct (key, visitor) pairs in all; past them the report says it is truncated.
public struct ActivityAggregator {
    public let site: String
    public let range: TimeRange
    public let includeBots: Bool
    static let maximumKeys = 100_000
    static let maximumVisitors = 2_000_000

    private var rows: [ActivityReport.Table: [String: ActivityReport.Row]] = [:]
    private var visitors = Set<UInt64>()
    private var truncated = false

    public init(site: String, range: TimeRange, includeBots: Bool = false) {
        (self.site, self.range, self.includeBots) = (site, range, includeBots)
    }

    static func isCustom(_ kind: TrackingEvent.Kind) -> Bool { kind == .track || kind == .serverTrack || kind == .ltv }

    /// Whether an event of `kind` at `milliseconds` can count.
    public func wants(_ kind: TrackingEvent.Kind, at milliseconds: Int64) -> Bool {
        (kind == .linkClick || kind == .pixelOpen || Self.isCustom(kind)) && range.contains(milliseconds)
    }

    public mutating func add(_ event: TrackingEvent) {
        guard wants(event.kind, at: event.timeMilliseconds), event.site == site else { return }
        let machine = !event.botReason.isEmpty
        switch event.kind {
        case .linkClick:
            count(.links, event.eventName, event, machine: machine)
            if !machine {
                count(.linkReferrers, event.referrerHost, event, machine: false)
                count(.linkCountries, event.country, event, machine: false)
            }
        case .pixelOpen:
            count(.pixels, event.eventName, event, machine: machine)
        default:
            // Custom events are people's unless machines are asked for (as in the visit panels).
            guard !machine || includeBots else { return }
            count(.events, event.eventName, event, machine: false)
            count(.eventTypes, event.eventType, event, machine: false)
            if event.revenue != 0 { count(.revenue, event.currency.uppercased(), event, machine: false) }
        }
    }

    private mutating func count(_ table: ActivityReport.Table, _ key: String, _ event: TrackingEvent, machine: Bool) {
        let key = key.isEmpty ? table.emptyLabel : key
        guard rows[table]?[key] != nil || (rows[table]?.count ?? 0) < Self.maximumKeys else {
            truncated = true
            return
        }
        var row = rows[table]?[key] ?? ActivityReport.Row(key: key)
        if machine {
            row.machines += 1
            if event.botReason == UserAgent.BotReason.linkPreview.rawValue { row.previews += 1 }
        } else {
            row.count += 1
            row.amount += event.revenue
            var hasher = Hasher()
            hasher.combine(table)
            hasher.combine(key)
            hasher.combine(event.visitorID)
            let pair = UInt64(bitPattern: Int64(hasher.finalize()))
            if visitors.count < Self.maximumVisitors || visitors.contains(pair) {
                if visitors.insert(pair).inserted { row.people += 1 }
            } else {
                truncated = true
            }
        }
        rows[table, default: [:]][key] = row
    }

    public func report(limit: Int = 10) -> ActivityReport {
        var report = ActivityReport()
        for (table, keyed) in rows { report.tables[table] = ActivityReport.ordered(Array(keyed.values), limit: limit) }
        report.truncated = truncated
        return report
    }
}
