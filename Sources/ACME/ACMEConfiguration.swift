import Config
import Foundation

/// `tls.acme`: automatic certificates for every site host.
///
/// ```yaml
/// tls:
///   acme: { email: ops@example.com }
/// ```
///
/// Optional: `directory` (default Let's Encrypt production), `ca_root` (PEM file trusted for the directory's HTTPS,
/// for a private CA), `agree_tos` (default true: ordering means agreeing to the CA's terms), `eab: { kid, hmac_key }`
/// (external account binding), `storage` (folder, default `data/acme`), `names` (extra names beyond the site
/// hosts), `renew_remaining` (fraction of the lifetime left when renewal starts, default 1/3),
/// `retry: { min, max }` (the backoff after failures, default 1m growing to 2d), `on_demand` (below).
public struct ACMEConfiguration: Sendable, Equatable {
    /// `on_demand: { allow: ["*.example.com"], ask: "http://127.0.0.1:3000/allowed", rate: 10/m, max_names: 10000 }`:
    /// a certificate obtained during the first handshake for a name no site lists, when the name matches `allow`
    /// or `ask` answers 2xx for `?domain=NAME`; at most `rate` new orders, and `max_names` such names.
    public struct OnDemand: Sendable, Equatable {
        /// Exact names or `*.suffix` (any number of labels before the suffix).
        public var allow: [String] = []
        public var ask: String?
        /// New orders allowed per `ratePeriod` seconds.
        public var rateCount = 10
        public var ratePeriod: TimeInterval = 60
        public var maxNames = 10_000

        /// Whether `name` matches the allow list.
        public func allows(_ name: String) -> Bool {
            allow.contains { pattern in
                pattern.hasPrefix("*.") ? name.hasSuffix(pattern.dropFirst(1)) && name.count > pattern.count - 1 : pattern == name
            }
        }
    }

    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

    public var email: String?
    public var directory = Self.letsEncrypt
    public var caRootPath: String?
    public var agreeToTerms = true
    public var binding: ExternalAccountBinding?
    public var storagePath = "data/acme"
    public var extraNames: [String] = []
    public var policy = RenewalPolicy()
    public var onDemand: OnDemand?

    static let keys = [
        "email", "directory", "ca_root", "agree_tos", "eab", "storage", "names", "renew_remaining", "retry", "on_demand",
    ]

    public init(email: String? = nil, directory: String = Self.letsEncrypt) {
        self.email = email
        self.directory = directory
    }

    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        if let value = map["email"] {
            let email = try value.nonEmptyString()
            guard email.contains("@"), !email.contains(" ") else { throw value.mismatch(expected: "an email address") }
            self.email = email
        }
        if let value = map["directory"] {
            directory = try value.nonEmptyString()
            guard let url = URL(string: directory), url.scheme == "https", url.host != nil else {
                throw value.mismatch(expected: "the https URL of an ACME directory")
            }
        }
        if let value = map["ca_root"] {
            let path = try value.path()
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw value.error("expected a readable PEM file, found \"\(path)\" which is missing or unreadable")
            }
            caRootPath = path
        }
        if let value = map["agree_tos"] { agreeToTerms = try value.bool() }
        if let value = map["eab"] {
            let eab = try value.mapping(keys: ["kid", "hmac_key"])
            let keyID = try eab.required("kid", expected: "the key identifier the CA gave").nonEmptyString()
            let macNode = try eab.required("hmac_key", expected: "the base64url MAC key the CA gave")
            guard let key = Base64URL.decode(try macNode.nonEmptyString()), !key.isEmpty else {
                throw macNode.mismatch(expected: "a base64url MAC key")
            }
            binding = ExternalAccountBinding(keyID: keyID, macKey: key)
        }
        if let value = map["storage"] { storagePath = try value.path() }
        if let value = map["names"] {
            extraNames = try value.stringList().map { $0.lowercased() }
            for name in extraNames where !Self.isManageable(name) {
                throw value.error("expected DNS names a CA can validate over HTTP-01, found \"\(name)\"")
            }
        }
        if let value = map["renew_remaining"] {
            let text = try value.string()
            let parts = text.split(separator: "/")
            let fraction: Double? = parts.count == 2 ? Double(parts[0]).flatMap { top in Double(parts[1]).map { top / $0 } } : Double(text)
            guard let fraction, fraction > 0, fraction < 1 else { throw value.mismatch(expected: "a fraction such as 1/3 or 0.25") }
            policy.remainingFraction = fraction
        }
        if let value = map["on_demand"] { onDemand = try Self.parseOnDemand(value) }
        if let value = map["retry"] {
            let retry = try value.mapping(keys: ["min", "max"])
            if let min = retry["min"] { policy.minimumBackoff = try Self.seconds(min.duration()) }
            if let max = retry["max"] { policy.maximumBackoff = try Self.seconds(max.duration()) }
            guard policy.minimumBackoff >= 1, policy.minimumBackoff <= policy.maximumBackoff else {
                throw value.error("expected 1s <= min <= max")
            }
        }
    }

    static func parseOnDemand(_ node: ConfigNode) throws -> OnDemand {
        let map = try node.mapping(keys: ["allow", "ask", "rate", "max_names"])
        var onDemand = OnDemand()
        if let value = map["allow"] {
            onDemand.allow = try value.stringList().map { $0.lowercased() }
            for pattern in onDemand.allow where !isManageable(pattern.hasPrefix("*.") ? String(pattern.dropFirst(2)) : pattern) {
                throw value.error("expected names or *.suffix patterns, found \"\(pattern)\"")
            }
        }
        if let value = map["ask"] {
            let url = try value.nonEmptyString()
            guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
                throw value.mismatch(expected: "an http(s) URL that answers 2xx for ?domain=NAME when NAME may get a certificate")
            }
            onDemand.ask = url
        }
        guard !onDemand.allow.isEmpty || onDemand.ask != nil else {
            throw node.error("expected allow (names or *.suffix) or ask (a URL): on-demand certificates for any name would let anyone make Vantage order them")
        }
        if let value = map["rate"] {
            let text = try value.string()
            let parts = text.split(separator: "/")
            let periods: [Substring: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            guard parts.count == 2, let count = Int(parts[0]), count > 0, let period = periods[parts[1]] else {
                throw value.mismatch(expected: "a rate such as 10/m or 100/h")
            }
            onDemand.rateCount = count
            onDemand.ratePeriod = period
        }
        if let value = map["max_names"] { onDemand.maxNames = try value.int(in: 1...10_000_000) }
        return onDemand
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        TimeInterval(duration.components.seconds) + TimeInterval(duration.components.attoseconds) / 1e18
    }

    /// Whether a CA can be asked for `name` with HTTP-01: a DNS name with a dot, no wildcard, not an IP address.
    public static func isManageable(_ name: String) -> Bool {
        guard name.contains("."), !name.hasPrefix("*"), !name.hasSuffix("."), name.count <= 253 else { return false }
        if name.split(separator: ".").allSatisfy({ Int($0) != nil }) { return false }  // IPv4
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-.")
        return name.allSatisfy(allowed.contains) && !name.split(separator: ".", omittingEmptySubsequences: false).contains { $0.isEmpty }
    }

    /// The CA's folder name in storage: its directory URL's host, port and path, made path-safe.
    var caIdentifier: String {
        guard let url = URL(string: directory), let host = url.host else { return "ca" }
        var text = host + (url.port.map { "-\($0)" } ?? "") + url.path.replacingOccurrences(of: "/", with: "-")
        text = String(text.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" })
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }
}
