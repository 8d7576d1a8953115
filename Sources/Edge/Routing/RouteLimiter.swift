import Config
import Logging
import HTTP1Parser
import NIOCore
import NIOHTTP1
import RateLimit
import Synchronization
import Tracking

#if canImport(Glibc)
import Glibc
#endif

/// A route's rate limiter: the key tables, how keys are made, and the figures for `/metrics`.
///
/// A reload keeps a route's limiter (and so every key's state) when the route and its `rate_limit` are unchanged.
final class RouteLimiter: Sendable {
    let configuration: RateLimitConfiguration
    /// The rates and daily quota, if the limit has any.
    let table: LimiterTable?
    /// Requests in flight per key, with `concurrency`.
    let inFlight: ConcurrencyTable?
    let label: String
    /// The `RateLimit-Policy` header value (IETF draft `draft-ietf-httpapi-ratelimit-headers`).
    let policyHeader: String
    private let hashKey: (UInt64, UInt64)
    let allowed = Atomic<Int>(0)
    let limited = Atomic<Int>(0)
    let concurrencyLimited = Atomic<Int>(0)
    let dryRunHits = Atomic<Int>(0)
    private let boundLogged = Atomic<Bool>(false)
    private let logger: Logger

    init(configuration: RateLimitConfiguration, label: String, logger: Logger = Logger(label: "vantage.ratelimit")) {
        self.configuration = configuration
        self.label = label
        self.logger = logger
        let policy = configuration.policy
        table = policy.rates.isEmpty && policy.dailyQuota == nil ? nil : LimiterTable(policy: policy, capacity: configuration.maxKeys)
        inFlight = configuration.concurrency == nil ? nil : ConcurrencyTable(capacity: configuration.maxKeys)
        var parts = policy.rates.enumerated().map { index, rate in
            "\"r\(index)\";q=\(rate.count);w=\(max(1, rate.period / 1_000_000_000))"
        }
        if let daily = policy.dailyQuota { parts.append("\"day\";q=\(daily);w=86400") }
        policyHeader = parts.joined(separator: ", ")
        var random = SystemRandomNumberGenerator()
        hashKey = (random.next(), random.next())
    }

    /// A request's place under the route's `concurrency`, given back exactly once by ``release()``.
    struct Lease {
        let table: ConcurrencyTable
        let key: UInt64

        func release() { table.release(key: key) }
    }

    enum Outcome {
        /// `quota`: the `RateLimit` header value for the answer, with `headers: true`.
        case pass(Lease?, quota: String?)
        /// Over the limit, let through because the limiter only observes (`dry_run`).
        case passDryRun(Lease?)
        case refuse(HTTPHeaders, status: HTTPResponseStatus, message: String)
    }

    /// Decides a request; `clientAddress` is the resolved client. The concurrency cap is checked first (it charges
    /// nothing), so a request refused for concurrency does not spend the key's rate.
    func check(clientAddress: String, headers: RequestFields, nowMilliseconds: Int64) -> Outcome {
        if CIDR.any(configuration.allow, contains: clientAddress) { return .pass(nil, quota: nil) }
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
        let key = hasher.finalize()
        var lease: Lease?
        if let inFlight, let limit = configuration.concurrency {
            switch inFlight.acquire(key: key, limit: limit) {
            case .admitted:
                lease = Lease(table: inFlight, key: key)
            case .untracked:
                noteBound("the concurrency table of route \(label) is full (max_keys \(configuration.maxKeys)): requests pass untracked")
            case .refused:
                if configuration.dryRun {
                    dryRunHits.add(1, ordering: .relaxed)
                    return .passDryRun(nil)
                }
                concurrencyLimited.add(1, ordering: .relaxed)
                return .refuse(["Retry-After": "1"], status: HTTPResponseStatus(statusCode: configuration.status),
                               message: configuration.message)
            }
        }
        guard let table else {
            allowed.add(1, ordering: .relaxed)
            return .pass(lease, quota: nil)
        }
        let now = NIODeadline.now().uptimeNanoseconds
        let day = Int32(nowMilliseconds / 86_400_000)
        let dayLeft = UInt64(86_400_000 - nowMilliseconds % 86_400_000) * 1_000_000
        let evictionsBefore = table.evictions
        let decision = table.check(key: key, now: now, day: day, dayLeft: dayLeft)
        if table.evictions != evictionsBefore {
            noteBound("the key table of route \(label) is full (max_keys \(configuration.maxKeys)): evicting the least active keys")
        }
        if decision.allowed {
            allowed.add(1, ordering: .relaxed)
            return .pass(lease, quota: configuration.headers ? Self.quotaHeader(decision) : nil)
        }
        if configuration.dryRun {
            dryRunHits.add(1, ordering: .relaxed)
            return .passDryRun(lease)
        }
        lease?.release()
        limited.add(1, ordering: .relaxed)
        let headers: HTTPHeaders = [
            "Retry-After": String(decision.retryAfterSeconds),
            "RateLimit-Policy": policyHeader,
            "RateLimit": Self.quotaHeader(decision),
        ]
        return .refuse(headers, status: HTTPResponseStatus(statusCode: configuration.status), message: configuration.message)
    }

    /// The `RateLimit` header value: requests left now under the tightest limit, seconds until it is whole again.
    static func quotaHeader(_ decision: Decision) -> String {
        "\"r0\";r=\(decision.remaining);t=\(max(1, (decision.reset + 999_999_999) / 1_000_000_000))"
    }

    /// A table bound was hit: counted by the table, logged once per route.
    private func noteBound(_ message: @autoclosure () -> String) {
        guard !boundLogged.load(ordering: .relaxed), boundLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else {
            return
        }
        logger.warning("\(message()) (logged once)")
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
        text += "vantage_ratelimit_concurrency_limited_total{route=\"\(route)\"} \(concurrencyLimited.load(ordering: .relaxed))\n"
        text += "vantage_ratelimit_keys{route=\"\(route)\"} \(table?.count ?? 0)\n"
        text += "vantage_ratelimit_evictions_total{route=\"\(route)\"} \(table?.evictions ?? 0)\n"
        if let inFlight {
            let usage = inFlight.usage
            text += "vantage_ratelimit_in_flight{route=\"\(route)\"} \(usage.inFlight)\n"
            text += "vantage_ratelimit_in_flight_keys{route=\"\(route)\"} \(usage.keys)\n"
            text += "vantage_ratelimit_untracked_total{route=\"\(route)\"} \(inFlight.overflows)\n"
        }
    }
}
