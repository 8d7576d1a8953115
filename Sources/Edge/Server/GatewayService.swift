import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// Runs a ``Gateway`` as a service: listens, reloads on SIGHUP, drains on graceful shutdown (SIGTERM/SIGINT).
public struct GatewayService: Service {
    let gateway: Gateway
    let logger: Logger

    /// Wraps a prepared gateway.
    public init(gateway: Gateway, logger: Logger) {
        self.gateway = gateway
        self.logger = logger
    }

    public func run() async throws {
        try gateway.start()
        let reloads = await UnixSignalsSequence(trapping: .sighup)
        for await _ in reloads.cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading configuration")
            try? await gateway.reloadInBackground()
        }
        await gateway.shutdown()
    }
}

/// The `vantage run` entry point: sets up logging and metrics, then runs the gateway until SIGTERM or SIGINT.
public enum VantageRuntime {
    /// Version printed by `vantage version` and sent nowhere else.
    public static let version = "0.1.0"

    /// Loads the config (throwing ``Config/ConfigError`` before anything listens), then serves until stopped.
    public static func run(configurationPath: String) async throws {
        let configuration = try GatewayConfiguration.load(path: configurationPath)
        try configuration.checkServingSecrets()
        MemoryReclaimer.configureAllocator()
        let openFiles = OpenFileLimit.raiseToHardLimit()
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "vantage")
        logger.debug("open files: up to \(openFiles)")
        let gateway = try Gateway(configuration: configuration, logger: logger, registry: registry)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: GatewayService(gateway: gateway, logger: logger))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
