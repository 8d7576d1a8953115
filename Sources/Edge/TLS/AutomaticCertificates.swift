import ACME
import Foundation
import Logging
import NIOCore
import NIOSSL
import RateLimit
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
        var storage: FileACMEStorage
        var task: Task<Void, Never>?
        /// New on-demand orders (one key), with `on_demand`.
        var onDemandRate: LimiterTable?
    }
    private let running = Mutex<Running?>(nil)
    private let started = Atomic<Bool>(false)
    /// Handshakes waiting for an on-demand certificate, by name.
    private let waiting = Mutex<[String: [HandshakeWaiter]]>([:])
    /// Names being obtained on demand at once, at most (more handshakes get the default certificate).
    static let maxConcurrentOnDemand = 64
    /// How long a handshake waits for an on-demand certificate before it goes on with the default one.
    static let onDemandWait = TimeAmount.seconds(10)
    let onDemandRefused = Atomic<Int>(0)
    private let onDemandLogged = Atomic<Bool>(false)

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
    /// changed, which first installs what storage already holds; nothing when they did not. Everything that can
    /// fail happens before the running manager is touched, so a refused reload leaves it as it was.
    func configure(_ configuration: GatewayConfiguration) throws {
        let names = Self.names(for: configuration, certificates: certificates)
        let acme = configuration.tls.acme
        let wanted = acme.flatMap { !names.isEmpty || $0.onDemand != nil ? $0 : nil }
        let unchanged = running.withLock { current -> Bool in
            guard let current else { return wanted == nil }
            return current.configuration == wanted && current.manager.names == names
        }
        if unchanged { return }
        var next: Running?
        if let wanted {
            let storage = try FileACMEStorage(root: wanted.storagePath)
            let certificates = self.certificates
            let logger = self.logger
            let manager = try CertificateManager(
                configuration: wanted, names: names, storage: storage, responder: responder, logger: logger
            ) { issued in
                do {
                    let key = try Self.certifiedKey(issued)
                    for name in issued.names { try certificates.install(key, name: name) }
                    logger.info("installed the certificate for \(issued.names.joined(separator: ", ")), valid until \(issued.notAfter)")
                } catch {
                    logger.error("cannot install the certificate for \(issued.names.joined(separator: ", ")): \(error)")
                }
            }
            next = Running(manager: manager, configuration: wanted, storage: storage, task: nil, onDemandRate: wanted.onDemand.map {
                LimiterTable(policy: Policy(rates: [Rate(count: $0.rateCount, period: UInt64($0.ratePeriod * 1e9), burst: $0.rateCount)]), capacity: 1024)
            })
        }
        let replaced = running.withLock { running -> Running? in
            defer { running = next }
            return running
        }
        responder.share(through: next?.storage)
        if let replaced {
            Task {
                replaced.task?.cancel()
                await replaced.task?.value
                await replaced.manager.shutdown()
            }
        }
        if let next, let acme = wanted {
            let stored = next.manager.installStored()
            let fromStorage = stored.isEmpty ? "" : "; \(stored.count) served from storage at once"
            let onDemand = acme.onDemand == nil ? "" : "; more on demand"
            logger.info("ACME manages \(names.count) name(s) with \(acme.directory): \(names.joined(separator: ", "))\(fromStorage)\(onDemand)")
        }
        let onDemand = running.withLock { $0?.configuration.onDemand != nil }
        if onDemand {
            if certificates.certificate(forServerName: nil) == nil {
                // Nothing to present yet: a self-signed stand-in lets handshakes reach the on-demand callback.
                try certificates.install(Self.certifiedKey(IssuedCertificate.selfSigned(name: "vantage.invalid")), name: "vantage.invalid")
            }
            try certificates.setUnknownNameHandler { [weak self] name, promise in
                self?.handshake(name: name, promise: promise) ?? false
            }
        } else {
            try certificates.setUnknownNameHandler(nil)
        }
        if started.load(ordering: .relaxed) { startTask() }
    }

    static func certifiedKey(_ issued: IssuedCertificate) throws -> CertifiedKey {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(issued.chainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(issued.keyPEM.utf8), format: .pem)
        return CertifiedKey(chain: chain, privateKey: key, names: issued.names)
    }

    // MARK: - On demand

    /// One handshake's promise, completed once: with the new certificate, or with no change (the default one).
    final class HandshakeWaiter: Sendable {
        let promise: EventLoopPromise<NIOSSLContextConfigurationOverride>
        private let done = Atomic<Bool>(false)

        init(_ promise: EventLoopPromise<NIOSSLContextConfigurationOverride>) { self.promise = promise }

        func complete(with key: CertifiedKey?) {
            guard done.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
            var override = NIOSSLContextConfigurationOverride()
            if let key {
                override.certificateChain = key.chain.map { .certificate($0) }
                override.privateKey = .privateKey(key.privateKey)
            }
            promise.succeed(override)
        }
    }

    /// A handshake for a name no certificate matches (called on its event loop): with `on_demand`, hold the
    /// handshake while the name is checked and its certificate fetched from storage or ordered, at most
    /// `onDemandWait`. False leaves the handshake to the default certificate at once.
    func handshake(name rawName: String, promise: EventLoopPromise<NIOSSLContextConfigurationOverride>) -> Bool {
        let name = rawName.lowercased()
        guard ACMEConfiguration.isManageable(name),
            let (manager, onDemand, rate) = running.withLock({ running in
                running.flatMap { current in current.configuration.onDemand.map { (current.manager, $0, current.onDemandRate) } }
            })
        else { return false }
        let waiter = HandshakeWaiter(promise)
        let first = waiting.withLock { waiting -> Bool? in
            if waiting[name] != nil {
                waiting[name]!.append(waiter)
                return false
            }
            guard waiting.count < Self.maxConcurrentOnDemand else { return nil }
            waiting[name] = [waiter]
            return true
        }
        guard let first else { return false }
        promise.futureResult.eventLoop.scheduleTask(in: Self.onDemandWait) { waiter.complete(with: nil) }
        guard first else { return true }
        let logger = self.logger
        Task {
            var key: CertifiedKey?
            if manager.onDemandCount < onDemand.maxNames, await manager.permitsOnDemand(name) {
                let mayOrder: @Sendable () -> Bool = { [weak self] in
                    let now = NIODeadline.now().uptimeNanoseconds
                    let allowed = rate?.check(key: 1, now: now, day: 0).allowed ?? true
                    if !allowed { self?.noteOnDemandRefusal("the on-demand rate (\(onDemand.rateCount) per \(Int(onDemand.ratePeriod)) s) is spent") }
                    return allowed
                }
                do {
                    key = try Self.certifiedKey(try await manager.certificate(onDemandFor: name, mayOrder: mayOrder))
                } catch {
                    logger.debug("no on-demand certificate for \(name): \(error)")
                }
            } else {
                noteOnDemandRefusal("a handshake for \(name), which on_demand does not allow (or max_names is reached)")
            }
            let waiters = waiting.withLock { $0.removeValue(forKey: name) ?? [] }
            for waiter in waiters { waiter.complete(with: key) }
        }
        return true
    }

    private func noteOnDemandRefusal(_ what: String) {
        onDemandRefused.add(1, ordering: .relaxed)
        if onDemandLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            logger.warning("on-demand TLS refused \(what); such refusals are counted in vantage_acme_on_demand_refused_total (logged once)")
        }
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
        guard let current = running.withLock({ running -> Running? in
            defer { running = nil }
            return running
        }) else { return }
        current.task?.cancel()
        await current.task?.value
        await current.manager.shutdown()
    }

    /// The obtained certificates' names and expiry (for `/health`).
    var expiries: [HealthVerdict.Certificate] {
        guard let manager = running.withLock({ $0?.manager }) else { return [] }
        return manager.statuses.compactMap { status in
            status.notAfter.map { HealthVerdict.Certificate(name: status.name, notAfter: $0) }
        }
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
        if running.withLock({ $0?.configuration.onDemand != nil }) {
            text += "# TYPE vantage_acme_on_demand_refused_total counter\n"
            text += "vantage_acme_on_demand_refused_total \(onDemandRefused.load(ordering: .relaxed))\n"
        }
    }
}
