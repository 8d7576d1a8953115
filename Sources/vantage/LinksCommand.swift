import ArgumentParser
import Foundation
import NIOHTTP1

/// `vantage links`: short links through a running Vantage's admin API (the token from `admin.token_env`).
struct LinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links", abstract: "Create, list, remove and count short links (through the admin API).",
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
            try await adminCall(options, .POST, "/links", json: try JSONSerialization.data(withJSONObject: fields))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List a host's links (JSON).")
        @OptionGroup var options: ConfigOption
        @Option(help: "The host.") var host: String
        @Option(help: "Start after this slug (the previous page's next_cursor).") var cursor: String?
        @Option(help: "Links per page (at most 1000).") var limit = 100

        func run() async throws {
            var path = "/links?host=\(escape(host))&limit=\(limit)"
            if let cursor { path += "&cursor=\(escape(cursor))" }
            try await adminCall(options, .GET, path)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a link by id.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The link id.") var id: String

        func run() async throws { try await adminCall(options, .DELETE, "/links/\(escape(id))") }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clicks of a link (and from ClickHouse when configured).")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The link id.") var id: String

        func run() async throws { try await adminCall(options, .GET, "/links/\(escape(id))/stats") }
    }
}

private func escape(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}

/// Prints the admin API's JSON answer; exits 1 with its error on a failure status.
private func adminCall(_ options: ConfigOption, _ method: HTTPMethod, _ path: String, json: Data? = nil) async throws {
    let configuration = try loadConfiguration(options.config)
    do {
        let (status, body) = try await AdminClient(configuration: configuration).send(method, path, json: json)
        guard (200..<300).contains(status) else {
            printError("vantage links: \(status): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
            throw ExitCode(1)
        }
        print(body.trimmingCharacters(in: .whitespacesAndNewlines))
    } catch let failure as AdminClient.Failure {
        printError("vantage links: \(failure)")
        throw ExitCode(1)
    }
}
