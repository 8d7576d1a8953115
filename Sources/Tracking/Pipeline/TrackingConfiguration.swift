import Foundation
import Config
import NIOCore

/// `tracking:` settings: whether requests become events, the spool, and the ClickHouse sink.
///
/// A reload applies visitors, privacy, client_ip, enrichment, bots, geoip and clickhouse while running; the keys
/// of ``restartOnlyChanges(to:)`` need a restart, and a reload that changes them is refused.
public struct TrackingConfiguration: Sendable, Equatable {
    /// Record an event per request (routes may still opt out with `track: false`).
    public var enabled = true
    public var spool = Spool.Configuration(directory: "data/spool")
    /// Where events go; nil keeps them in the spool (the embedded default), readable with `vantage events`.
    public var clickHouse: ClickHouseConfiguration?
    /// A loop's segment is sealed (handed to the shipper) once its first record is this old.
    public var sealAfter: TimeAmount = .seconds(1)
    /// How the client address is stored (`client_ip: truncated | full | none`).
    public var clientAddressPolicy = ClientAddressPolicy.truncated
    /// `geoip: path` or `geoip: { database: path, coordinates: true }`.
    public var geoIPPath: String?
    public var geoIPCoordinates = false
    /// `visitors:` and `privacy:`.
    public var visitors = VisitorConfiguration()
    /// `api: true` or `api: { ... }`: the tracking API on every site.
    public var api = TrackingAPIConfiguration()
    /// `privacy.query`: parameters taken out of stored query strings.
    public var queryScrubber = QueryScrubber()
    /// `user_agents: { regexes, crawlers }`: the uap-core and crawler-user-agents files; nil: the default paths,
    /// used when present (the built-in token rules otherwise).
    public var userAgentRegexesPath: String?
    public var userAgentCrawlersPath: String?
    /// `enrichment: false` keeps raw request events (no visitor, session, device, source or location; the address
    /// policy still applies).
    public var enrichment = true
    /// `compat`: the older systems whose endpoints every site answers, unless a site sets its own `compat:`.
    public var compat: [CompatProfile] = []
    /// `nats`: every event also published to a NATS subject (an independent sink beside ClickHouse).
    public var nats: NATSConfiguration?

    public static let keys = [
        "enabled", "spool", "clickhouse", "client_ip", "geoip", "visitors", "privacy", "api", "enrichment", "bots",
        "user_agents", "compat", "nats",
    ]

    public init() {}

    /// The key paths whose change from `self` to `new` a running process cannot apply: whether tracking runs at
    /// all, the spool (its folder is held open and locked), the tracking API's settings (mounted with the routes'
    /// handlers at start), the session table's size (allocated at start) and the user-agent lists (compiled at
    /// start).
    public func restartOnlyChanges(to new: TrackingConfiguration) -> [String] {
        var keys: [String] = []
        if enabled != new.enabled { keys.append("tracking.enabled") }
        if spool.directory != new.spool.directory { keys.append("tracking.spool.dir") }
        if spool.quota != new.spool.quota { keys.append("tracking.spool.max_size") }
        if spool.segmentSize != new.spool.segmentSize { keys.append("tracking.spool.segment_size") }
        if spool.sync != new.spool.sync { keys.append("tracking.spool.fsync") }
        if spool.batchInterval != new.spool.batchInterval { keys.append("tracking.spool.sync_interval") }
        if api != new.api { keys.append("tracking.api") }
        if nats != new.nats { keys.append("tracking.nats") }
        if visitors.maxSessions != new.visitors.maxSessions { keys.append("tracking.visitors.max_sessions") }
        if userAgentRegexesPath != new.userAgentRegexesPath || userAgentCrawlersPath != new.userAgentCrawlersPath {
            keys.append("tracking.user_agents")
        }
        return keys
    }

    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        if let value = map["enabled"] { enabled = try value.bool() }
        if let value = map["spool"] {
            let spoolMap = try value.mapping(keys: ["dir", "max_size", "segment_size", "fsync", "sync_interval"])
            if let dir = spoolMap["dir"] { spool.directory = try dir.path() }
            if let size = spoolMap["max_size"] { spool.quota = try size.byteSize() }
            if let size = spoolMap["segment_size"] {
                spool.segmentSize = try size.byteSize()
                guard (64 << 10)...(1 << 30) ~= spool.segmentSize else {
                    throw size.error("expected a segment size between 64KB and 1GB")
                }
            }
            if let policy = spoolMap["fsync"] { spool.sync = Spool.SyncPolicy(rawValue: try policy.oneOf(["batch", "never"]))! }
            if let interval = spoolMap["sync_interval"] { spool.batchInterval = try interval.positiveTimeAmount() }
            if spool.quota < spool.segmentSize {
                throw (spoolMap["max_size"] ?? value).error(
                    "expected max_size (\(spool.quota) bytes) to be at least segment_size (\(spool.segmentSize) bytes)")
            }
        }
        if let value = map["clickhouse"] { clickHouse = try ClickHouseConfiguration(from: value) }
        if let value = map["client_ip"] {
            clientAddressPolicy = ClientAddressPolicy(rawValue: try value.oneOf(["truncated", "full", "none"]))!
        }
        if let value = map["geoip"] {
            if (try? value.string()) != nil {
                geoIPPath = try value.path()
            } else {
                let geo = try value.mapping(keys: ["database", "coordinates"])
                geoIPPath = try geo.required("database", expected: "the path of a .mmdb file").path()
                if let coordinates = geo["coordinates"] { geoIPCoordinates = try coordinates.bool() }
            }
        }
        if let value = map["visitors"] { try readVisitors(value) }
        if let value = map["api"] { try readAPI(value) }
        if let value = map["enrichment"] { enrichment = try value.bool() }
        if let value = map["compat"] { compat = try CompatProfile.list(from: value) }
        if let value = map["nats"] { nats = try NATSConfiguration(from: value) }
        if let value = map["user_agents"] {
            let lists = try value.mapping(keys: ["regexes", "crawlers"])
            for (key, node) in [("regexes", lists["regexes"]), ("crawlers", lists["crawlers"])] {
                guard let node else { continue }
                let path = try node.path()
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw node.error(key == "regexes"
                        ? "expected uap-core's regexes.yaml (Debian: apt install uap-core), found no readable file at \(path)"
                        : "expected crawler-user-agents.json (PyPI: crawler-user-agents), found no readable file at \(path)")
                }
                if key == "regexes" { userAgentRegexesPath = path } else { userAgentCrawlersPath = path }
            }
        }
        if let value = map["bots"] {
            let bots = try value.mapping(keys: ["mail_proxy_networks"])
            if let networks = bots["mail_proxy_networks"] {
                let texts = try networks.stringList()
                let items = (try? networks.list()) ?? []
                for (index, text) in texts.enumerated() {
                    guard let network = CIDR(text) else {
                        throw (index < items.count ? items[index] : networks).error(
                            "expected a network such as 17.58.0.0/16 or 2a01:b740::/32, found \"\(text)\"")
                    }
                    visitors.mailProxyNetworks.append(network)
                }
            }
        }
        if let value = map["privacy"] {
            let privacy = try value.mapping(keys: ["dnt", "gpc", "query"])
            if let dnt = privacy["dnt"] { visitors.honorDoNotTrack = try dnt.bool() }
            if let gpc = privacy["gpc"] { visitors.honorGlobalPrivacyControl = try gpc.bool() }
            if let query = privacy["query"] {
                let lists = try query.mapping(keys: ["drop", "keep"])
                queryScrubber = QueryScrubber(
                    drop: try lists["drop"]?.stringList() ?? [], keep: try lists["keep"]?.stringList() ?? [])
            }
        }
    }

    private mutating func readAPI(_ node: ConfigNode) throws {
        if let enabled = try? node.bool() {
            api.enabled = enabled
            return
        }
        let map = try node.mapping(keys: [
            "enabled", "cors_origins", "redirect_hosts", "redirect_key_env", "max_body", "max_fields", "max_value",
            "jurisdictions",
        ])
        api.enabled = try map["enabled"]?.bool() ?? true
        if let value = map["cors_origins"] {
            api.corsOrigins = try value.stringList()
            for origin in api.corsOrigins where origin != "*" {
                guard (origin.hasPrefix("https://") || origin.hasPrefix("http://")), !origin.dropFirst(8).contains("/") else {
                    throw value.error("expected origins such as https://app.example.com (scheme and host, no path) or *, found \"\(origin)\"")
                }
            }
        }
        if let value = map["redirect_hosts"] { api.redirectHosts = try value.stringList().map { $0.lowercased() } }
        if let value = map["redirect_key_env"] {
            let name = try value.nonEmptyString()
            guard let key = value.environmentValue(name), key.utf8.count >= 16 else {
                throw value.error("expected the environment variable \(name) to hold a redirect signing key of at least 16 bytes")
            }
            api.redirectKey = Array(key.utf8)
        }
        if let value = map["max_body"] {
            api.maxBodyBytes = try value.byteSize()
            guard (1 << 10)...(16 << 20) ~= api.maxBodyBytes else { throw value.error("expected a body limit between 1KB and 16MB") }
        }
        if let value = map["jurisdictions"] {
            // Passed through as data: what `ppi/jds` answers (the tracker's rows: regulation, compliance, seq,
            // rules, locs), in the order written.
            let rows = try value.list()
            for row in rows { _ = try row.entries() }
            let data = try JSONSerialization.data(withJSONObject: try rows.map { try $0.jsonValue() }, options: [.sortedKeys, .withoutEscapingSlashes])
            api.jurisdictionsJSON = String(decoding: data, as: UTF8.self)
        }
        if let value = map["max_fields"] { api.limits.maxFields = try value.int(in: 1...10_000) }
        if let value = map["max_value"] {
            api.limits.maxValueBytes = try value.byteSize()
            guard 16...EventRecord.maxPropertiesBytes ~= api.limits.maxValueBytes else {
                throw value.error("expected a value limit between 16 bytes and 8KB")
            }
        }
    }

    private mutating func readVisitors(_ node: ConfigNode) throws {
        let map = try node.mapping(keys: ["cookies", "cookie", "session_timeout", "max_sessions"])
        if let value = map["cookies"] { visitors.cookies = try value.bool() }
        if let value = map["cookie"] {
            let cookie = try value.mapping(keys: ["name", "max_age", "secure", "http_only", "same_site", "domain"])
            if let name = cookie["name"] {
                visitors.cookieName = try name.nonEmptyString()
                guard visitors.cookieName.utf8.allSatisfy({ $0 > 32 && $0 < 127 && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) })
                else { throw name.error("expected a cookie name (letters, digits, -, _ and other token characters)") }
            }
            if let age = cookie["max_age"] {
                let seconds = try age.duration().components.seconds
                guard seconds > 0 else { throw age.error("expected a cookie lifetime above zero") }
                visitors.cookieMaxAgeSeconds = Int(seconds)
            }
            if let secure = cookie["secure"] {
                let text = try secure.oneOf(["auto", "true", "false"])
                visitors.cookieSecure = text == "auto" ? nil : text == "true"
            }
            if let httpOnly = cookie["http_only"] { visitors.cookieHTTPOnly = try httpOnly.bool() }
            if let sameSite = cookie["same_site"] {
                let text = try sameSite.oneOf(["strict", "lax", "none", "Strict", "Lax", "None"])
                visitors.cookieSameSite = text.prefix(1).uppercased() + text.dropFirst().lowercased()
                if visitors.cookieSameSite == "None" && visitors.cookieSecure == false {
                    throw sameSite.error("expected secure: true or auto with same_site: none (browsers reject the cookie otherwise)")
                }
            }
            if let domain = cookie["domain"] { visitors.cookieDomain = try domain.nonEmptyString() }
        }
        if let value = map["session_timeout"] {
            let seconds = try value.duration().components.seconds
            guard (60...86_400) ~= seconds else { throw value.error("expected a session timeout between 1m and 24h") }
            visitors.sessionTimeoutSeconds = Int(seconds)
        }
        if let value = map["max_sessions"] { visitors.maxSessions = try value.int(in: 1024...100_000_000) }
    }
}

/// `tracking.clickhouse:` the ClickHouse HTTP interface events are shipped to.
public struct ClickHouseConfiguration: Sendable, Equatable {
    /// `http(s)://host:port` base URLs, tried in order; the next one takes over when one fails.
    public var endpoints: [String] = []
    public var database = "vantage"
    public var table = "events"
    public var user: String?
    public var password: String?
    /// Cluster name: DDL runs `ON CLUSTER`, rows go to a Distributed table over Replicated tables.
    public var cluster: String?
    /// Request body compression: `gzip`, `none`, or `auto` (gzip unless the endpoint is on this machine).
    public var compression = "auto"
    /// A batch is sent once it holds this many rows or bytes, or its oldest record waited `flushInterval`.
    public var batchRows = 200_000
    public var batchBytes = 32 << 20
    public var flushInterval: TimeAmount = .seconds(1)
    /// Per-request timeout.
    public var timeout: TimeAmount = .seconds(30)
    /// Longest wait for a TCP connection to an endpoint. A failed connection is not retried inside an attempt:
    /// the next attempt follows `retry`, so a returning ClickHouse is found on schedule.
    public var connectTimeout: TimeAmount = .seconds(2)
    /// Backoff between failed attempts: from `retryMin`, doubling up to `retryMax`, with jitter.
    public var retryMin: TimeAmount = .milliseconds(500)
    public var retryMax: TimeAmount = .seconds(30)
    /// Rows older than this many days are deleted by ClickHouse (TTL; servers without TTL ignore it with a warning).
    public var retentionDays: Int?

    static let keys = [
        "endpoints", "database", "table", "user", "password", "user_env", "password_env", "cluster", "compression",
        "batch_rows", "batch_size", "flush_interval", "timeout", "connect_timeout", "retry", "retention",
    ]

    public init(endpoints: [String]) {
        self.endpoints = endpoints
    }

    init(from node: ConfigNode) throws {
        if let single = try? node.string() {
            endpoints = [single]
            try Self.checkEndpoint(single, node: node)
            return
        }
        let map = try node.mapping(keys: Self.keys)
        let endpointsNode = try map.required("endpoints", expected: "one or more http(s)://host:port URLs")
        endpoints = try endpointsNode.stringList()
        if endpoints.isEmpty { throw endpointsNode.error("expected at least one http(s)://host:port URL") }
        for (index, endpoint) in endpoints.enumerated() {
            try Self.checkEndpoint(endpoint, node: (try? endpointsNode.list())?[index] ?? endpointsNode)
        }
        if let value = map["database"] { database = try Self.identifier(value) }
        if let value = map["table"] { table = try Self.identifier(value) }
        if let value = map["user"] { user = try value.nonEmptyString() }
        if let value = map["password"] { password = try value.string() }
        if let value = map["user_env"] {
            let name = try value.nonEmptyString()
            guard let found = value.environmentValue(name), !found.isEmpty else {
                throw value.error("expected the environment variable \(name) to hold the ClickHouse user; it is unset")
            }
            user = found
        }
        if let value = map["password_env"] {
            let name = try value.nonEmptyString()
            guard let found = value.environmentValue(name) else {
                throw value.error("expected the environment variable \(name) to hold the ClickHouse password; it is unset")
            }
            password = found
        }
        if let value = map["cluster"] { cluster = try Self.identifier(value) }
        if let value = map["compression"] { compression = try value.oneOf(["auto", "gzip", "none"]) }
        if let value = map["batch_rows"] { batchRows = try value.int(in: 1...10_000_000) }
        if let value = map["batch_size"] { batchBytes = try value.byteSize() }
        if let value = map["flush_interval"] { flushInterval = try value.positiveTimeAmount() }
        if let value = map["timeout"] { timeout = try value.positiveTimeAmount() }
        if let value = map["connect_timeout"] { connectTimeout = try value.positiveTimeAmount() }
        if let value = map["retry"] {
            let retry = try value.mapping(keys: ["min", "max"])
            if let min = retry["min"] { retryMin = try min.positiveTimeAmount() }
            if let max = retry["max"] { retryMax = try max.positiveTimeAmount() }
            if retryMax < retryMin { throw value.error("expected retry.max to be at least retry.min") }
        }
        if let value = map["retention"] {
            let seconds = try value.duration().components.seconds
            guard seconds >= 86_400 else { throw value.error("expected a retention of at least 1d") }
            retentionDays = Int(seconds / 86_400)
        }
    }

    static func checkEndpoint(_ endpoint: String, node: ConfigNode) throws {
        guard ClickHouseEndpoint(endpoint) != nil else {
            throw node.error("expected an http:// or https:// URL with a host (and optional port), found \"\(endpoint)\"")
        }
    }

    /// Database, table and cluster names go into DDL unquoted, so only plain identifiers are allowed.
    static func identifier(_ node: ConfigNode) throws -> String {
        let text = try node.nonEmptyString()
        let valid = text.utf8.first.map { !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false
            && text.utf8.allSatisfy { byte in
                byte == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
        guard valid else { throw node.error("expected a name of letters, digits and _ (not starting with a digit), found \"\(text)\"") }
        return text
    }
}

/// A parsed ClickHouse endpoint.
public struct ClickHouseEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var isTLS: Bool
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        let rest: Substring
        if text.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.hasSuffix("/") ? rest.dropLast() : rest
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = isTLS ? 8443 : 8123
            } else {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()), (1...65535) ~= value else { return nil }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535) ~= value else { return nil }
            port = value
        } else {
            host = String(authority)
            port = isTLS ? 8443 : 8123
        }
        if host.isEmpty { return nil }
    }

    /// The base URL without a trailing slash.
    public var description: String {
        "\(isTLS ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// Whether the endpoint is this machine (compression would only cost CPU).
    public var isLoopback: Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }
}

extension ConfigNode {
    func positiveTimeAmount() throws -> TimeAmount {
        let value = try duration()
        guard value > .zero else { throw error("expected a duration above zero") }
        return TimeAmount(value)
    }
}
