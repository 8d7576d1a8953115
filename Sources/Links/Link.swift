import Foundation

/// A campaign short link: `host/slug` redirects to `destination`.
public struct Link: Sendable, Equatable, Hashable {
    /// Stable id (a random UUID), used by the admin API and in click events.
    public var id: String
    /// The host the slug lives on, lower-case, without port.
    public var host: String
    /// The path after `/` (or after the route's prefix), case-sensitive.
    public var slug: String
    /// Absolute http(s) URL.
    public var destination: String
    /// 301, 302, 307 or 308.
    public var status: Int = 302
    /// Unix milliseconds after which the link answers `expiredStatus` (or redirects to `fallback`).
    public var expiresAt: Int64?
    /// Where an expired or exhausted link sends clients; nil: 410 Gone.
    public var fallback: String?
    /// Clicks after which the link is exhausted (like an expiry).
    public var maxClicks: Int?
    /// Append the request's query to the destination (minus `queryDenyList`).
    public var passQuery = false
    /// Query parameters never passed through (compared case-insensitively).
    public var queryDenyList: [String] = []
    /// Parameters added to the destination (`utm_source`, ...), unless it already has them.
    public var addQuery: [String: String] = [:]
    public var tags: [String] = []
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, host: String, slug: String, destination: String, createdAt: Int64) {
        self.id = id
        self.host = host
        self.slug = slug
        self.destination = destination
        self.createdAt = createdAt
        self.updatedAt = createdAt
    }

    /// Where a click on this link goes, given the request's query.
    public func target(query: Substring) -> String {
        Self.target(destination: destination, query: query, passQuery: passQuery, denyList: queryDenyList, addQuery: addQuery)
    }

    static func target(
        destination: String, query: Substring, passQuery: Bool, denyList queryDenyList: [String], addQuery: [String: String]
    ) -> String {
        guard passQuery || !addQuery.isEmpty else { return destination }
        var extra: [String] = []
        if passQuery {
            for pair in query.split(separator: "&") where !pair.isEmpty {
                let name = pair.prefix { $0 != "=" }.lowercased()
                if !queryDenyList.contains(where: { $0.lowercased() == name }) { extra.append(String(pair)) }
            }
        }
        let existing = destination.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        let existingNames = Set(existing.split(separator: "&").map { $0.prefix { $0 != "=" }.lowercased() })
        for (name, value) in addQuery.sorted(by: { $0.key < $1.key }) where !existingNames.contains(name.lowercased()) {
            extra.append(Self.escape(name) + "=" + Self.escape(value))
        }
        guard !extra.isEmpty else { return destination }
        let fragmentStart = destination.firstIndex(of: "#")
        let base = fragmentStart.map { String(destination[..<$0]) } ?? destination
        let fragment = fragmentStart.map { String(destination[$0...]) } ?? ""
        let separator = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
        return base + separator + extra.joined(separator: "&") + fragment
    }

    static func escape(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// What an admin or a client gets wrong about a link, said plainly (the admin API answers 400 with it).
public struct LinkValidationError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum LinkRules {
    /// Slugs: 1 to 128 of letters, digits, `-`, `_`, `.`, `/` (not starting or ending with `/`, no `..`).
    public static let maxSlugBytes = 128
    public static let maxDestinationBytes = 4096
    /// Generated slugs: 7 characters from an alphabet without look-alikes (no 0/O, 1/l/I).
    public static let generatedAlphabet = Array("23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ")
    public static let generatedLength = 7

    public static func checkSlug(_ slug: String) throws {
        guard !slug.isEmpty, slug.utf8.count <= maxSlugBytes else {
            throw LinkValidationError("slug must be 1 to \(maxSlugBytes) characters")
        }
        let allowed = slug.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "/"):
                true
            default: false
            }
        }
        guard allowed else { throw LinkValidationError("slug may only use letters, digits, -, _, . and /") }
        guard !slug.hasPrefix("/"), !slug.hasSuffix("/"), !slug.contains(".."), !slug.contains("//") else {
            throw LinkValidationError("slug must not start or end with /, nor contain .. or //")
        }
    }

    /// An absolute http(s) URL with a host, no spaces or control characters, that does not point back at the link
    /// itself.
    public static func checkDestination(_ destination: String, host: String, slug: String) throws {
        guard destination.utf8.count <= maxDestinationBytes else {
            throw LinkValidationError("destination is longer than \(maxDestinationBytes) bytes")
        }
        guard !destination.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\\") }) else {
            throw LinkValidationError("destination contains spaces, backslashes or control characters")
        }
        let lowered = destination.lowercased()
        guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://") else {
            throw LinkValidationError("destination must be an absolute http:// or https:// URL")
        }
        guard let components = URLComponents(string: destination), let target = components.host?.lowercased(), !target.isEmpty else {
            throw LinkValidationError("destination has no host")
        }
        guard components.user == nil, components.password == nil else {
            throw LinkValidationError("destination must not carry credentials")
        }
        let path = components.percentEncodedPath
        if target == host, path == "/" + slug || path == "/" + slug + "/" {
            throw LinkValidationError("destination points back at the link itself")
        }
    }

    public static func checkStatus(_ status: Int) throws {
        guard [301, 302, 307, 308].contains(status) else {
            throw LinkValidationError("status must be 301, 302, 307 or 308")
        }
    }

    public static func generateSlug() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<generatedLength).map { _ in generatedAlphabet.randomElement(using: &generator)! })
    }

    /// Host names as links store them: lower-case, no port, no trailing dot.
    public static func normalizeHost(_ host: String) -> String {
        var text = Substring(host.lowercased())
        if text.hasPrefix("[") {
            if let close = text.firstIndex(of: "]") { text = text[...close] }
        } else if let colon = text.lastIndex(of: ":") {
            text = text[..<colon]
        }
        if text.hasSuffix(".") { text = text.dropLast() }
        return String(text)
    }
}
