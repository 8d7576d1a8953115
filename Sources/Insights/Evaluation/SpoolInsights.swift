import NIOCore
import Tracking

/// Queries answered from a spool folder (the embedded default: no ClickHouse), reading every segment once in file
/// order; records that do not decode are skipped, as the shipper counts them.
public struct SpoolInsights {
    public let directory: String
    public let maximumVisits: Int

    public init(directory: String, maximumVisits: Int = 2_000_000) {
        self.directory = directory
        self.maximumVisits = maximumVisits
    }

    /// The short links, email opens and money of the query's site and period.
    public func activity(_ query: InsightsQuery) throws -> ActivityReport {
        var aggregator = ActivityAggregator(site: query.site, range: query.range, includeBots: query.includeBots)
        var reader = SpoolReader(directory: directory)
        try reader.readNew { record in
            if let event = try? EventRecord.decodeForReports(record, keep: aggregator.wants) { aggregator.add(event) }
        }
        return aggregator.report()
    }

    public func evaluate(_ query: InsightsQuery) throws -> InsightsResult {
        var aggregator = VisitAggregator(query: query, maximumVisits: maximumVisits)
        var reader = SpoolReader(directory: directory)
        try reader.readNew { record in
            if let event = try? EventRecord.decodeForReports(record, keep: aggregator.wants) { aggregator.add(event) }
        }
        return aggregator.result()
    }
}
