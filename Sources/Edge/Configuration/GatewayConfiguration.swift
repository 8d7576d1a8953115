import ACME
import Config
import RequestTarget
import Links
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Static
import Tracking

/// The whole `vantage.yaml`: listeners, TLS, sites and their routes, limits, logging and the admin listener.
///
/// Every key is documented in `docs/CONFIG.md`. Parsing checks everything that can be checked before listening
/// (files exist, certificates parse, addresses are valid) and reports the first problem with file, line and key.
public struct GatewayConfiguration: Sendable {
    /// Plain HTTP listen addresses (`listen.http`).
    public var httpListeners: [ListenAddress] = []
    /// TLS listen addresses (`listen.https`).
    public var httpsListeners: [ListenAddress] = []
    /// TLS settings.
    public var tls = TLSSettings()
    /// Sites in file order.
    public var sites: [SiteConfiguration] = []
    /// Connection and request limits.
    public var limits = Limits()
    /// In-memory static file cache.
    public var staticCache = StaticCacheConfiguration()
    /// Where the JSON access log goes.
    public var accessLog = AccessLogSettings()
    /// The admin listener.
    public var admin = AdminSettings()
    /// Events per request, the spool and the ClickHouse sink.
    public var tracking = TrackingConfiguration()
    /// `links:` where short links are kept; nil when neither this key nor a `links` route is configured.
    public var links: LinksConfiguration?
    /// Peers whose `X-Forwarded-For` is believed.
    public var trustedProxies: [CIDR] = []
    /// How long in-flight requests may take to finish on SIGTERM.
    public var shutdownTimeout: Duration = .seconds(10)
    /// Event loop threads; defaults to the number of cores.
    public var threads: Int = availableCores()
    /// Minimum level of the process log.
    public var logLevel: Logger.Level = .info
    /// Where the config came from, for reload.
    public var sourcePath: String = ""

    /// The top-level keys.
    public static let keys = [
        "listen", "tls", "sites", "limits", "static_cache", "access_log", "admin", "tracking", "links", "trusted_proxies",
        "shutdown_timeout", "threads", "log_level",
    ]

    /// A configuration with nothing in it (tests build on it).
    public init() {}

    /// Refuses a configuration that can be read but not served: secrets it names that the environment lacks.
    /// `run`, reloads and `validate` call it; tools that only need paths from the file (`events`, `erase`) do not.
    public func checkServingSecrets() throws {
        if let missing = admin.missingToken { throw missing }
    }

    /// Loads and validates a file.
    /// `secretsOptional`: for commands that read only the data folders, unset secret variables are not an error.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment, secretsOptional: Bool = false
    ) throws -> GatewayConfiguration {
        let document = try ConfigDocument.load(path: path, environment: environment, secretsOptional: secretsOptional)
        var configuration = try GatewayConfiguration(from: document.root)
        configuration.sourcePath = path
        return configuration
    }

    /// Reads the root mapping. Sections, sites and routes are read independently, and every problem found is
    /// reported at once (``ConfigErrors``), not only the first.
    public init(from root: ConfigNode) throws {
        var problems = ConfigProblems()
        let map = try root.mapping(keys: Self.keys, problems: &problems)
        let listen = try problems.collect { try map.required("listen", expected: "a mapping with http and/or https addresses") }
        if let listen {
            _ = try problems.collect {
                let listenMap = try listen.mapping(keys: ["http", "https"])
                if let value = listenMap["http"] { httpListeners = try value.listenAddresses() }
                if let value = listenMap["https"] { httpsListeners = try value.listenAddresses() }
                if httpListeners.isEmpty && httpsListeners.isEmpty {
                    throw listen.error("expected at least one address in listen.http or listen.https")
                }
            }
        }
        if let value = map["tls"] { tls = try problems.collect { try TLSSettings(from: value) } ?? tls }
        if !httpsListeners.isEmpty && tls.certificates.isEmpty && tls.acme == nil && tls.internalAuthority == nil,
            let node = map["tls"] ?? listen
        {
            _ = try problems.collect {
                throw node.error(
                    "listen.https needs certificates: tls.acme { email } for automatic ones, tls.internal: true for a local authority's, or tls.certificates (cert and key PEM files)")
            }
        }
        if let value = map["limits"] { limits = try problems.collect { try Limits(from: value) } ?? limits }
        if let value = map["static_cache"] {
            staticCache = try problems.collect { try StaticCacheConfiguration(from: value) } ?? staticCache
        }
        if let value = map["access_log"] { accessLog = try problems.collect { try AccessLogSettings(from: value) } ?? accessLog }
        let adminRead = try map["admin"].map { value in try problems.collect { try AdminSettings(from: value) } }
        if let read = adminRead { admin = read ?? admin }
        if let value = map["tracking"] { tracking = try problems.collect { try TrackingConfiguration(from: value) } ?? tracking }
        if let value = map["links"] { links = try problems.collect { try LinksConfiguration(from: value) } ?? links }
        if let value = map["trusted_proxies"] {
            trustedProxies = try problems.collect {
                try value.list().map { item in
                    let text = try item.string()
                    guard let cidr = CIDR(text) else {
                        throw item.mismatch(expected: "an address or network such as 10.0.0.0/8 or ::1")
                    }
                    return cidr
                }
            } ?? []
        }
        if let value = map["shutdown_timeout"] { shutdownTimeout = try problems.collect { try value.duration() } ?? shutdownTimeout }
        if let value = map["threads"] {
            threads = try problems.collect { try value.string() == "auto" ? availableCores() : try value.int(in: 1...256) } ?? threads
        }
        if let value = map["log_level"] {
            logLevel = try problems.collect {
                Logger.Level(rawValue: try value.oneOf(Logger.Level.allCases.map(\.rawValue)))!
            } ?? logLevel
        }
        var siteNodes: [ConfigNode] = []
        let sitesNode = try problems.collect { try map.required("sites", expected: "a list of sites") }
        if let sitesNode {
            siteNodes = try problems.collect { try sitesNode.list() } ?? []
            if siteNodes.isEmpty { _ = try problems.collect { throw sitesNode.error("expected at least one site") } }
            let limits = self.limits
            sites = try siteNodes.compactMap { node in try problems.collect { try SiteConfiguration(from: node, limits: limits) } }
        }
        // What follows relates sections to each other: only meaningful once each reads well.
        try problems.throwIfAny()
        guard let sitesNode else { return }
        var seenHosts: [String: String] = [:]
        var defaultSites = 0
        for (index, site) in sites.enumerated() {
            if site.isDefault { defaultSites += 1 }
            for host in site.hosts {
                if let other = seenHosts[host] {
                    _ = try problems.collect { throw siteNodes[index].error("host \"\(host)\" is already served by \(other)") }
                }
                seenHosts[host] = "sites[\(index)]"
            }
        }
        if defaultSites > 1 {
            _ = try problems.collect { throw sitesNode.error("only one site may be the default (hosts omitted or \"*\")") }
        }
        // The reports on a public listener: only for people who sign in (or hold a share link).
        for (index, site) in sites.enumerated() {
            for route in site.routes where { if case .insights = route.handler { true } else { false } }() {
                guard admin.tokenEnvironmentVariable != nil else {
                    _ = try problems.collect {
                        throw siteNodes[index].error(
                            "the insights route \(route.pathPrefix) shows this site's analytics to anyone who reaches it: set admin.token_env, so people sign in with the admin token (or open a share link)")
                    }
                    continue
                }
            }
        }
        // Compatibility profiles and webhooks answer through the tracking pipeline.
        if !tracking.enabled {
            for (index, site) in sites.enumerated() {
                if !(site.compat ?? tracking.compat).isEmpty {
                    _ = try problems.collect {
                        throw siteNodes[index].error("compat needs tracking (tracking.enabled is false): the older systems' endpoints record events")
                    }
                }
                for route in site.routes where { if case .webhook = route.handler { true } else { false } }() {
                    _ = try problems.collect {
                        throw siteNodes[index].error(
                            "the webhook route \(route.pathPrefix) needs tracking (tracking.enabled is false): its deliveries are recorded as events")
                    }
                }
            }
        }
        try problems.throwIfAny()
        // A `links` route needs the store: the defaults serve when the key is absent.
        let usesLinks = sites.contains { site in
            site.routes.contains { if case .links = $0.handler { true } else { false } }
        }
        if usesLinks && links == nil { links = LinksConfiguration() }
    }
}

/// `tls:` settings.
public struct TLSSettings: Sendable {
    /// One certificate and its key.
    public struct CertificateFiles: Sendable, Equatable {
        public var certificatePath: String
        public var keyPath: String
        /// Names to serve it for; empty means the names in the certificate itself.
        public var hosts: [String]
    }

    /// Certificates; the first is the default for clients without SNI or with an unknown name.
    public var certificates: [CertificateFiles] = []
    /// Lowest TLS version: 1.2 (default) or 1.3.
    public var minimumVersion = "1.2"
    /// Automatic certificates for every site host not covered by `certificates`.
    public var acme: ACMEConfiguration?
    /// `internal`: the folder of a local certificate authority that issues the sites' certificate (nil: none).
    public var internalAuthority: String?

    init() {}

    init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: ["certificates", "min_version", "acme", "internal"])
        if let value = map["acme"] { acme = try ACMEConfiguration(from: value) }
        if let value = map["internal"] {
            // `internal: true` keeps the authority in data/tls-internal (from the working directory, as ACME's
            // storage); `internal: { storage: DIR }` elsewhere.
            if let enabled = try? value.bool() {
                internalAuthority = enabled ? "data/tls-internal" : nil
            } else {
                let internalMap = try value.mapping(keys: ["storage"])
                internalAuthority = try internalMap["storage"]?.path() ?? "data/tls-internal"
            }
            if internalAuthority != nil && acme != nil { throw value.error("choose internal or acme: both would issue the sites' certificates") }
        }
        if let value = map["certificates"] {
            certificates = try value.list().map { item in
                let entry = try item.mapping(keys: ["cert", "key", "hosts"])
                let certNode = try entry.required("cert", expected: "a PEM certificate file")
                let keyNode = try entry.required("key", expected: "a PEM private key file")
                let cert = try certNode.path(), key = try keyNode.path()
                for (node, path) in [(certNode, cert), (keyNode, key)] where !FileManager.default.isReadableFile(atPath: path) {
                    throw node.error("expected a readable file, found \"\(path)\" which is missing or unreadable")
                }
                let hosts = try entry["hosts"]?.stringList().map { $0.lowercased() } ?? []
                return CertificateFiles(certificatePath: cert, keyPath: key, hosts: hosts)
            }
        }
        if let value = map["min_version"] { minimumVersion = try value.oneOf(["1.2", "1.3"]) }
    }
}

/// `limits:` settings: what a client may ask for before it is cut off.
public struct Limits: Sendable, Equatable {
    /// Time to receive a complete request head once its first byte arrived (slowloris), default 10s.
    public var headerTimeout: Duration = .seconds(10)
    /// Time a keep-alive connection may sit idle between requests, default 75s.
    public var idleTimeout: Duration = .seconds(75)
    /// Largest request head (request line and headers), default 16KB; larger gets 431.
    public var maxHeaderSize = 16 << 10
    /// Longest request target, default 8KB; longer gets 414.
    public var maxURILength = 8 << 10
    /// Largest request body unless a site or route says otherwise, default 10MB; larger gets 413.
    public var maxBodySize = 10 << 20
    /// Concurrent HTTP/2 streams per connection, default 128.
    public var http2MaxConcurrentStreams = 128
    /// Largest decoded HTTP/2 header list, default 16KB.
    public var http2MaxHeaderListSize = 16 << 10
    /// Open client connections at most (beyond, one 503 answer each, and past a tenth more closed at once), default 20000.
    public var maxConnections = 20_000
    /// Longest wait for the next piece of a request body, default 60s (nginx's `client_body_timeout`); a stalled
    /// upload gets 408 and its connection closes.
    public var bodyTimeout: Duration = .seconds(60)
    /// Slowest request body accepted once it has run for `body_timeout`, in bytes per second; 0 turns it off.
    /// Default 500 (Apache's `mod_reqtimeout` MinRate): a trickle cannot hold a connection for hours.
    public var bodyMinRate = 500
    /// Longest time a response may make no progress towards a client that does not read (a full TCP buffer, or an
    /// HTTP/2 stream whose flow-control window stays closed), default 60s (nginx's `send_timeout`).
    public var sendTimeout: Duration = .seconds(60)
    /// What `%2F` and `%5C` in a path mean: `reject` (400, the default), `decode` or `keep`.
    public var encodedSlashes = EncodedSlashPolicy.reject

    static let keys = [
        "header_timeout", "idle_timeout", "max_header_size", "max_uri_length", "max_body_size",
        "h2_max_concurrent_streams", "h2_max_header_list_size", "max_connections", "body_timeout", "body_min_rate",
        "send_timeout", "encoded_slashes",
    ]

    public init() {}

    init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        if let value = map["header_timeout"] { headerTimeout = try value.duration() }
        if let value = map["idle_timeout"] { idleTimeout = try value.duration() }
        if let value = map["max_header_size"] { maxHeaderSize = try value.byteSize() }
        if let value = map["max_uri_length"] { maxURILength = try value.byteSize() }
        if let value = map["max_body_size"] { maxBodySize = try value.byteSize() }
        if let value = map["h2_max_concurrent_streams"] { http2MaxConcurrentStreams = try value.int(in: 1...10_000) }
        if let value = map["h2_max_header_list_size"] { http2MaxHeaderListSize = try value.byteSize() }
        if let value = map["max_connections"] { maxConnections = try value.int(in: 1...10_000_000) }
        if let value = map["body_timeout"] { bodyTimeout = try value.duration() }
        if let value = map["body_min_rate"] { bodyMinRate = try value.byteSize() }
        if let value = map["send_timeout"] { sendTimeout = try value.duration() }
        if let value = map["encoded_slashes"] {
            let word = try value.string()
            guard let policy = EncodedSlashPolicy(rawValue: word) else {
                throw value.error("expected reject, decode or keep, found \"\(word)\"")
            }
            encodedSlashes = policy
        }
    }
}

/// `access_log:` settings: `access_log: PATH` or `{ output, format, fields }`.
public struct AccessLogSettings: Sendable, Equatable {
    /// `stdout`, `stderr`, `off` or a file path.
    public var output = "stdout"
    /// `json` (with `fields`) or `combined`.
    public var format = AccessLogFormat()

    init() {}

    init(from node: ConfigNode) throws {
        var outputNode = node
        if (try? node.string()) == nil {
            let map = try node.mapping(keys: ["output", "format", "fields"])
            format = try AccessLogFormat(format: map["format"], fields: map["fields"])
            guard let value = map["output"] else { return }
            outputNode = value
        }
        output = try outputNode.nonEmptyString()
        // A file path (relative ones from the config file's folder); the streams and `off` are words.
        if !["stdout", "stderr", "off"].contains(output) { output = try outputNode.path() }
    }
}

/// `admin:` settings.
public struct AdminSettings: Sendable, Equatable {
    /// Where `/health` and `/metrics` listen; nil turns the admin listener off. Default `127.0.0.1:9901`.
    public var listen: ListenAddress? = try? ListenAddress(parsing: "127.0.0.1:9901")
    /// Environment variable that holds the bearer token; when set, every admin call but `/health` needs it.
    public var tokenEnvironmentVariable: String?
    /// The token itself, read from the environment at load.
    public var token: String?
    /// Set when `token_env` names a variable that is unset or empty: serving refuses to start (an admin API meant
    /// to be closed must not open because a deploy lost the variable); tools that only read the file go on.
    public var missingToken: ConfigError?
    /// `health.max_backlog_age`: events older than this still waiting for ClickHouse make `/health` degraded.
    public var maxBacklogAge: Duration = .seconds(900)
    /// `health.certificate_warning`: a certificate expiring within this makes `/health` degraded.
    public var certificateWarning: Duration = .seconds(14 * 86_400)

    init() {}

    init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: ["listen", "token_env", "health"])
        if let value = map["health"] {
            let health = try value.mapping(keys: ["max_backlog_age", "certificate_warning"])
            if let age = health["max_backlog_age"] { maxBacklogAge = try age.duration() }
            if let warning = health["certificate_warning"] { certificateWarning = try warning.duration() }
        }
        if let value = map["listen"] {
            let text = try value.string()
            if text == "off" { listen = nil } else { listen = try value.listenAddresses().first }
        }
        if let value = map["token_env"] {
            let name = try value.nonEmptyString()
            tokenEnvironmentVariable = name
            token = value.environmentValue(name).flatMap { $0.isEmpty ? nil : $0 }
            if token == nil {
                missingToken = value.error("expected the environment variable \(name) to hold the admin token; it is unset or empty")
            }
        }
    }
}
