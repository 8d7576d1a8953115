import ACME
import Crypto
import Foundation
import Logging
import Synchronization
import Tracking

/// Signed-in browsers of the admin listener: the login form trades the admin token for a session cookie, and too
/// many wrong tokens from one address are refused for a while.
///
/// A cookie is `<expiry>.<HMAC-SHA256(key, expiry + token)>` with a key drawn at start: nothing is stored, a restart
/// or a new token (a reload) signs everyone out, and a cookie cannot be made without the key.
final class AdminSessions: Sendable {
    static let cookieName = "vantage_admin"
    /// How long a sign-in lasts.
    static let lifetime: TimeInterval = 12 * 3600
    /// Wrong tokens allowed per address per ``window`` before `429`.
    static let attempts = 5
    static let window: TimeInterval = 60
    /// Addresses remembered at once; when full, the oldest window is forgotten first.
    static let maximumAddresses = 10_000

    private let key = SymmetricKey(size: .bits256)
    private let failures = Mutex<[String: (count: Int, since: Date)]>([:])
    /// Addresses forgotten before their window ended because the table was full (`/metrics`).
    let forgotten = Atomic<Int>(0)
    private let logger: Logger

    init(logger: Logger = Logger(label: "vantage.admin")) {
        self.logger = logger
    }

    /// A cookie for a browser that presented `token`, valid until `now + lifetime`.
    func cookie(token: String, now: Date = Date()) -> String {
        let expiry = String(Int(now.timeIntervalSince1970 + Self.lifetime))
        return expiry + "." + signature(expiry: expiry, token: token)
    }

    /// Whether a `Cookie` header holds a valid, unexpired session for `token`.
    func isSignedIn(cookieHeader: String?, token: String, now: Date = Date()) -> Bool {
        guard let cookieHeader else { return false }
        for pair in cookieHeader.split(separator: ";") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0] == Self.cookieName else { continue }
            let value = parts[1].split(separator: ".", maxSplits: 1)
            guard value.count == 2, let expiry = Int(value[0]), Double(expiry) > now.timeIntervalSince1970 else { continue }
            if Signatures.equal(String(value[1]), signature(expiry: String(value[0]), token: token)) { return true }
        }
        return false
    }

    private func signature(expiry: String, token: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data((expiry + "\n" + token).utf8), using: key)
        return Base64URL.encode(Data(code))
    }

    /// Seconds `address` must wait before trying again, or nil when it may try now.
    func retryAfter(_ address: String, now: Date = Date()) -> Int? {
        failures.withLock { failures in
            guard let entry = failures[address], entry.count >= Self.attempts else { return nil }
            let left = Self.window - now.timeIntervalSince(entry.since)
            if left <= 0 {
                failures[address] = nil
                return nil
            }
            return Int(left.rounded(.up))
        }
    }

    /// Counts a wrong token from `address`.
    func failed(_ address: String, now: Date = Date()) {
        failures.withLock { failures in
            if failures.count >= Self.maximumAddresses {
                failures = failures.filter { now.timeIntervalSince($0.value.since) < Self.window }
                if failures.count >= Self.maximumAddresses, let oldest = failures.min(by: { $0.value.since < $1.value.since }) {
                    failures[oldest.key] = nil
                    if forgotten.add(1, ordering: .relaxed).newValue == 1 {
                        logger.warning(
                            "admin: wrong tokens from more than \(Self.maximumAddresses) addresses within a minute: the oldest are forgotten (vantage_admin_signin_addresses_forgotten_total)")
                    }
                }
            }
            var entry = failures[address] ?? (0, now)
            if now.timeIntervalSince(entry.since) >= Self.window { entry = (0, now) }
            entry.count += 1
            failures[address] = entry
        }
    }

    /// A right token: the address starts over.
    func succeeded(_ address: String) {
        _ = failures.withLock { $0.removeValue(forKey: address) }
    }
}
