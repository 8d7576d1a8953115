import Config
import NIOCore
import NIOHTTP1
import RateLimit
import Synchronization
import Tracking

#if canImport(Glibc)
import Glibc
#endif

/// A route's rate limiter: the key table, how keys are made, and the figures for `/metrics`.
final class RouteLimiter: Sendable {
    let configuration: RateLimitConfiguration
    let table: LimiterTable
    let label: String
    /// The `RateLimit-Policy` header value (IETF draft `draft-ietf-httpapi-ratelimit-headers`).
    let policyHeader: String
    private let hashKey: (UInt64, UInt64)
    let allowed = Atomic<Int>(0)
    let limited = Atomic<Int>(0)
    let dryRunHits = Atomic<Int>(0)

    init(configuration: RateLimitConfiguration, label: String) {
        self.configuration = configuration
        self.label = label
        table = LimiterTable(policy: configuration.policy, capacity: configuration.maxKeys)
        var parts = configuration.policy.rates.enumerated().map { index, rate in
            "\"r\(index)\";q=\(rate.count);w=\(max(1, rate.period / 1_000_000_000))"
        }
        if let daily = configuration.policy.dailyQuota { parts.append("\"day\";q=\(daily);w=86400") }
        policyHeader = parts.joined(separator: ", ")
        var random = SystemRandomNumberGenerator()
        hashKey = (random.next(), random.next())
    }

    enum Outcome {
        case pass
        /// Over the limit, let through because the limiter only observes (`dry_run`).
        case passDryRun
        case refuse(HTTPHeaders, status: HTTPResponseStatus, message: String)
    }

    /// Decides a request; `clientAddress` is the resolved client, `header` looks a request header up.
    func check(clientAddress: String, headers: HTTPHeaders, nowMilliseconds: Int64) -> Outcome {
        if !configuration.allow.isEmpty, let bytes = parseIPAddress(clientAddress),
            configuration.allow.contains(where: { $0.contains(bytes) })
        {
            return .pass
        }
        var hasher = SipHash24(key0: hashKey.0, key1: hashKey.1)
        for part in configuration.key {
            switch part {
            case .clientAddress: Self.combineAddress(clientAddress, into: &hasher)
            case .route: hasher.combineField(label)
            case .header(let name):
                if let value = headers.first(name: name), !value.isEmpty {
                    hasher.combineField(value)
                } else {
                    Self.combineAddress(clientAddress, into: &hasher)
                }
            }
        }
        let now = NIODeadline.now().uptimeNanoseconds
        let day = Int32(nowMilliseconds / 86_400_000)
        let dayLeft = UInt64(86_400_000 - nowMilliseconds % 86_400_000) * 1_000_000
        let decision = table.check(key: hasher.finalize(), now: now, day: day, dayLeft: dayLeft)
        if decision.allowed {
            allowed.add(1, ordering: .relaxed)
            return .pass
        }
        if configuration.dryRun {
            dryRunHits.add(1, ordering: .relaxed)
            return .passDryRun
        }
        limited.add(1, ordering: .relaxed)
        let headers: HTTPHeaders = [
            "Retry-After": String(decision.retryAfterSeconds),
            "RateLimit-Policy": policyHeader,
            "RateLimit": "\"r0\";r=\(decision.remaining);t=\(max(1, (decision.reset + 999_999_999) / 1_000_000_000))",
        ]
        return .refuse(headers, status: HTTPResponseStatus(statusCode: configuration.status), message: configuration.message)
    }

    /// The client address as key material: IPv4 whole, IPv6 by its /64 (a host usually holds a whole /64).
    static func combineAddress(_ address: String, into hasher: inout SipHash24) {
        var v6 = in6_addr()
        if address.utf8.contains(UInt8(ascii: ":")), inet_pton(AF_INET6, address, &v6) == 1 {
            withUnsafeBytes(of: &v6) { hasher.combine(UnsafeRawBufferPointer(rebasing: $0[0..<8])) }
            hasher.combine(CollectionOfOne(0xFF))
        } else {
            hasher.combineField(address)
        }
    }

    func render(into text: inout String) {
        let route = label.replacingOccurrences(of: "\"", with: "'")
        text += "vantage_ratelimit_allowed_total{route=\"\(route)\"} \(allowed.load(ordering: .relaxed))\n"
        text += "vantage_ratelimit_limited_total{route=\"\(route)\"} \(limited.load(ordering: .relaxed))\n"
        text += "vantage_ratelimit_dry_run_total{route=\"\(route)\"} \(dryRunHits.load(ordering: .relaxed))\n"
        text += "vantage_ratelimit_keys{route=\"\(route)\"} \(table.count)\n"
        text += "vantage_ratelimit_evictions_total{route=\"\(route)\"} \(table.evictions)\n"
    }
}
