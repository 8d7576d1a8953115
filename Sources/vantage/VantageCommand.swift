import ArgumentParser
import Config
import Edge

/// `vantage`: the edge gateway. Exit codes: 0 success, 1 runtime failure, 2 invalid configuration, 64 usage.
@main
struct VantageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vantage",
        abstract: "An edge gateway: TLS, HTTP/1.1 and HTTP/2, static files and routing, with analytics built in.",
        version: versionText,
        subcommands: [Run.self, Validate.self, Proxy.self, FileServer.self, EventsCommand.self, StatsCommand.self, LinksCommand.self, EraseCommand.self, APICommand.self, Version.self])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "Path to the YAML configuration.")
    var config = "conf/vantage.yaml"
}

extension VantageCommand {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve with the given configuration until SIGTERM or SIGINT (SIGHUP reloads).")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            do {
                try await VantageRuntime.run(configurationPath: options.config)
            } catch let error as ConfigError {
                printError("invalid configuration: \(error)")
                throw ExitCode(2)
            } catch let errors as ConfigErrors {
                printError("invalid configuration (\(errors.errors.count) problems):\n\(errors)")
                throw ExitCode(2)
            } catch {
                printError("vantage: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a configuration without serving; exit 0 when valid, 2 when not.")
        @OptionGroup var options: ConfigOption

        func run() throws {
            let gateway = try loadConfiguration(options.config, checkingCertificates: true)
            print("\(options.config): valid (\(gateway.sites.count) site(s))")
        }
    }

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the version.")
        func run() { print(versionText) }
    }
}

/// `vantage 0.1.0 (commit 1a2b3c4d5e6f)`: `--version` and `vantage version`.
let versionText = "vantage \(VantageRuntime.version) (commit \(BuildInfo.commit))"

/// Loads (and validates) a configuration, or prints why it is invalid and exits with status 2. `checkingCertificates`
/// (for `validate`) also checks what serving needs: certificates that load, secrets the environment holds.
func loadConfiguration(_ path: String, checkingCertificates: Bool = false, secretsOptional: Bool = false) throws -> GatewayConfiguration {
    do {
        let configuration = try GatewayConfiguration.load(path: path, secretsOptional: secretsOptional)
        if checkingCertificates {
            try configuration.checkServingSecrets()
            try GatewayConfiguration.checkCertificates(configuration)
        }
        return configuration
    } catch let error as ConfigError {
        printError("invalid configuration: \(error)")
    } catch let errors as ConfigErrors {
        printError("invalid configuration (\(errors.errors.count) problems):\n\(errors)")
    } catch {
        printError("invalid configuration: \(path): \(error)")
    }
    throw ExitCode(2)
}

func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleWriter.writeToStandardError(string)
    }
}
