import Config
import HeaderRules
import NIOCore

/// Settings of one `proxy` route.
///
/// ```yaml
/// proxy:
///   upstreams: ["127.0.0.1:3000", { address: "http://10.0.0.2:3000", weight: 3 }, "unix:/run/app.sock"]
///   balance: least_conn            # round_robin (default) | least_conn | ip_hash | header
///   hash_header: X-User            # with balance: header
///   strip_prefix: true             # /api/users -> /users upstream
///   rewrite_prefix: /v2/           # or: replace the route prefix with this one
///   host: pass                     # pass (default) | upstream | any fixed host name
///   timeouts: { connect: 5s, response_header: 60s, read: 60s, write: 60s }
///   pool: { max_connections: 512, max_idle: 256, idle_timeout: 4s }
///   retries: { tries: 3, timeout: 10s, buffer: 64KB }
///   passive_health: { max_fails: 3, cooldown: 10s }
///   health_check: { path: /health, interval: 5s, timeout: 2s, expect_status: 200 }
///   websocket: { idle_timeout: 1h }
///   underscores_in_headers: false  # true: pass header names with `_` (dropped by default, as nginx does)
///   tls: { ca: internal-ca.pem }   # for https:// upstreams: CAs, client certificate, server name (UpstreamTLS)
/// ```
public struct ProxyConfiguration: Sendable, Equatable {
    /// How the next upstream is chosen.
    public enum Balance: Sendable, Equatable {
        case roundRobin
        case leastConnections
        /// Consistent (rendezvous) hash of the client address.
        case clientAddressHash
        /// Consistent (rendezvous) hash of a request header; round robin when the header is absent.
        case headerHash(String)
    }

    /// What the upstream sees as `Host`.
    public enum HostHeader: Sendable, Equatable {
        /// The client's Host, unchanged (nginx `proxy_set_header Host $host`, Caddy's default).
        case pass
        /// The upstream's own `host:port` (nginx's default `$proxy_host`).
        case upstream
        /// A fixed value.
        case fixed(String)
    }

    /// One upstream server, its weight, and for an `https://` one how TLS is spoken to it.
    public struct Server: Sendable, Equatable {
        public var address: UpstreamAddress
        public var weight: Int
        /// Set for `https://` addresses: the route's `tls:` settings, or the system's CAs without them.
        public var tls: UpstreamTLS?
    }

    public var servers: [Server]
    public var balance: Balance = .roundRobin
    public var stripPrefix = false
    public var rewritePrefix: String?
    public var host: HostHeader = .pass
    public var timeouts = Timeouts()
    public var pool = PoolSettings()
    public var retries = RetrySettings()
    public var passiveHealth = PassiveHealthSettings()
    public var healthCheck: HealthCheckSettings?
    public var webSocketIdleTimeout: Duration = .seconds(3600)
    /// Pass request header names that hold `_` upstream (nginx's `underscores_in_headers`); dropped by default.
    public var underscoresInHeaders = false
    /// `request_headers: { set, add, remove }`: changes to the requests sent upstream (nginx's
    /// `proxy_set_header`, Caddy's `header_up`), after the forwarding headers are made.
    public var requestHeaders = HeaderRules()
    /// `intercept_errors`: an upstream answer of 400 or more for which the site has an `errors:` page is replaced
    /// by that page (nginx's `proxy_intercept_errors`); by default upstream errors pass as they are.
    public var interceptErrors = false

    /// Time limits of one proxied exchange.
    public struct Timeouts: Sendable, Equatable {
        /// Establishing a TCP connection to an upstream.
        public var connect: Duration = .seconds(5)
        /// From the request being sent to the response head arriving.
        public var responseHeader: Duration = .seconds(60)
        /// Longest pause between two reads of the response body.
        public var read: Duration = .seconds(60)
        /// Longest pause while the upstream does not accept the request body.
        public var write: Duration = .seconds(60)
    }

    /// Keep-alive pool limits, per upstream.
    public struct PoolSettings: Sendable, Equatable {
        /// Connections open to one upstream at once (all event loops together); requests over it wait up to the
        /// connect timeout for one to free up, then get 503.
        public var maxConnections = 512
        /// Idle connections kept per upstream and event loop. Generous: a loop needs about as many as it has client
        /// connections with a request in flight, and closing the surplus after every burst churns connections.
        public var maxIdle = 256
        /// An idle connection is closed after this long. Below Node's and uvicorn's 5 s keep-alive default, so the
        /// gateway, not the backend, closes idle connections and a request never races a closing socket.
        public var idleTimeout: Duration = .seconds(4)
    }

    /// When a failed attempt is tried again on another upstream.
    public struct RetrySettings: Sendable, Equatable {
        /// Attempts in all, the first included; 1 turns retries off.
        public var tries = 3
        /// No new attempt starts after this long since the first.
        public var timeout: Duration = .seconds(10)
        /// A request body up to this size is kept until the response starts, so the request can be retried even
        /// after its body was sent; a larger body is streamed and ends the retries once its first byte leaves.
        public var buffer = 64 << 10
    }

    /// Taking an upstream out after failures seen by real requests.
    public struct PassiveHealthSettings: Sendable, Equatable {
        /// Consecutive failures (refused, reset, timed out) that take the upstream out; 0 turns it off.
        public var maxFails = 3
        /// How long it stays out; then one request tries it again.
        public var cooldown: Duration = .seconds(10)
    }

    /// Active checks: `GET path` on every upstream every `interval`.
    public struct HealthCheckSettings: Sendable, Equatable {
        public var path = "/"
        public var interval: Duration = .seconds(5)
        public var timeout: Duration = .seconds(2)
        /// Status codes counted healthy; default 200–399.
        public var expectStatus: ClosedRange<Int> = 200...399
        /// Consecutive failed checks before the upstream is marked down.
        public var fails = 2
        /// Consecutive passed checks before a down upstream is marked up again.
        public var passes = 1
    }

    public static let keys = [
        "upstreams", "balance", "hash_header", "strip_prefix", "rewrite_prefix", "host", "timeouts", "pool", "retries",
        "passive_health", "health_check", "websocket", "underscores_in_headers", "request_headers", "intercept_errors", "tls",
    ]

    /// Reads a `proxy:` mapping, or a bare upstream list / single upstream string. Host names are resolved here,
    /// so a name that does not resolve is a configuration error, not a 502 later.
    public init(from node: ConfigNode) throws {
        if (try? node.list()) != nil || (try? node.string()) != nil {
            servers = try Self.readServers(node)
            try Self.applyTLS(nil, to: &servers)
            return
        }
        let map = try node.mapping(keys: Self.keys)
        servers = try Self.readServers(try map.required("upstreams", expected: "a list of upstream addresses"))
        if let value = map["balance"] {
            switch try value.oneOf(["round_robin", "least_conn", "ip_hash", "header"]) {
            case "least_conn": balance = .leastConnections
            case "ip_hash": balance = .clientAddressHash
            case "header":
                let header = try map.required("hash_header", expected: "the header to hash with balance: header")
                balance = .headerHash(try header.nonEmptyString().lowercased())
            default: balance = .roundRobin
            }
        }
        if let value = map["hash_header"] {
            guard case .headerHash = balance else { throw value.error("hash_header is only read with balance: header") }
        }
        if let value = map["strip_prefix"] { stripPrefix = try value.bool() }
        if let value = map["rewrite_prefix"] {
            let prefix = try value.nonEmptyString()
            guard prefix.hasPrefix("/") else { throw value.error("expected a path starting with /, found \"\(prefix)\"") }
            if stripPrefix { throw value.error("use either strip_prefix or rewrite_prefix, not both") }
            rewritePrefix = prefix
        }
        if let value = map["host"] {
            let text = try value.nonEmptyString()
            switch text {
            case "pass": host = .pass
            case "upstream": host = .upstream
            default:
                guard text.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") }) else {
                    throw value.error("expected pass, upstream or a host name, found \"\(text)\"")
                }
                host = .fixed(text)
            }
        }
        if let value = map["timeouts"] {
            let timeoutMap = try value.mapping(keys: ["connect", "response_header", "read", "write"])
            if let v = timeoutMap["connect"] { timeouts.connect = try Self.positive(v) }
            if let v = timeoutMap["response_header"] { timeouts.responseHeader = try Self.positive(v) }
            if let v = timeoutMap["read"] { timeouts.read = try Self.positive(v) }
            if let v = timeoutMap["write"] { timeouts.write = try Self.positive(v) }
        }
        if let value = map["pool"] {
            let poolMap = try value.mapping(keys: ["max_connections", "max_idle", "idle_timeout"])
            if let v = poolMap["max_connections"] { pool.maxConnections = try v.int(in: 1...1_000_000) }
            if let v = poolMap["max_idle"] { pool.maxIdle = try v.int(in: 0...100_000) }
            if let v = poolMap["idle_timeout"] { pool.idleTimeout = try Self.positive(v) }
        }
        if let value = map["retries"] {
            if let count = try? value.int(in: 0...100) {
                retries.tries = count + 1
            } else {
                let retryMap = try value.mapping(keys: ["tries", "timeout", "buffer"])
                if let v = retryMap["tries"] { retries.tries = try v.int(in: 1...100) }
                if let v = retryMap["timeout"] { retries.timeout = try Self.positive(v) }
                if let v = retryMap["buffer"] { retries.buffer = try v.byteSize() }
            }
        }
        if let value = map["passive_health"] {
            let passiveMap = try value.mapping(keys: ["max_fails", "cooldown"])
            if let v = passiveMap["max_fails"] { passiveHealth.maxFails = try v.int(in: 0...1000) }
            if let v = passiveMap["cooldown"] { passiveHealth.cooldown = try Self.positive(v) }
        }
        if let value = map["health_check"] {
            var check = HealthCheckSettings()
            let checkMap = try value.mapping(keys: ["path", "interval", "timeout", "expect_status", "fails", "passes"])
            if let v = checkMap["path"] {
                check.path = try v.nonEmptyString()
                guard check.path.hasPrefix("/"), !check.path.contains(" ") else {
                    throw v.error("expected a path starting with /, found \"\(check.path)\"")
                }
            }
            if let v = checkMap["interval"] { check.interval = try Self.positive(v) }
            if let v = checkMap["timeout"] { check.timeout = try Self.positive(v) }
            if let v = checkMap["expect_status"] {
                if let code = try? v.int(in: 100...599) {
                    check.expectStatus = code...code
                } else {
                    let text = try v.string()
                    guard text.count == 3, text.hasSuffix("xx"), let digit = Int(text.prefix(1)), (1...5).contains(digit) else {
                        throw v.error("expected a status code such as 200 or a class such as 2xx, found \"\(text)\"")
                    }
                    check.expectStatus = (digit * 100)...(digit * 100 + 99)
                }
            }
            if let v = checkMap["fails"] { check.fails = try v.int(in: 1...100) }
            if let v = checkMap["passes"] { check.passes = try v.int(in: 1...100) }
            healthCheck = check
        }
        if let value = map["websocket"] {
            let socketMap = try value.mapping(keys: ["idle_timeout"])
            if let v = socketMap["idle_timeout"] { webSocketIdleTimeout = try Self.positive(v) }
        }
        if let value = map["underscores_in_headers"] { underscoresInHeaders = try value.bool() }
        if let value = map["request_headers"] { requestHeaders = try HeaderRules(from: value, direction: .request) }
        if let value = map["intercept_errors"] { interceptErrors = try value.bool() }
        try Self.applyTLS(map["tls"], to: &servers)
    }

    /// Gives the `https://` servers their TLS settings: the `tls:` section's, or the system's CAs without one. A
    /// `tls:` section on a route without any `https://` upstream is a mistake worth saying.
    static func applyTLS(_ node: ConfigNode?, to servers: inout [Server]) throws {
        let wanted = servers.contains { $0.address.isTLS }
        if let node, !wanted {
            throw node.error("tls applies to https:// upstreams; write the upstreams as https://host:port")
        }
        guard wanted else { return }
        let settings = try node.map(UpstreamTLS.init(from:)) ?? UpstreamTLS.systemDefault()
        for index in servers.indices where servers[index].address.isTLS {
            servers[index].tls = settings
        }
    }

    static func positive(_ node: ConfigNode) throws -> Duration {
        let value = try node.duration()
        guard value > .zero else { throw node.error("expected a duration above zero") }
        return value
    }

    static func readServers(_ node: ConfigNode) throws -> [Server] {
        let items = (try? node.list()) ?? [node]
        if items.isEmpty { throw node.error("expected at least one upstream") }
        if items.count > 64 { throw node.error("expected at most 64 upstreams per route, found \(items.count)") }
        var servers: [Server] = []
        for item in items {
            var addressNode = item
            var weight = 1
            if (try? item.string()) == nil {
                let map = try item.mapping(keys: ["address", "weight"])
                addressNode = try map.required("address", expected: "the upstream address, such as 127.0.0.1:3000")
                if let v = map["weight"] { weight = try v.int(in: 1...1000) }
            }
            let text = try addressNode.nonEmptyString()
            do {
                let address = try UpstreamAddress(parsing: text)
                if servers.contains(where: { $0.address == address }) {
                    throw addressNode.error("upstream \(text) is listed twice; use weight instead")
                }
                servers.append(Server(address: address, weight: weight))
            } catch let error as UpstreamAddress.ParseError {
                throw addressNode.error(error.message)
            }
        }
        return servers
    }
}
