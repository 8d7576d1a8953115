import Foundation

/// When to renew and when to retry, as pure functions of dates (the manager passes `now`).
public struct RenewalPolicy: Sendable, Equatable {
    /// Renew when this fraction of the lifetime is left (a third, like Caddy and certbot's 30 of 90 days).
    public var remainingFraction = 1.0 / 3.0
    /// The first retry after a failure; each further failure doubles it, up to `maximumBackoff`.
    public var minimumBackoff: TimeInterval = 60
    public var maximumBackoff: TimeInterval = 2 * 86_400

    public init(remainingFraction: Double = 1.0 / 3.0, minimumBackoff: TimeInterval = 60, maximumBackoff: TimeInterval = 2 * 86_400) {
        self.remainingFraction = remainingFraction
        self.minimumBackoff = minimumBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// When a certificate valid from `notBefore` to `notAfter` is due. An ARI `window` from the CA wins (a point in
    /// it, `jitter` in 0...1 picks where, so a fleet does not renew all at once); without one, when
    /// `remainingFraction` of the lifetime is left.
    public func renewalDate(notBefore: Date, notAfter: Date, window: ClosedRange<Date>? = nil, jitter: Double = 0) -> Date {
        if let window {
            return window.lowerBound.addingTimeInterval(window.upperBound.timeIntervalSince(window.lowerBound) * min(max(jitter, 0), 1))
        }
        let lifetime = max(0, notAfter.timeIntervalSince(notBefore))
        return notAfter.addingTimeInterval(-lifetime * remainingFraction)
    }

    /// The pause after `failures` consecutive failures (1 for the first), never shorter than the CA's `retryAfter`.
    public func retryDelay(failures: Int, now: Date, retryAfter: Date? = nil) -> TimeInterval {
        let exponent = Double(max(0, min(failures - 1, 30)))
        let delay = min(maximumBackoff, minimumBackoff * pow(2, exponent))
        guard let retryAfter else { return delay }
        return max(delay, retryAfter.timeIntervalSince(now))
    }
}
