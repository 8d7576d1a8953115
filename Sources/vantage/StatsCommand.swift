import ArgumentParser
import Edge
import Foundation
import Insights
import Logging
import NIOPosix
import Tracking

/// `vantage stats`: the dashboard's numbers as aligned tables, for people on SSH: from ClickHouse when the
/// configuration has `tracking.clickhouse`, else from the spool (the embedded default).
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Print visitors, visits, pages, sources, locations and devices as tables.",
        discussion: """
            Examples: vantage stats; vantage stats --range 7d --by source; vantage stats --by page --filter country==FR
            Metrics are defined in docs/INSIGHTS.md (as Plausible's); machines are left out unless --bots.
            """)

    @OptionGroup var options: ConfigOption
    @Option(help: "The site (its first host, as events name it); the configuration's first site by default.")
    var site: String?
    @Option(help: "today, yesterday, 7d, 30d, 90d, month, or FROM..TO (YYYY-MM-DD..YYYY-MM-DD).")
    var range = "30d"
    @Option(help: "Rows by: \(Dimension.allCases.map(\.rawValue).joined(separator: ", ")) (path = page, campaign = utm_campaign).")
    var by: String?
    @Option(help: "Conditions such as country==FR, page~/blog, source!=google.com (repeatable).")
    var filter: [String] = []
    @Option(help: "Metrics, comma-separated: \(Metric.allCases.map(\.rawValue).joined(separator: ", ")).")
    var metrics: String?
    @Option(help: "Rows at most.")
    var limit = 20
    @Flag(help: "Count machines (crawlers, link previews, mail proxies) too.")
    var bots = false
    @Flag(help: "Print JSON (the API's answer) instead of a table.")
    var json = false
    @Option(help: "Read this spool folder (instead of ClickHouse or the configuration's spool).")
    var spool: String?

    /// The query parameters' options here.
    static let options = ["period": "--range", "from": "--range", "to": "--range", "dimension": "--by", "filters": "--filter"]
    static let aliases = ["path": "page", "campaign": "utm_campaign", "entry": "entry_page", "exit": "exit_page", "referrer": "source"]

    func run() async throws {
        let configuration = try spool == nil || site == nil ? loadConfiguration(options.config) : nil
        var parameters = ["limit": String(limit), "bots": bots ? "include" : "exclude"]
        let bounds = range.components(separatedBy: "..")
        if bounds.count == 2 {
            (parameters["period"], parameters["from"], parameters["to"]) = ("custom", bounds[0], bounds[1])
        } else {
            parameters["period"] = range
        }
        if let by { parameters["dimension"] = Self.aliases[by] ?? by }
        if !filter.isEmpty { parameters["filters"] = filter.joined(separator: ";") }
        if let metrics { parameters["metrics"] = metrics }
        if let site { parameters["site"] = site }
        let query: InsightsQuery
        do {
            query = try InsightsQuery.parse(parameters, defaultSite: configuration?.sites.first?.name, now: Date())
        } catch {
            let option = Self.options[error.parameter] ?? "--" + error.parameter
            printError("vantage stats: \(option): \(error.problem)")
            throw ExitCode(64)
        }
        let result: InsightsResult
        if spool == nil, let clickHouse = configuration?.tracking.clickHouse {
            let client = ClickHouseClient(configuration: clickHouse, group: MultiThreadedEventLoopGroup.singleton)
            let answer: Result<InsightsResult, any Error>
            do {
                answer = .success(
                    try await ClickHouseInsights(client: client, configuration: clickHouse, logger: Logger(label: "vantage.stats"))
                        .evaluate(query))
            } catch {
                answer = .failure(error)
            }
            await client.shutdown()
            guard case .success(let answered) = answer else {
                if case .failure(let error) = answer { printError("vantage stats: clickhouse: \(error)") }
                throw ExitCode(1)
            }
            result = answered
        } else {
            let directory = spool ?? configuration!.tracking.spool.directory
            guard FileManager.default.fileExists(atPath: directory) else {
                printError("no spool folder at \(directory) (tracking.spool.dir): Vantage has not run with this configuration yet")
                throw ExitCode(1)
            }
            result = try SpoolInsights(directory: directory).evaluate(query)
        }
        print(json ? ResultJSON.render(result) : ResultTable.render(result), terminator: json ? "\n" : "")
    }
}
