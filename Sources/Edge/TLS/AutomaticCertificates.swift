import ACME
import Foundation
import Logging
import NIOSSL
import Synchronization

/// ACME wired into the gateway: which names get certificates, installing them into the ``CertificateStore``, the
/// manager's task across reloads, the HTTP-01 answers the request handler serves, health and metrics.
final class AutomaticCertificates: Sendable {
    /// Answers `/.well-known/acme-challenge/` on every HTTP listener while a challenge is in play.
    let responder = HTTP01Responder()
    private let certificates: CertificateStore
    private let logger: Logger
    private struct Running {
        var manager: CertificateManager
        var configuration: ACMEConfiguration
        var task: Task<Void, Never>?
    }
    private let running = Mutex<Running?>(nil)
    private let started = Atomic<Bool>(false)

    init(certificates: CertificateStore, logger: Logger) {
        self.certificates = certificates
        self.logger = logger
    }

    /// Every site host a CA can validate over HTTP-01 and no static certificate covers, plus `acme.names`.
    static func names(for configuration: GatewayConfiguration, certificates: CertificateStore) -> [String] {
        guard let acme = configuration.tls.acme else { return [] }
        var names = Set(acme.extraNames)
        for site in configuration.sites {
            for host in site.hosts where ACMEConfiguration.isManageable(host) { names.insert(host) }
        }
        return names.filter { !certificates.staticallyCovers($0) }.sorted()
    }

    /// Applies the configuration (at start and on every reload): a new manager when the ACME settings or the names
    /// changed, which first installs what storage already holds; nothing when they did not.
    func configure(_ configuration: GatewayConfiguration) throws {
        let names = Self.names(for: configuration, certificates: certificates)
        let acme = configuration.tls.acme
        let replaced = try running.withLock { running -> Task<Void, Never>? in
            if let current = running, current.configuration == acme, current.manager.names == names { return nil }
            let old = running?.task
            running = nil
            guard let acme, !names.isEmpty else { return old }
            let storage = try FileACMEStorage(root: acme.storagePath)
            let certificates = self.certificates
            let logger = self.logger
            let manager = try CertificateManager(
                configuration: acme, names: names, storage: storage, responder: responder, logger: logger
            ) { issued in
                do {
                    let chain = try NIOSSLCertificate.fromPEMBytes(Array(issued.chainPEM.utf8))
                    let key = try NIOSSLPrivateKey(bytes: Array(issued.keyPEM.utf8), format: .pem)
                    for name in issued.names {
                        try certificates.install(CertifiedKey(chain: chain, privateKey: key, names: issued.names), name: name)
                    }
                    logger.info("installed the certificate for \(issued.names.joined(separator: ", ")), valid until \(issued.notAfter)")
                } catch {
                    logger.error("cannot install the certificate for \(issued.names.joined(separator: ", ")): \(error)")
                }
            }
            let stored = manager.installStored()
            let fromStorage = stored.isEmpty ? "" : "; \(stored.count) served from storage at once"
            logger.info("ACME manages \(names.count) name(s) with \(acme.directory): \(names.joined(separator: ", "))\(fromStorage)")
            running = Running(manager: manager, configuration: acme, task: nil)
            return old
        }
        replaced?.cancel()
        if started.load(ordering: .relaxed) { startTask() }
    }

    /// Starts obtaining and renewing (after the listeners are bound: HTTP-01 needs the HTTP listener).
    func start() {
        started.store(true, ordering: .relaxed)
        startTask()
    }

    private func startTask() {
        running.withLock { running in
            guard var current = running, current.task == nil else { return }
            let manager = current.manager
            current.task = Task { await manager.run() }
            running = current
        }
    }

    func stop() async {
        let task = running.withLock { running -> Task<Void, Never>? in
            defer { running?.task = nil }
            return running?.task
        }
        task?.cancel()
        await task?.value
    }

    var healthReport: [[String: any Sendable]] {
        guard let manager = running.withLock({ $0?.manager }) else { return [] }
        let formatter = ISO8601DateFormatter()
        return manager.statuses.map { status in
            var entry: [String: any Sendable] = ["name": status.name, "state": status.state, "failures": status.failures]
            if let date = status.notAfter { entry["not_after"] = formatter.string(from: date) }
            if let date = status.renewAt { entry["renew_at"] = formatter.string(from: date) }
            if let date = status.nextAttempt { entry["next_attempt"] = formatter.string(from: date) }
            if let error = status.lastError { entry["last_error"] = error }
            return entry
        }
    }

    func renderMetrics(into text: inout String) {
        guard let manager = running.withLock({ $0?.manager }) else { return }
        let counts = manager.orderCounts
        text += "# HELP vantage_acme_orders_total ACME issuances by result (failed: attempts that will be retried).\n"
        text += "# TYPE vantage_acme_orders_total counter\n"
        text += "vantage_acme_orders_total{result=\"succeeded\"} \(counts.succeeded)\n"
        text += "vantage_acme_orders_total{result=\"failed\"} \(counts.failed)\n"
        text += "# TYPE vantage_acme_certificate_expiry_timestamp_seconds gauge\n"
        text += "# TYPE vantage_acme_consecutive_failures gauge\n"
        for status in manager.statuses {
            let name = status.name
            if let notAfter = status.notAfter {
                text += "vantage_acme_certificate_expiry_timestamp_seconds{name=\"\(name)\"} \(Int(notAfter.timeIntervalSince1970))\n"
            }
            text += "vantage_acme_consecutive_failures{name=\"\(name)\"} \(status.failures)\n"
        }
    }
}
