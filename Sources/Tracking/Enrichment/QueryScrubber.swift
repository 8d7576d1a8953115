import RequestTarget

/// Takes personal data out of query strings before they are stored: in events (the request target, the referrer,
/// a short link's destination) and in the access log.
///
/// A parameter is dropped, name and value, when its name (case-insensitive, percent-escapes decoded) is one of
/// ``defaultNames`` or the configured `drop` names, or when its value is an email address or a phone number;
/// names in `keep` are never dropped. A phone number is a value of 7 to 15 digits that starts with `+` or holds the
/// separators phone numbers are written with (space, `-`, `.`, `(`, `)`): a bare run of digits is an identifier, not
/// a phone number, and stays.
public struct QueryScrubber: Sendable, Equatable {
    /// Parameter names that carry personal data or credentials.
    public static let defaultNames: Set<String> = [
        "email", "e-mail", "mail", "email_address", "emailaddress", "phone", "phone_number", "phonenumber", "tel",
        "telephone", "cell", "mobile", "password", "pass", "passwd", "pwd", "token", "access_token",
        "refresh_token", "id_token", "auth", "auth_token", "authorization", "api_key", "apikey", "secret",
        "client_secret", "session", "sessionid", "session_id", "phpsessid", "jsessionid", "ssn", "iban",
        "card", "card_number", "cardnumber", "cc", "cvv", "otp",
    ]

    /// Names dropped (lower-cased).
    public let names: Set<String>
    /// Names whose values stay whatever they look like (lower-cased).
    public let kept: Set<String>

    /// The defaults, for places with no configuration of their own (the access log with tracking off).
    public static let standard = QueryScrubber()

    /// The longest name in ``names`` or ``kept``: a longer parameter name is neither, and is not decoded.
    private let longestName: Int

    public init(drop: [String] = [], keep: [String] = []) {
        kept = Set(keep.map { $0.lowercased() })
        names = Self.defaultNames.union(drop.map { $0.lowercased() }).subtracting(kept)
        longestName = names.union(kept).map(\.utf8.count).max() ?? 0
    }

    /// `query` without its personal parameters, or nil when nothing in it is personal. This runs for every stored
    /// event and log line with a query, so the common case allocates nothing: names are short (inline strings), and
    /// a value is only decoded when it could be an address or a phone number.
    public func scrub(query: Substring) -> String? {
        guard !query.isEmpty, containsPersonal(query) else { return nil }
        return query.split(separator: "&", omittingEmptySubsequences: false).filter { !isPersonal($0) }
            .joined(separator: "&")
    }

    /// The first pass, pair by pair without splitting into an array.
    private func containsPersonal(_ query: Substring) -> Bool {
        var start = query.startIndex
        while true {
            let end = query[start...].firstIndex(of: "&") ?? query.endIndex
            if isPersonal(query[start..<end]) { return true }
            guard end < query.endIndex else { return false }
            start = query.index(after: end)
        }
    }

    /// A URL or request target with its query scrubbed (`?` dropped when nothing is left), or nil when unchanged.
    public func scrub(url: String) -> String? {
        guard let mark = url.firstIndex(ofASCII: UInt8(ascii: "?")) else { return nil }
        let afterMark = url.utf8.index(after: mark)
        // A fragment stays as it is (browsers do not send it; destinations may carry one).
        let fragment = url[afterMark...].firstIndex(ofASCII: UInt8(ascii: "#")) ?? url.endIndex
        guard let query = scrub(query: url[afterMark..<fragment]) else { return nil }
        let base = String(url[..<mark])
        let tail = String(url[fragment...])
        return query.isEmpty ? base + tail : base + "?" + query + tail
    }

    private func decode(_ text: Substring) -> String {
        // Fast path: nothing to decode (no allocation beyond the copy).
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        return FormDecoding.decode(text)
    }

    private func isPersonal(_ pair: Substring) -> Bool {
        let equals = pair.firstIndex(of: "=")
        let rawName = equals.map { pair[..<$0] } ?? pair
        let rawValue = equals.map { pair[pair.index(after: $0)...] }
        // A name longer than any listed one (escapes counted as three bytes each) is not listed: skip decoding it.
        if rawName.utf8.count <= 3 * longestName {
            let name = decode(rawName).lowercased()
            if kept.contains(name) { return false }
            if names.contains(name) { return true }
        }
        guard let rawValue, Self.mayBePersonal(rawValue) else { return false }
        let value = decode(rawValue)
        return Self.isEmailAddress(value) || Self.isPhoneNumber(value)
    }

    /// Whether a raw value could be an email address (an `@`, or an escape that may be one) or a phone number
    /// (only digits, separators, `+` and escapes): everything else is judged without decoding it.
    private static func mayBePersonal(_ raw: Substring) -> Bool {
        var phoneShaped = true
        var digits = 0
        for byte in raw.utf8 {
            switch byte {
            case UInt8(ascii: "@"), UInt8(ascii: "%"): return true
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "("), UInt8(ascii: ")"),
                UInt8(ascii: " "):
                break
            default: phoneShaped = false
            }
        }
        return phoneShaped && digits >= 7
    }

    /// Whether a decoded name and value (a query parameter, a tracking-API field) are personal by these rules.
    public func isPersonal(name: String, value: String?) -> Bool {
        let lowered = name.lowercased()
        if kept.contains(lowered) { return false }
        if names.contains(lowered) { return true }
        guard let value else { return false }
        return Self.isEmailAddress(value) || Self.isPhoneNumber(value)
    }

    /// `local@domain.tld`, loosely: an `@` with something before it and a dot after it.
    static func isEmailAddress(_ value: String) -> Bool {
        guard let at = value.firstIndex(of: "@"), at != value.startIndex else { return false }
        let domain = value[value.index(after: at)...]
        return domain.contains(".") && !domain.hasSuffix(".") && !domain.contains("@")
    }

    static func isPhoneNumber(_ value: String) -> Bool {
        var digits = 0
        var separators = 0
        for character in value {
            switch character {
            case "0"..."9": digits += 1
            case " ", "-", ".", "(", ")": separators += 1
            case "+" where digits == 0 && separators == 0: break
            default: return false
            }
        }
        guard (7...15).contains(digits) else { return false }
        return value.hasPrefix("+") || separators > 0
    }
}
