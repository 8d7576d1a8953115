/// Rate limiting as pure values: no I/O, no clock of its own (callers pass `now` in nanoseconds on a monotonic
/// clock and, for daily quotas, the UTC day), so every rule is testable to the nanosecond.
///
/// A ``Rate`` is a GCRA limit (the generic cell rate algorithm, as in ATM networks and redis-cell): a key may make
/// `burst` requests at once and then one per `interval`; its whole state is one time, the theoretical arrival time
/// (TAT) of its next request. A ``Policy`` combines up to four rates with an optional daily quota; a request passes
/// only when every part allows it, and only then is any part charged.
public struct Rate: Sendable, Equatable, CustomStringConvertible {
    /// Requests allowed per `period` on average.
    public var count: Int
    /// The period in nanoseconds (1 s, 1 min, 1 h, 1 day).
    public var period: UInt64
    /// Requests allowed at once.
    public var burst: Int

    public init(count: Int, period: UInt64, burst: Int? = nil) {
        self.count = max(1, count)
        self.period = max(1, period)
        self.burst = max(1, burst ?? count)
    }

    /// Parses `10/s`, `100/m`, `5000/h`, `10000/d` (also `/second`, `/minute`, `/hour`, `/day`).
    public init?(parsing text: String, burst: Int? = nil) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let count = Int(parts[0].filter { $0 != " " }), count > 0 else { return nil }
        let unit: UInt64
        switch parts[1].filter({ $0 != " " }).lowercased() {
        case "s", "sec", "second": unit = 1_000_000_000
        case "m", "min", "minute": unit = 60_000_000_000
        case "h", "hour": unit = 3_600_000_000_000
        case "d", "day": unit = 86_400_000_000_000
        default: return nil
        }
        self.init(count: count, period: unit, burst: burst)
    }

    /// Nanoseconds between requests at the sustained rate.
    public var interval: UInt64 { max(1, period / UInt64(count)) }
    /// How far ahead of `now` the TAT may run: room for `burst - 1` more requests.
    var tolerance: UInt64 { interval * UInt64(burst - 1) }

    public var description: String { "\(count) per \(period / 1_000_000_000) s, burst \(burst)" }
}

/// The answer for one request.
public struct Decision: Sendable, Equatable {
    public var allowed: Bool
    /// When refused: nanoseconds until a request would pass (`Retry-After`, rounded up to seconds).
    public var retryAfter: UInt64
    /// Requests left right now under the tightest limit (the `RateLimit` header's `remaining`).
    public var remaining: Int
    /// Nanoseconds until the tightest limit is fully replenished (`reset`).
    public var reset: UInt64

    /// `Retry-After` in whole seconds, at least 1 when refused.
    public var retryAfterSeconds: Int { allowed ? 0 : max(1, Int((retryAfter + 999_999_999) / 1_000_000_000)) }
}

/// The state of one key under a policy: one TAT per rate, the day and count of its daily quota. Fixed size (no
/// allocation per check).
public struct KeyState: Sendable, Equatable {
    public var arrival: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public var day: Int32 = 0
    public var usedToday: Int32 = 0

    public init() {}

    public static func == (lhs: KeyState, rhs: KeyState) -> Bool {
        lhs.arrival == rhs.arrival && lhs.day == rhs.day && lhs.usedToday == rhs.usedToday
    }

    subscript(index: Int) -> UInt64 {
        get {
            switch index {
            case 0: arrival.0
            case 1: arrival.1
            case 2: arrival.2
            default: arrival.3
            }
        }
        set {
            switch index {
            case 0: arrival.0 = newValue
            case 1: arrival.1 = newValue
            case 2: arrival.2 = newValue
            default: arrival.3 = newValue
            }
        }
    }

    /// Whether the key holds nothing worth keeping at `now` on `day` (every TAT in the past, no quota used today):
    /// such an entry can be dropped and recreated later with the same outcome.
    public func isIdle(now: UInt64, day: Int32) -> Bool {
        arrival.0 <= now && arrival.1 <= now && arrival.2 <= now && arrival.3 <= now && (self.day != day || usedToday == 0)
    }
}

/// Up to four rates and an optional daily quota, all of which a request must pass.
public struct Policy: Sendable, Equatable {
    public static let maxRates = 4
    public var rates: [Rate]
    /// Requests per UTC day.
    public var dailyQuota: Int?

    public init(rates: [Rate], dailyQuota: Int? = nil) {
        precondition(rates.count <= Self.maxRates, "at most \(Self.maxRates) rates per policy")
        self.rates = rates
        self.dailyQuota = dailyQuota
    }

    /// Decides a request of `cost` at `now` (monotonic ns) on UTC `day` (`dayLeft`: ns until that day ends, the wait
    /// when the quota is spent), charging `state` only when it passes.
    public func check(_ state: inout KeyState, now: UInt64, day: Int32, dayLeft: UInt64 = 0, cost: Int = 1) -> Decision {
        var remaining = Int.max
        var reset: UInt64 = 0
        var wait: UInt64 = 0
        var next = state
        for (index, rate) in rates.enumerated() {
            let interval = rate.interval
            let charge = interval * UInt64(max(1, cost))
            let tat = max(state[index], now)
            let newTAT = tat + charge
            let allowAt = newTAT - min(newTAT, rate.tolerance + interval)
            if allowAt > now {
                wait = max(wait, allowAt - now)
                remaining = 0
                reset = max(reset, tat - now)
                continue
            }
            next[index] = newTAT
            let headroom = (rate.tolerance + interval) - (newTAT - now)
            remaining = min(remaining, Int(headroom / interval))
            reset = max(reset, newTAT - now)
        }
        if let quota = dailyQuota {
            let used = state.day == day ? Int(state.usedToday) : 0
            if used + cost > quota {
                return Decision(allowed: false, retryAfter: max(wait, dayLeft, 1), remaining: 0, reset: max(reset, dayLeft))
            }
            next.day = day
            next.usedToday = Int32(clamping: used + cost)
            remaining = min(remaining, quota - used - cost)
        }
        guard wait == 0 else { return Decision(allowed: false, retryAfter: wait, remaining: 0, reset: reset) }
        state = next
        return Decision(allowed: true, retryAfter: 0, remaining: remaining == Int.max ? 0 : remaining, reset: reset)
    }
}
