/// A request target split into its parts (RFC 9112 §3.2): origin-form (`/path?query`), absolute-form
/// (`http://host/path?query`, whose authority takes the place of `Host`), and asterisk-form (`*`, `OPTIONS` only).
/// Authority-form (`CONNECT host:port`) is not served by an edge and is refused by the caller.
public struct RequestTarget: Sendable, Equatable {
    /// The authority of an absolute-form target (`example.com:8080`), nil otherwise.
    public var authority: Substring?
    /// The path (`/` for an absolute-form target without one, `*` for asterisk-form).
    public var path: Substring
    /// What follows the first `?`, nil when there is no `?`.
    public var query: Substring?

    public enum Rejection: String, Error, Sendable {
        case notAPath = "the request target must be a path or an absolute http(s) URL"
        case badAuthority = "the request target's authority is not a valid host"
    }

    public init(authority: Substring? = nil, path: Substring, query: Substring?) {
        self.authority = authority
        self.path = path
        self.query = query
    }

    /// Splits `target`. The path is not normalized here (see ``NormalizedPath``).
    public static func parse(_ target: String) -> Result<RequestTarget, Rejection> {
        let utf8 = target.utf8
        guard let first = utf8.first else { return .failure(.notAPath) }
        if first == UInt8(ascii: "/") {
            let (path, query) = splitQuery(Substring(target))
            return .success(RequestTarget(path: path, query: query))
        }
        if target == "*" { return .success(RequestTarget(path: "*", query: nil)) }
        // absolute-form: scheme "://" authority [path-abempty] ["?" query]; only http and https are ours to serve.
        let rest: Substring
        if utf8.count > 7, target.utf8.prefix(7).lowercasedASCIIEquals("http://") {
            rest = Substring(target).dropFirst(7)
        } else if utf8.count > 8, target.utf8.prefix(8).lowercasedASCIIEquals("https://") {
            rest = Substring(target).dropFirst(8)
        } else {
            return .failure(.notAPath)
        }
        let authorityEnd = rest.utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard HostName.isValidAuthority(authority) else { return .failure(.badAuthority) }
        let remainder = rest[authorityEnd...]
        if remainder.utf8.first == UInt8(ascii: "/") {
            let (path, query) = splitQuery(remainder)
            return .success(RequestTarget(authority: authority, path: path, query: query))
        }
        // `http://host` or `http://host?x`: the path is `/` (RFC 9112 §3.2.2 when there is no path).
        let query = remainder.isEmpty ? nil : remainder.dropFirst()
        return .success(RequestTarget(authority: authority, path: "/", query: query))
    }

    /// The origin-form target with `path` in place of the parsed one: `path?query`.
    public func originForm(path replacement: String? = nil) -> String {
        let path = replacement.map { Substring($0) } ?? self.path
        guard let query else { return String(path) }
        return path + "?" + query
    }

    private static func splitQuery(_ target: Substring) -> (Substring, Substring?) {
        guard let mark = target.firstIndex(ofASCII: UInt8(ascii: "?")) else { return (target, nil) }
        return (target[..<mark], target[target.index(after: mark)...])
    }
}

/// The `Host` header and an absolute-form authority, checked against RFC 3986 §3.2.2 and §3.2.3.
public enum HostName {
    /// `reg-name / IP-literal / IPv4address`, optionally `:port` (digits, at most 65535). An empty value is
    /// accepted (HTTP/1.1 allows an empty Host when the target has no authority; the default site answers it).
    /// Refuses what would make the edge and a backend disagree about the host: userinfo (`evil@localhost`), spaces,
    /// slashes, percent-escapes, and the sub-delimiters the grammar allows but no real host name uses.
    @inlinable
    public static func isValidAuthority<S: StringProtocol>(_ value: S) -> Bool {
        // One pass over the bytes, no copy, specialized where it is called (inlinable): this runs for every request.
        // Through a buffer pointer where the string lends its bytes (native strings; a String's own byte iterator
        // costs several times as much per byte), else through that iterator.
        if let valid = value.utf8.withContiguousStorageIfAvailable({ bytes -> Bool in
            var iterator = bytes.makeIterator()
            return isValidAuthority(bytes: &iterator)
        }) {
            return valid
        }
        var iterator = value.utf8.makeIterator()
        return isValidAuthority(bytes: &iterator)
    }

    @inlinable
    static func isValidAuthority<Bytes: IteratorProtocol<UInt8>>(bytes iterator: inout Bytes) -> Bool {
        guard let first = iterator.next() else { return true }
        var next: UInt8?
        if first == UInt8(ascii: "[") {
            // IP-literal: hex digits, colons and dots (IPv6, with an embedded IPv4 tail); no zone ids.
            var length = 0
            while true {
                guard let byte = iterator.next() else { return false }
                if byte == UInt8(ascii: "]") { break }
                guard hexValue(byte) != nil || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") else { return false }
                length += 1
            }
            guard length > 0 else { return false }
            next = iterator.next()
        } else {
            next = first
            while let byte = next, byte != UInt8(ascii: ":") {
                // unreserved only: pct-encoded and the sub-delimiters the grammar also allows (`;`, `,`, `'`, `(`,
                // `)`, `*`, `+`, `!`, `$`, `&`, `=`) are in no real host name, and some backends split on them.
                guard NormalizedPath.isUnreserved(byte) else { return false }
                next = iterator.next()
            }
            if first == UInt8(ascii: ":") { return false }
        }
        guard let separator = next else { return true }
        guard separator == UInt8(ascii: ":") else { return false }
        // ":" port: up to five digits, at most 65535.
        var port = 0
        var digits = 0
        while let byte = iterator.next() {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"), digits < 5 else { return false }
            port = port * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return port <= 65_535
    }

}

extension Substring.UTF8View {
    /// ASCII case-insensitive equality with a lower-case literal.
    func lowercasedASCIIEquals(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        return literal.withUTF8Buffer { expected in
            zip(self, expected).allSatisfy { pair in
                let (byte, lower) = pair
                return (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == lower
            }
        }
    }
}
