import ArgumentParser
import Foundation
import Tracking

/// `vantage api`: helpers for the tracking API.
struct APICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "Helpers for the tracking API (/tr/v1/...).", subcommands: [SignURL.self])

    struct SignURL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sign-url",
            abstract: "Print the sig parameter that lets /tr/v1/rdr/ redirect to a URL outside the allowed hosts.")
        @Argument(help: "The redirect target, exactly as it will be passed in url=.")
        var url: String
        @Option(help: "The environment variable holding the key (what tracking.api.redirect_key_env names).")
        var keyEnv = "VANTAGE_REDIRECT_KEY"

        func run() throws {
            guard let key = ProcessInfo.processInfo.environment[keyEnv], key.utf8.count >= 16 else {
                printError("expected the environment variable \(keyEnv) to hold the signing key (16 bytes or more)")
                throw ExitCode(64)
            }
            print(TrackingAPI.signature(for: url, key: Array(key.utf8)))
        }
    }
}
