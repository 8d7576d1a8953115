import ArgumentParser
import Config
import Edge
import Foundation

/// Caddy-style quick starts: a whole configuration from a few flags, tracking on, state (the spool, visitor keys)
/// in a folder of its own. The configuration written there is an ordinary one, to copy and grow.
struct QuickStartOptions: ParsableArguments {
    @Option(help: "Folder for the written configuration and the event spool (default: $XDG_STATE_HOME/vantage/<command>-<port>, or ~/.local/state/vantage/...).")
    var state: String?

    @Option(help: "The admin listener (dashboard, /health, /metrics); 'off' for none.")
    var admin = "127.0.0.1:9901"

    @Flag(help: "Record no events.")
    var noTracking = false

    /// The state folder for `command` listening on `listen`, created.
    func folder(command: String, listen: String) throws -> URL {
        let folder: URL
        if let state {
            folder = URL(fileURLWithPath: state)
        } else {
            let environment = ProcessInfo.processInfo.environment
            let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/state")
            let port = listen.split(separator: ":").last.map(String.init) ?? listen
            folder = base.appendingPathComponent("vantage/\(command)-\(port)")
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Writes `routes` into a full configuration in `folder`, then serves it as `vantage run` would.
    func serve(listen: String, routes: String, in folder: URL) async throws {
        let tracking = noTracking
            ? "tracking: { enabled: false }"
            : "tracking: { spool: { dir: \(quoted(folder.appendingPathComponent("spool").path)) } }"
        let yaml = """
            # Written by a vantage quick start; `vantage run --config \(folder.appendingPathComponent("vantage.yaml").path)` serves the same.
            listen: { http: \(quoted(listen)) }
            admin: { listen: \(quoted(admin)) }
            \(tracking)
            sites:
              - routes:
            \(routes)
            """
        let path = folder.appendingPathComponent("vantage.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        printError("vantage: configuration written to \(path)")
        do {
            try await VantageRuntime.run(configurationPath: path)
        } catch let error as ConfigError {
            printError("invalid options: \(error.message)")
            throw ExitCode(64)
        } catch let errors as ConfigErrors {
            printError("invalid options:\n" + errors.errors.map(\.message).joined(separator: "\n"))
            throw ExitCode(64)
        } catch {
            printError("vantage: \(error)")
            throw ExitCode(1)
        }
    }
}

/// A YAML double-quoted scalar (JSON's string syntax, which YAML reads as it is).
func quoted(_ text: String) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
    return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
}

extension VantageCommand {
    struct Proxy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "proxy",
            abstract: "Reverse-proxy one address to an app, with analytics: vantage proxy --from :8080 --to 127.0.0.1:3000.")

        @Option(help: "Where to listen (':8080' is every interface, '127.0.0.1:8080' loopback only).")
        var from = ":8080"

        @Option(help: "The app's address (host:port, http://host:port or unix:/path.sock); repeat for several (round robin).")
        var to: [String] = []

        @OptionGroup var options: QuickStartOptions

        func validate() throws {
            if to.isEmpty { throw ValidationError("give the app's address with --to, such as --to 127.0.0.1:3000") }
        }

        func run() async throws {
            let upstreams = to.map(quoted).joined(separator: ", ")
            try await options.serve(
                listen: from, routes: "      - { path: /, proxy: { upstreams: [\(upstreams)] } }",
                in: try options.folder(command: "proxy", listen: from))
        }
    }

    struct FileServer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "file-server",
            abstract: "Serve a folder's files, with analytics: vantage file-server --root . --listen :8080.")

        @Option(help: "The folder to serve.")
        var root = "."

        @Option(help: "Where to listen (':8080' is every interface, '127.0.0.1:8080' loopback only).")
        var listen = ":8080"

        @Flag(help: "List folders that have no index.html.")
        var browse = false

        @OptionGroup var options: QuickStartOptions

        func run() async throws {
            let folder = URL(fileURLWithPath: root).standardizedFileURL.path
            try await options.serve(
                listen: listen, routes: "      - { path: /, static: { root: \(quoted(folder)), browse: \(browse) } }",
                in: try options.folder(command: "file-server", listen: listen))
        }
    }
}
