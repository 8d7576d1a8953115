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

    public init(drop: [String] = [], keep: [String] = []) {
        kept = Set(keep.map { $0.lowercased() })
        names = Self.defaultNames.union(drop.map { $0.lowercased() }).subtracting(kept)
    }

    /// `query` without its personal parameters, or nil when nothing in it is personal (nothing is allocated then).
    public func scrub(query: Substring) -> String? {
        guard !query.isEmpty else { return nil }
        var kept: [Substring] = []
        var dropped = false
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) {
            if isPersonal(pair) {
                dropped = true
            } else {
                kept.append(pair)
            }
        }
        return dropped ? kept.joined(separator: "&") : nil
    }

    /// A URL or request target with its query scrubbed (`?` dropped when nothing is left), or nil when unchanged.
    public func scrub(url: String) -> String? {
        guard let mark = url.utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        let afterMark = url.utf8.index(after: mark)
        // A fragment stays as it is (browsers do not send it; destinations may carry one).
        let fragment = url.utf8[afterMark...].firstIndex(of: UInt8(ascii: "#")) ?? url.endIndex
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
        let name = decode(equals.map { pair[..<$0] } ?? pair)
        return isPersonal(name: name, value: equals.map { decode(pair[pair.index(after: $0)...]) })
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
