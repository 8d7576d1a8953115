import AsyncHTTPClient
import Foundation
import Logging
import NIOSSL
import Synchronization

/// Obtains, stores, installs and renews the certificates of a set of names, one certificate per name.
///
/// At start, stored certificates that are still valid are installed at once (no network). Then every name has a
/// loop: sleep until its renewal date, take the storage lock for the name, look again (another process may have
/// renewed it), order, answer the HTTP-01 challenge, finalize, store, install. A failure is logged with what the
/// CA said, counted, shown in ``statuses``, and retried with a growing backoff; the installed certificate keeps
/// serving until a new one replaces it.
public final class CertificateManager: Sendable {
    /// What the admin health output and `/metrics` show for one name.
    public struct NameStatus: Sendable {
        public var name: String
        /// `pending` (nothing yet), `valid`, `renewing`, `failing`.
        public var state = "pending"
        public var notAfter: Date?
        public var renewAt: Date?
        public var failures = 0
        public var lastError: String?
        public var nextAttempt: Date?
    }

    public let configuration: ACMEConfiguration
    public let names: [String]
    private let storage: any ACMEStorage
    private let responder: HTTP01Responder
    private let client: ACMEClient
    private let install: @Sendable (IssuedCertificate) -> Void
    private let logger: Logger
    private let statusTable: Mutex<[String: NameStatus]>
    private let account = Mutex<(key: AccountKey, url: String)?>(nil)
    /// What was last handed to `install`, per name (so a loop does not reinstall the same certificate).
    private let installed = Mutex<[String: Date]>([:])
    private let started = Date()
    /// Renewal loops of names taken on demand (cancelled when `run` ends).
    private let onDemandLoops = Mutex<[String: Task<Void, Never>]>([:])
    private let asker = HTTPClient(eventLoopGroupProvider: .singleton)
    let ordersSucceeded = Atomic<Int>(0)
    let ordersFailed = Atomic<Int>(0)

    /// `install` is called with every certificate to serve (stored or new), from any thread.
    public init(
        configuration: ACMEConfiguration, names: [String], storage: any ACMEStorage, responder: HTTP01Responder,
        logger: Logger, install: @escaping @Sendable (IssuedCertificate) -> Void
    ) throws {
        self.configuration = configuration
        self.names = names
        self.storage = storage
        self.responder = responder
        self.logger = logger
        self.install = install
        var roots: [NIOSSLCertificate]?
        if let path = configuration.caRootPath {
            roots = try NIOSSLCertificate.fromPEMFile(path)
        }
        client = ACMEClient(directoryURL: configuration.directory, trustRoots: roots, logger: logger)
        statusTable = Mutex(Dictionary(uniqueKeysWithValues: names.map { ($0, NameStatus(name: $0)) }))
    }

    /// Orders that ended with a certificate, and attempts that failed.
    public var orderCounts: (succeeded: Int, failed: Int) {
        (ordersSucceeded.load(ordering: .relaxed), ordersFailed.load(ordering: .relaxed))
    }

    /// Every managed name's status: the configured names first, then on-demand ones.
    public var statuses: [NameStatus] {
        statusTable.withLock { table in
            names.compactMap { table[$0] } + table.keys.filter { !names.contains($0) }.sorted().compactMap { table[$0] }
        }
    }

    private func update(_ name: String, _ change: (inout NameStatus) -> Void) {
        statusTable.withLock { table in change(&table[name, default: NameStatus(name: name)]) }
    }

    // MARK: - Storage layout

    private var certificateFolder: String { "certificates/\(configuration.caIdentifier)" }

    private func loadStored(_ name: String) -> IssuedCertificate? {
        do {
            guard let chain = try storage.load("\(certificateFolder)/\(name)/chain.pem"),
                let key = try storage.load("\(certificateFolder)/\(name)/key.pem")
            else { return nil }
            return try IssuedCertificate(names: [name], chainPEM: String(decoding: chain, as: UTF8.self), keyPEM: String(decoding: key, as: UTF8.self))
        } catch {
            logger.warning("the stored certificate for \(name) cannot be read (\(error)); a new one will be ordered")
            return nil
        }
    }

    private func save(_ certificate: IssuedCertificate, name: String) throws {
        // The key first: a chain is only ever read together with a key that matches or is newer.
        try storage.store("\(certificateFolder)/\(name)/key.pem", Data(certificate.keyPEM.utf8))
        try storage.store("\(certificateFolder)/\(name)/chain.pem", Data(certificate.chainPEM.utf8))
    }

    private func serve(_ certificate: IssuedCertificate, name: String) {
        let isNew = installed.withLock { installed -> Bool in
            guard installed[name] != certificate.notAfter else { return false }
            installed[name] = certificate.notAfter
            return true
        }
        if isNew { install(certificate) }
    }

    // MARK: - Running

    /// Installs every stored certificate that has not expired; returns the names it installed. Call before the
    /// listeners start, so a restart serves HTTPS at once.
    @discardableResult
    public func installStored(now: Date = Date()) -> [String] {
        var found: [String] = []
        for name in names {
            guard let stored = loadStored(name), stored.notAfter > now else { continue }
            serve(stored, name: name)
            update(name) {
                $0.state = "valid"
                $0.notAfter = stored.notAfter
                $0.renewAt = configuration.policy.renewalDate(notBefore: stored.notBefore, notAfter: stored.notAfter)
            }
            found.append(name)
        }
        return found
    }

    /// Manages every name until the task is cancelled; ``shutdown()`` afterwards.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask { await self.manage(name) }
            }
            // Names may come on demand later: the client stays up until the manager is cancelled.
            group.addTask {
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(86_400)) }
            }
        }
        let loops = onDemandLoops.withLock { loops in
            defer { loops.removeAll() }
            return Array(loops.values)
        }
        for loop in loops { loop.cancel() }
        for loop in loops { await loop.value }
    }

    /// Closes the HTTP clients; call once `run` has ended (or when it never started).
    public func shutdown() async {
        await client.shutdown()
        try? await asker.shutdown()
    }

    private func manage(_ name: String) async {
        var failures = 0
        var jitter = Double.random(in: 0...1)
        var announced: Date?
        while !Task.isCancelled {
            let now = Date()
            if let stored = loadStored(name), stored.notAfter > now {
                let due = await renewalDate(stored, jitter: jitter)
                if due > now {
                    serve(stored, name: name)
                    update(name) {
                        $0.state = $0.failures > 0 ? "failing" : "valid"
                        $0.notAfter = stored.notAfter
                        $0.renewAt = due
                    }
                    if failures == 0 && announced != due {
                        announced = due
                        logger.info("serving the stored certificate for \(name), valid until \(stored.notAfter), renewal due \(due)")
                    }
                    // Look again at least twice a day: ARI windows move, and another process may have renewed.
                    await sleep(until: min(due, now.addingTimeInterval(12 * 3600)))
                    continue
                }
            }
            update(name) { $0.state = $0.failures > 0 ? "failing" : ($0.notAfter == nil ? "pending" : "renewing") }
            do {
                let certificate = try await obtainLocked(name)
                serve(certificate, name: name)
                failures = 0
                jitter = Double.random(in: 0...1)
                update(name) {
                    $0.state = "valid"
                    $0.notAfter = certificate.notAfter
                    $0.failures = 0
                    $0.lastError = nil
                    $0.nextAttempt = nil
                }
            } catch is CancellationError {
                return
            } catch {
                failures += 1
                ordersFailed.add(1, ordering: .relaxed)
                let delay = configuration.policy.retryDelay(failures: failures, now: Date(), retryAfter: (error as? ACMEError)?.retryAfter)
                let next = Date().addingTimeInterval(delay)
                update(name) {
                    $0.state = "failing"
                    $0.failures = failures
                    $0.lastError = "\(error)"
                    $0.nextAttempt = next
                }
                logger.error("could not obtain a certificate for \(name) from \(configuration.directory): \(error); attempt \(failures), retrying in \(Int(delay)) s")
                await sleep(until: next)
            }
        }
    }

    // MARK: - On demand

    /// Names taken on demand so far.
    public var onDemandCount: Int { onDemandLoops.withLock { $0.count } }

    /// Whether `name` may get a certificate on demand: it matches `on_demand.allow`, or `on_demand.ask` answers 2xx
    /// for `?domain=NAME` within 5 s.
    public func permitsOnDemand(_ name: String) async -> Bool {
        guard let onDemand = configuration.onDemand, ACMEConfiguration.isManageable(name) else { return false }
        if onDemand.allows(name) { return true }
        guard let ask = onDemand.ask, var components = URLComponents(string: ask) else { return false }
        components.queryItems = (components.queryItems ?? []) + [URLQueryItem(name: "domain", value: name)]
        guard let url = components.string else { return false }
        do {
            let response = try await asker.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
            return (200..<300).contains(response.status.code)
        } catch {
            logger.warning("on-demand ask \(ask) for \(name) failed: \(error)")
            return false
        }
    }

    /// The certificate for a name asked for at a handshake: from storage when it holds a valid one (a restart),
    /// otherwise ordered now; either way installed, and renewed from then on like a configured name.
    /// `mayOrder` is asked before a new order is placed (the caller's rate limit); false ends the attempt.
    public func certificate(onDemandFor name: String, mayOrder: @Sendable () -> Bool) async throws -> IssuedCertificate {
        let certificate: IssuedCertificate
        if let stored = loadStored(name), stored.notAfter > Date() {
            certificate = stored
        } else {
            guard mayOrder() else { throw ACMEError.unexpected("the on-demand rate for new certificates is spent") }
            update(name) { $0.state = "pending" }
            do {
                certificate = try await obtainLocked(name)
            } catch {
                ordersFailed.add(1, ordering: .relaxed)
                update(name) {
                    $0.state = "failing"
                    $0.failures += 1
                    $0.lastError = "\(error)"
                }
                logger.error("could not obtain an on-demand certificate for \(name): \(error)")
                throw error
            }
        }
        serve(certificate, name: name)
        update(name) {
            $0.state = "valid"
            $0.notAfter = certificate.notAfter
        }
        onDemandLoops.withLock { loops in
            guard loops[name] == nil else { return }
            loops[name] = Task { await self.manage(name) }
        }
        return certificate
    }

    private func renewalDate(_ certificate: IssuedCertificate, jitter: Double) async -> Date {
        var window: ClosedRange<Date>?
        if let id = certificate.renewalID {
            window = try? await client.renewalWindow(certificateID: id)
        }
        return configuration.policy.renewalDate(notBefore: certificate.notBefore, notAfter: certificate.notAfter, window: window, jitter: jitter)
    }

    private func sleep(until date: Date) async {
        let seconds = date.timeIntervalSinceNow
        guard seconds > 0 else { return }
        // Rounded up: waking a moment early would only go round the loop again.
        try? await Task.sleep(for: .milliseconds(Int64((seconds * 1000).rounded(.up)) + 1))
    }

    /// Orders under the name's storage lock, unless another process renewed it while this one waited.
    private func obtainLocked(_ name: String) async throws -> IssuedCertificate {
        let before = loadStored(name)?.notAfter
        let lock = try await storage.lock("certificate-\(configuration.caIdentifier)-\(name)")
        defer { lock.unlock() }
        if let stored = loadStored(name), stored.notAfter != before, stored.notAfter > Date() {
            logger.info("another process sharing the storage obtained the certificate for \(name); using it")
            return stored
        }
        let start = Date()
        let certificate = try await obtain([name])
        try save(certificate, name: name)
        ordersSucceeded.add(1, ordering: .relaxed)
        logger.info("""
            obtained a certificate for \(name) from \(configuration.directory) in \
            \(String(format: "%.2f", Date().timeIntervalSince(start))) s (\(String(format: "%.2f", Date().timeIntervalSince(started))) s \
            after start), valid until \(certificate.notAfter)
            """)
        return certificate
    }

    // MARK: - One issuance

    /// The account: from storage, or created (under a lock, so processes sharing storage share one account).
    private func currentAccount() async throws -> (key: AccountKey, url: String) {
        if let account = account.withLock({ $0 }) { return account }
        let folder = "accounts/\(configuration.caIdentifier)/\(configuration.email ?? "default")"
        let lock = try await storage.lock("account-\(configuration.caIdentifier)")
        defer { lock.unlock() }
        let key: AccountKey
        if let pem = try storage.load("\(folder)/key.pem") {
            key = try AccountKey(pem: String(decoding: pem, as: UTF8.self))
        } else {
            key = AccountKey()
            try storage.store("\(folder)/key.pem", Data(key.pem.utf8))
        }
        // newAccount with an existing key answers the account's URL (200) instead of creating a second one.
        let url = try await client.account(
            key: key, contact: configuration.email.map { ["mailto:\($0)"] } ?? [], termsAgreed: configuration.agreeToTerms,
            binding: configuration.binding)
        if try storage.load("\(folder)/url") == nil {
            try storage.store("\(folder)/url", Data(url.utf8))
            logger.info("ACME account ready at \(url)")
        }
        account.withLock { $0 = (key, url) }
        return (key, url)
    }

    func obtain(_ names: [String]) async throws -> IssuedCertificate {
        var (key, accountURL) = try await currentAccount()
        let orderURL: String
        let created: Order
        do {
            (orderURL, created) = try await client.newOrder(names: names, key: key, account: accountURL)
        } catch ACMEError.problem(let problem, _, _, _) where problem.kind == "accountDoesNotExist" {
            // The CA forgot the account (a test CA restarted, an account deactivated elsewhere): look it up again
            // with the same key, which creates it anew when it is gone.
            logger.warning("the CA no longer knows account \(accountURL); registering the key again")
            account.withLock { $0 = nil }
            (key, accountURL) = try await currentAccount()
            (orderURL, created) = try await client.newOrder(names: names, key: key, account: accountURL)
        }
        var order = created
        for authorization in order.authorizations {
            try await authorize(authorization, key: key, account: accountURL)
        }
        order = try await poll(Order.self, at: orderURL, key: key, account: accountURL, what: "the order for \(names.joined(separator: ", "))") {
            $0.status != "pending" && $0.status != "processing"
        }
        guard order.status == "ready" || order.status == "valid" else {
            throw ACMEError.unexpected("the order for \(names.joined(separator: ", ")) is \(order.status): \(order.error?.description ?? "no reason given")")
        }
        let request = try IssuedCertificate.makeRequest(names: names)
        if order.status == "ready" {
            order = try await client.finalize(order, csr: request.csr, key: key, account: accountURL)
            if order.status != "valid" {
                order = try await poll(Order.self, at: orderURL, key: key, account: accountURL, what: "issuance") {
                    $0.status != "processing" && $0.status != "ready"
                }
            }
        }
        guard order.status == "valid", let certificateURL = order.certificate else {
            throw ACMEError.unexpected("the CA did not issue the certificate: order \(order.status), \(order.error?.description ?? "no reason given")")
        }
        let chain = try await client.downloadCertificate(at: certificateURL, key: key, account: accountURL)
        return try IssuedCertificate(names: names, chainPEM: chain, keyPEM: request.key.pemRepresentation)
    }

    private func authorize(_ url: String, key: AccountKey, account: String) async throws {
        let (authorization, _) = try await client.fetch(Authorization.self, at: url, key: key, account: account)
        let name = authorization.identifier.value
        if authorization.status == "valid" { return }
        guard authorization.status == "pending" else {
            throw ACMEError.unexpected("the authorization for \(name) is \(authorization.status)")
        }
        guard let challenge = authorization.challenges.first(where: { $0.type == "http-01" }), let token = challenge.token else {
            let offered = authorization.challenges.map(\.type).joined(separator: ", ")
            throw ACMEError.unexpected("the CA offers no http-01 challenge for \(name) (offered: \(offered)); Vantage answers http-01 only")
        }
        let answer = key.keyAuthorization(token: token)
        responder.add(token: token, keyAuthorization: answer)
        // Also in storage, for a process sharing it that may receive the CA's request instead of this one.
        try storage.store("challenges/\(token)", Data(answer.utf8))
        defer {
            responder.remove(token: token)
            try? storage.delete("challenges/\(token)")
        }
        try await client.respond(to: challenge, key: key, account: account)
        let final = try await poll(Authorization.self, at: url, key: key, account: account, what: "validation of \(name)") {
            $0.status != "pending"
        }
        guard final.status == "valid" else {
            let problem = final.challenges.first(where: { $0.type == "http-01" })?.error
            throw ACMEError.challengeFailed(name: name, type: "http-01", problem: problem)
        }
    }

    /// Polls a resource until `done`: soon at first (a CA often validates in milliseconds), then every second, or
    /// as the CA's `Retry-After` says; for at most two minutes.
    private func poll<T: Decodable>(
        _ type: T.Type, at url: String, key: AccountKey, account: String, what: String, done: (T) -> Bool
    ) async throws -> T {
        let deadline = Date().addingTimeInterval(120)
        var pause = 0.1
        while true {
            let (value, retryAfter) = try await client.fetch(T.self, at: url, key: key, account: account)
            if done(value) { return value }
            guard Date() < deadline else { throw ACMEError.timedOut(what) }
            let wait = min(max(retryAfter?.timeIntervalSinceNow ?? pause, 0.1), 10)
            pause = min(pause * 2, 1)
            try await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
        }
    }
}
