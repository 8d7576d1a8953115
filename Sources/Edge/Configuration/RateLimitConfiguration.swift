import Config
import RateLimit

/// A route's `rate_limit:`:
///
/// ```yaml
/// rate_limit: { key: client_ip, rate: 10/s, burst: 20, per_day: 10000, concurrency: 8, allow: [10.0.0.0/8] }
/// ```
///
/// `concurrency` caps a key's requests in flight (answered with the same refusal and `Retry-After: 1`); a request
/// holds its place until its response is complete or its client goes away.
/// `key` is `client_ip` (IPv6 grouped by /64), `header:NAME` (an API key; requests without it are keyed by client
/// address), `route`, or a list of those combined. `rate` may be one rate or a list (all must pass). Limits are per
/// node; `nodes: N` divides each by N for N nodes behind a balancer.
public struct RateLimitConfiguration: Sendable, Equatable {
    public enum KeyPart: Sendable, Equatable {
        case clientAddress
        case header(String)
        case route
    }

    public var key: [KeyPart] = [.clientAddress]
    public var policy: Policy
    public var allow: [CIDR] = []
    public var dryRun = false
    /// The refusal's status (429 by default) and body text.
    public var status = 429
    public var message = "too many requests"
    /// Table bound: keys remembered at once (48 bytes each, so 6 MiB per limited route by default). Keys usually go
    /// idle within a second or two and their slots are reused, so this bounds the keys active together, not the
    /// clients seen.
    public var maxKeys = 100_000
    /// Requests in flight per key, if capped.
    public var concurrency: Int?
    /// Also send `RateLimit-Policy` and `RateLimit` on the answers that pass (refusals always carry them).
    public var headers = false

    static let keys = ["key", "rate", "burst", "per_day", "allow", "dry_run", "status", "message", "max_keys", "nodes", "concurrency", "headers"]

    init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        var nodes = 1
        if let value = map["nodes"] { nodes = try value.int(in: 1...1000) }
        var burst: Int?
        if let value = map["burst"] { burst = try value.int(in: 1...1_000_000_000) }
        var rates: [Rate] = []
        if let value = map["rate"] {
            let texts = try (try? value.stringList()) ?? [value.string()]
            for text in texts {
                guard let rate = Rate(parsing: text, burst: burst) else {
                    throw value.error("expected a rate such as 10/s, 100/m, 5000/h or 10000/d, found \"\(text)\"")
                }
                rates.append(Rate(count: max(1, rate.count / nodes), period: rate.period, burst: max(1, rate.burst / nodes)))
            }
            if rates.count > Policy.maxRates { throw value.error("expected at most \(Policy.maxRates) rates") }
        }
        var daily: Int?
        if let value = map["per_day"] { daily = max(1, try value.int(in: 1...Int(Int32.max)) / nodes) }
        if let value = map["concurrency"] { concurrency = max(1, try value.int(in: 1...1_000_000) / nodes) }
        guard !rates.isEmpty || daily != nil || concurrency != nil else {
            throw node.error("expected rate (10/s, ...), per_day or concurrency")
        }
        policy = Policy(rates: rates, dailyQuota: daily)
        if let value = map["key"] {
            let texts = try (try? value.stringList()) ?? [value.string()]
            key = try texts.map { text in
                switch text {
                case "client_ip": return .clientAddress
                case "route": return .route
                default:
                    guard text.hasPrefix("header:"), text.count > 7 else {
                        throw value.error("expected client_ip, route or header:NAME, found \"\(text)\"")
                    }
                    return .header(String(text.dropFirst(7)).lowercased())
                }
            }
        }
        if let value = map["allow"] {
            allow = try value.list().map { item in
                guard let cidr = CIDR(try item.string()) else {
                    throw item.mismatch(expected: "an address or network such as 10.0.0.0/8")
                }
                return cidr
            }
        }
        if let value = map["dry_run"] { dryRun = try value.bool() }
        if let value = map["headers"] { headers = try value.bool() }
        if let value = map["status"] { status = try value.int(in: 400...599) }
        if let value = map["message"] { message = try value.string() }
        if let value = map["max_keys"] { maxKeys = try value.int(in: 1024...100_000_000) }
    }
}
