import ArgumentParser
import Edge
import Foundation
import NIOHTTP1

/// `vantage links`: short links through a running Vantage's admin API (the token from `admin.token_env`), or,
/// when none is running, in the links journal directly (``StoppedGatewayLinks``).
struct LinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links",
        abstract: "Create, list, remove and count short links (through the admin API, or the journal when Vantage is stopped).",
        subcommands: [Add.self, List.self, Remove.self, Stats.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a short link; prints it as JSON.")
        @OptionGroup var options: ConfigOption
        @Option(help: "The host the link lives on (go.example.com).") var host: String
        @Option(help: "The slug (generated when omitted).") var slug: String?
        @Option(help: "Where the link sends clients (absolute http or https URL).") var to: String
        @Option(help: "301, 302, 307 or 308.") var status: Int?
        @Option(help: "Expiry as an ISO 8601 time (2026-12-31T23:59:59Z).") var expires: String?
        @Option(help: "Where an expired or exhausted link sends clients (default: 410 Gone).") var fallback: String?
        @Option(help: "Clicks after which the link is exhausted.") var maxClicks: Int?
        @Flag(help: "Append the request's query string to the destination.") var passQuery = false
        @Option(help: "utm parameters to add, as name=value (repeatable).") var utm: [String] = []
        @Option(help: "A tag (repeatable).") var tag: [String] = []

        func run() async throws {
            var fields: [String: Any] = ["host": host, "destination": to]
            if let slug { fields["slug"] = slug }
            if let status { fields["status"] = status }
            if let expires { fields["expires_at"] = expires }
            if let fallback { fields["fallback"] = fallback }
            if let maxClicks { fields["max_clicks"] = maxClicks }
            if passQuery { fields["pass_query"] = true }
            if !utm.isEmpty {
                var pairs: [String: String] = [:]
                for item in utm {
                    let parts = item.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { throw ValidationError("expected --utm name=value, found \(item)") }
                    pairs[String(parts[0])] = String(parts[1])
                }
                fields["utm"] = pairs
            }
            if !tag.isEmpty { fields["tags"] = tag }
            let configuration = try loadConfiguration(options.config)
            for warning in linkWarnings(host: host, expires: expires, configuration: configuration) { printError("warning: \(warning)") }
            let body = try await adminCall(options, .POST, "/links", json: try JSONSerialization.data(withJSONObject: fields))
            if let link = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                let host = link["host"] as? String, let slug = link["slug"] as? String
            {
                printError("short link: \(shortURL(host: host, slug: slug, configuration: configuration))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List links: every host's, or one host's; by tag or text (a table, or JSON).")
        @OptionGroup var options: ConfigOption
        @Option(help: "Only this host's links.") var host: String?
        @Option(help: "Only links with this tag.") var tag: String?
        @Option(help: "Only links whose slug or destination contains this text.") var search: String?
        @Option(help: "Start after this link (the previous page's next_cursor).") var cursor: String?
        @Option(help: "Links per page (at most 1000).") var limit = 100
        @Flag(help: "The admin API's JSON instead of a table.") var json = false

        func run() async throws {
            var path = "/links?limit=\(limit)"
            for (name, value) in [("host", host), ("tag", tag), ("q", search), ("cursor", cursor)] {
                if let value { path += "&\(name)=\(escape(value))" }
            }
            let body = try await adminCall(options, .GET, path, printing: json)
            guard !json else { return }
            let configuration = try loadConfiguration(options.config)
            let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
            let links = object["links"] as? [[String: Any]] ?? []
            var rows = [["SHORT LINK", "DESTINATION", "CLICKS", "ID"]]
            for link in links {
                let host = link["host"] as? String ?? "", slug = link["slug"] as? String ?? ""
                rows.append([
                    shortURL(host: host, slug: slug, configuration: configuration), link["destination"] as? String ?? "",
                    "\(link["clicks"] as? Int ?? 0)", link["id"] as? String ?? "",
                ])
            }
            let widths = (0..<4).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                print(row.enumerated().map { $0.offset == 3 ? $0.element : $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                    .joined(separator: "  "))
            }
            if let next = object["next_cursor"] as? String { printError("more: --cursor \(next)") }
            if links.isEmpty { printError("no links") }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a link: by id, or by --host and --slug.")
        @OptionGroup var options: ConfigOption
        @OptionGroup var link: LinkSelector

        func run() async throws {
            try await adminCall(options, .DELETE, "/links/\(escape(try await link.id(options)))")
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clicks of a link, by id or by --host and --slug (and from ClickHouse when configured).")
        @OptionGroup var options: ConfigOption
        @OptionGroup var link: LinkSelector

        func run() async throws {
            try await adminCall(options, .GET, "/links/\(escape(try await link.id(options)))/stats")
        }
    }
}

/// A link named by its id, or by host and slug (as people know it: go.example.com/spring).
struct LinkSelector: ParsableArguments {
    @Argument(help: "The link id.") var id: String?
    @Option(help: "The link's host (with --slug).") var host: String?
    @Option(help: "The link's slug (with --host).") var slug: String?

    func validate() throws {
        if id == nil && (host == nil || slug == nil) { throw ValidationError("name the link by its id, or by --host and --slug") }
        if id != nil && (host != nil || slug != nil) { throw ValidationError("name the link by its id or by --host and --slug, not both") }
    }

    /// The id, looked up by host and slug when those name the link.
    func id(_ options: ConfigOption) async throws -> String {
        if let id { return id }
        let host = host ?? "", slug = (slug ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let body = try await adminCall(options, .GET, "/links?host=\(escape(host))&q=\(escape(slug))&limit=1000", printing: false)
        let links = ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["links"] as? [[String: Any]] ?? []
        guard let id = links.first(where: { ($0["slug"] as? String) == slug })?["id"] as? String else {
            printError("vantage links: no link \(host)/\(slug)")
            throw ExitCode(1)
        }
        return id
    }
}

/// What a person should know before a link goes live: a host no site answers, an expiry already past.
func linkWarnings(host: String, expires: String?, configuration: GatewayConfiguration) -> [String] {
    var warnings: [String] = []
    let name = host.lowercased()
    let served = configuration.sites.contains { site in
        site.isDefault || site.hosts.contains { $0 == name || ($0.hasPrefix("*.") && name.hasSuffix(String($0.dropFirst(1)))) }
    }
    if !served { warnings.append("no site of \(configuration.sourcePath) answers for \(host): clicks will get 404 until one does") }
    if let expires, let date = ISO8601DateFormatter().date(from: expires), date <= Date() {
        warnings.append("the expiry \(expires) is already past: the link answers with its fallback (or 410) from the start")
    }
    return warnings
}

/// The link as people type it: https when the configuration serves HTTPS.
func shortURL(host: String, slug: String, configuration: GatewayConfiguration) -> String {
    let scheme = configuration.httpsListeners.isEmpty ? "http" : "https"
    return "\(scheme)://\(host)/\(slug)"
}

private func escape(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}

/// The admin API's JSON answer, printed unless `printing` is false; exits 1 with its error on a failure status.
/// When no gateway answers, the same API runs over the links journal (if no running gateway holds it).
@discardableResult
private func adminCall(_ options: ConfigOption, _ method: HTTPMethod, _ path: String, json: Data? = nil, printing: Bool = true) async throws -> String {
    let configuration = try loadConfiguration(options.config)
    let status: Int, body: String
    do {
        do {
            (status, body) = try await AdminClient(configuration: configuration).send(method, path, json: json)
        } catch let failure as AdminClient.Failure {
            (status, body) = try await StoppedGatewayLinks.answer(
                method, path, json: json, configuration: configuration, unreachable: failure.description)
        }
    } catch let refusal as StoppedGatewayLinks.Refusal {
        printError("vantage links: \(refusal)")
        throw ExitCode(1)
    }
    guard (200..<300).contains(status) else {
        printError("vantage links: \(status): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        throw ExitCode(1)
    }
    let text = body.trimmingCharacters(in: .whitespacesAndNewlines)
    if printing { print(text) }
    return text
}
