import Config
import NIOHTTP1

/// Header changes configured for a site, a route, or the requests a proxy sends upstream:
/// `headers: { set: { Name: value }, add: { Name: value }, remove: [Name, ...] }` (Caddy's `header`, nginx's
/// `add_header`/`proxy_set_header`/`proxy_hide_header`). Values are ``Template``s (`{host}`, `{request_id}`, ...).
///
/// Applied in one step: the names `set` or `remove`d lose every value they had, then `set` and `add` values are
/// appended in the order written. A site's rules come first, a route's after them (``merged(with:)``), so a route
/// can override what its site sets.
public struct HeaderRules: Sendable, Equatable {
    /// Which way the headers go, for what may be changed.
    public enum Direction: Sendable {
        /// Answers to clients.
        case response
        /// Requests a proxy sends upstream.
        case request
    }

    public struct Addition: Sendable, Equatable {
        /// The name as written (sent in this case over HTTP/1.1).
        public let name: String
        public let value: Template
    }

    /// Lower-cased names whose values are dropped before additions (from `set` and `remove`).
    public private(set) var dropped: Set<String> = []
    /// Values appended, in order (from `set` and `add`).
    public private(set) var additions: [Addition] = []

    public init() {}

    public var isEmpty: Bool { dropped.isEmpty && additions.isEmpty }

    /// Whether every value is the same for every request.
    public var isConstant: Bool { additions.allSatisfy(\.value.isConstant) }

    /// Whether the rules set or remove `name` (lower-cased): the edge then leaves its own value out (`Server`,
    /// `Strict-Transport-Security`).
    public func replaces(_ lowercasedName: String) -> Bool { dropped.contains(lowercasedName) }

    /// These rules, then `later`'s.
    public func merged(with later: HeaderRules) -> HeaderRules {
        if later.isEmpty { return self }
        if isEmpty { return later }
        var merged = self
        merged.additions.removeAll { later.dropped.contains($0.name.lowercased()) }
        merged.dropped.formUnion(later.dropped)
        merged.additions += later.additions
        return merged
    }

    /// Headers no rule may touch: the framing and connection management the edge owns (RFC 9110 §7.6.1, RFC 9112
    /// §6), and `Date`, which every answer carries.
    static let framing: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length",
    ]

    /// Reads a `headers:` mapping.
    public init(from node: ConfigNode, direction: Direction) throws {
        let map = try node.mapping(keys: ["set", "add", "remove"])
        func checkedName(_ name: String, at node: ConfigNode) throws -> String {
            guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else {
                throw node.error("\"\(name)\" is not a valid header name")
            }
            let lowercased = name.lowercased()
            if Self.framing.contains(lowercased) {
                throw node.error("\(name) is a connection or framing header the server manages itself")
            }
            if lowercased == "date" && direction == .response { throw node.error("every answer carries the server's Date") }
            if lowercased == "host" && direction == .request {
                throw node.error("the Host sent upstream is the proxy's `host` setting")
            }
            return lowercased
        }
        func readValues(_ key: String) throws -> [(String, Template)] {
            guard let mapping = map[key] else { return [] }
            return try mapping.entries().map { name, child in
                _ = try checkedName(name, at: child)
                let text = try child.string()
                if text.contains("\r") || text.contains("\n") || text.contains("\0") {
                    throw child.error("header values may not contain line breaks")
                }
                do {
                    return (name, try Template(parsing: text))
                } catch let error as Template.ParseError {
                    throw child.error(error.description)
                }
            }
        }
        for (name, value) in try readValues("set") {
            dropped.insert(name.lowercased())
            additions.append(Addition(name: name, value: value))
        }
        if let removals = map["remove"] {
            let items = try removals.list()
            for (index, name) in try removals.stringList().enumerated() {
                dropped.insert(try checkedName(name, at: items[index]))
            }
        }
        for (name, value) in try readValues("add") { additions.append(Addition(name: name, value: value)) }
    }

    /// Applies the rules to a header list.
    public func apply(to headers: inout HTTPHeaders, _ values: some PlaceholderValues) {
        for name in dropped where headers.contains(name: name) { headers.remove(name: name) }
        for addition in additions { headers.add(name: addition.name, value: addition.value.render(values)) }
    }

    /// Whether a header arriving as bytes (from an upstream, or a client's request) is dropped.
    /// Compares bytes in place (no string made per header: it runs for every header of a proxied answer).
    @inline(__always)
    public func drops<Bytes: Collection<UInt8>>(_ name: Bytes) -> Bool {
        guard !dropped.isEmpty else { return false }
        let count = name.count
        for candidate in dropped where candidate.utf8.count == count {
            if zip(candidate.utf8, name).allSatisfy({ $0 == Self.lowercased($1) }) { return true }
        }
        return false
    }

    /// Calls `emit` with every added header, values rendered.
    public func forEachAddition(_ values: some PlaceholderValues, _ emit: (String, String) -> Void) {
        for addition in additions { emit(addition.name, addition.value.render(values)) }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    /// RFC 9110 §5.6.2 token characters.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
