import NIOCore
import NIOSSL
import Synchronization

/// A certificate chain with its private key and the host names it is served for.
public struct CertifiedKey: Sendable {
    /// Leaf first.
    public var chain: [NIOSSLCertificate]
    public var privateKey: NIOSSLPrivateKey
    /// Lower-cased names, exact or `*.suffix`.
    public var names: [String]

    /// Creates a certified key; when `names` is empty the certificate's DNS subject alternative names are used.
    public init(chain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey, names: [String] = []) {
        self.chain = chain
        self.privateKey = privateKey
        self.names = names.isEmpty ? Self.dnsNames(of: chain.first) : names.map { $0.lowercased() }
    }

    /// Loads PEM files.
    public static func load(certificatePath: String, keyPath: String, names: [String] = []) throws -> CertifiedKey {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        guard !chain.isEmpty else { throw GatewayError(message: "\(certificatePath) holds no certificate") }
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        return CertifiedKey(chain: chain, privateKey: key, names: names)
    }

    static func dnsNames(of certificate: NIOSSLCertificate?) -> [String] {
        guard let certificate else { return [] }
        return certificate._subjectAlternativeNames().compactMap { name in
            guard name.nameType == .dnsName else { return nil }
            return String(decoding: name.contents, as: UTF8.self).lowercased()
        }
    }
}


/// Where TLS listeners get their certificates: anything that can answer "which certificate for this SNI name".
///
/// The static store below serves PEM files from the config; ACME installs into the same store, so a renewal swaps
/// the certificate for new handshakes without a restart while established connections keep theirs.
public protocol CertificateProvider: Sendable {
    /// The certificate for a server name (nil when the client sent no SNI); nil falls back to the default.
    func certificate(forServerName name: String?) -> CertifiedKey?
}

/// The certificate store: certificates by name, a default, and the TLS context built from them.
///
/// Two sources fill it: the config's certificate files (`replaceStatic`, at start and on reload) and ACME
/// (`install`, per name, whenever a certificate is obtained or renewed). A static certificate wins for the names it
/// covers; a reload replaces the static ones and keeps what ACME installed. Every change builds a new context, which
/// new handshakes pick up while established connections keep theirs.
///
/// Reading the current context is one uncontended lock per connection. The SNI callback is installed only when more
/// than one certificate is present, so a single-certificate setup pays nothing per handshake for it.
public final class CertificateStore: CertificateProvider, Sendable {
    struct State {
        var staticKeys: [CertifiedKey] = []
        /// ACME's certificates by the name they were issued for.
        var managed: [String: CertifiedKey] = [:]
        /// Static first (the first is the default), then managed ones in name order.
        var keys: [CertifiedKey] = []
        var exact: [String: Int] = [:]
        var wildcard: [String: Int] = [:]
        var context: NIOSSLContext?
    }

    /// Asked at a handshake for a name no certificate matches: true when it takes the promise (and completes it
    /// later, on-demand TLS), false to go on with the default certificate.
    typealias UnknownNameHandler = @Sendable (String, EventLoopPromise<NIOSSLContextConfigurationOverride>) -> Bool

    private let state = Mutex(State())
    private let unknownNameHandler = Mutex<UnknownNameHandler?>(nil)
    /// Serializes rebuilds, so a reload and an ACME install cannot interleave and lose one another's change.
    private let rebuild = Mutex<Void>(())
    private let minimumVersion: TLSVersion

    /// Creates an empty store; `replaceStatic` and `install` fill it.
    public init(minimumVersion: TLSVersion = .tlsv12) {
        self.minimumVersion = minimumVersion
    }

    /// The modern cipher list for TLS 1.2 (TLS 1.3 suites are fixed by BoringSSL and all AEAD): ECDHE only, AEAD
    /// only, no CBC and no SHA-1.
    static let tls12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Replaces the certificates from config files (load and reload). The first becomes the default.
    public func replaceStatic(with keys: [CertifiedKey]) throws {
        try update { $0.staticKeys = keys }
    }

    /// Installs or replaces the ACME certificate for `name` (after issuance or renewal).
    public func install(_ key: CertifiedKey, name: String) throws {
        try update { $0.managed[name] = key }
    }

    /// Sets (or clears) the handler for names no certificate matches; the SNI callback is installed while one is set.
    func setUnknownNameHandler(_ handler: UnknownNameHandler?) throws {
        unknownNameHandler.withLock { $0 = handler }
        try update { _ in }
    }

    /// Whether a static certificate covers `name` (exactly, or by a wildcard for one label): ACME leaves it alone.
    public func staticallyCovers(_ name: String) -> Bool {
        let parent = name.firstIndex(of: ".").map { "*" + name[$0...] }
        return state.withLock { state in
            state.staticKeys.contains { $0.names.contains(name) || (parent != nil && $0.names.contains(parent!)) }
        }
    }

    private func update(_ change: (inout State) -> Void) throws {
        try rebuild.withLock { _ in
            var next = state.withLock { $0 }
            change(&next)
            var keys = next.staticKeys
            for name in next.managed.keys.sorted() { keys.append(next.managed[name]!) }
            let context = try makeContext(keys)
            var indexed = Self.index(keys)
            indexed.staticKeys = next.staticKeys
            indexed.managed = next.managed
            indexed.context = context
            state.withLock { $0 = indexed }
        }
    }

    /// The context new connections use.
    public var currentContext: NIOSSLContext? {
        state.withLock { $0.context }
    }

    public func certificate(forServerName name: String?) -> CertifiedKey? {
        matchingCertificate(forServerName: name) ?? state.withLock { $0.keys.first }
    }

    /// The certificate whose names match `name` exactly or by wildcard; nil when only the default would do.
    func matchingCertificate(forServerName name: String?) -> CertifiedKey? {
        guard let name = name?.lowercased() else { return nil }
        return state.withLock { state in
            if let index = state.exact[name] { return state.keys[index] }
            if let dot = name.firstIndex(of: "."), let index = state.wildcard[String(name[name.index(after: dot)...])] {
                return state.keys[index]
            }
            return nil
        }
    }

    private static func index(_ keys: [CertifiedKey]) -> State {
        var state = State()
        state.keys = keys
        for (index, key) in keys.enumerated() {
            for name in key.names {
                if name.hasPrefix("*.") {
                    state.wildcard[String(name.dropFirst(2))] = state.wildcard[String(name.dropFirst(2))] ?? index
                } else {
                    state.exact[name] = state.exact[name] ?? index
                }
            }
        }
        return state
    }

    private func makeContext(_ keys: [CertifiedKey]) throws -> NIOSSLContext? {
        guard let first = keys.first else { return nil }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: first.chain.map { .certificate($0) }, privateKey: .privateKey(first.privateKey))
        configuration.minimumTLSVersion = minimumVersion
        configuration.cipherSuites = Self.tls12Ciphers
        configuration.applicationProtocols = ["h2", "http/1.1"]
        if keys.count > 1 || unknownNameHandler.withLock({ $0 != nil }) {
            configuration.sslContextCallback = { [weak self] values, promise in
                guard let self else {
                    promise.succeed(.noChanges)
                    return
                }
                if let name = values.serverHostname, self.matchingCertificate(forServerName: name) == nil,
                    let handler = self.unknownNameHandler.withLock({ $0 }), handler(name, promise)
                {
                    return
                }
                guard let chosen = self.certificate(forServerName: values.serverHostname) else {
                    promise.succeed(.noChanges)
                    return
                }
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = chosen.chain.map { .certificate($0) }
                override.privateKey = .privateKey(chosen.privateKey)
                promise.succeed(override)
            }
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
