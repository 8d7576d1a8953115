/// A value a template can hold: facts of the request, filled in as an answer is written.
public enum Placeholder: String, Sendable, CaseIterable {
    /// The request's host name, lower-cased, without the port (nginx's `$host`).
    case host
    /// The request ID the edge settled on (kept from the client when valid, made otherwise).
    case requestID = "request_id"
    /// The request path (normal form), without the query.
    case path
    /// The path after the route's prefix (`/old-blog/` and `/old-blog/2024/x` give `2024/x`).
    case rest
    /// The query without its `?` (empty when there is none).
    case query
    /// Path and query as requested (`{path}?{query}`, or the path alone).
    case uri
    /// `http` or `https`.
    case scheme
    /// The request method.
    case method
    /// The client's address (after `trusted_proxies`).
    case remoteAddress = "remote_addr"
    /// An error page's status code (only in error pages).
    case status
    /// The short reason the edge gives for an error (only in error pages).
    case reason

    /// What header values and redirect targets may hold (an answer's status is not known yet when they are made).
    public static let requestFacts: Set<Placeholder> = Set(allCases).subtracting([.status, .reason])
}

/// Where a template finds the values of its placeholders.
public protocol PlaceholderValues {
    func value(of placeholder: Placeholder) -> String
    /// Group `index` of a rewrite's regular expression (`{1}`, `{2}`, ...); empty where there is none.
    func capture(_ index: Int) -> String
}

extension PlaceholderValues {
    public func capture(_ index: Int) -> String { "" }
}

extension Placeholder {
    /// The value of `path`, `rest`, `query` and `uri` for a request target (nil for the other placeholders), read
    /// the same way wherever templates are filled.
    public func value(inTarget uri: String, routePrefix: String) -> String? {
        let pathEnd = uri.firstIndex(of: "?") ?? uri.endIndex
        switch self {
        case .path: return String(uri[..<pathEnd])
        case .rest:
            // Without a leading slash: `/old-blog/` and `/old-blog/2024/x` give `2024/x`.
            guard uri[..<pathEnd].hasPrefix(routePrefix) else { return "" }
            var rest = uri[..<pathEnd].dropFirst(routePrefix.count)
            while rest.first == "/" { rest = rest.dropFirst() }
            return String(rest)
        case .query: return pathEnd < uri.endIndex ? String(uri[uri.index(after: pathEnd)...]) : ""
        case .uri: return uri
        default: return nil
        }
    }
}

/// A string with `{placeholder}`s, parsed once at load. `{{` and `}}` stand for literal braces.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal(String)
        case placeholder(Placeholder)
        /// `{1}`...`{9}`: a group of a rewrite's regular expression.
        case capture(Int)
    }

    let parts: [Part]
    /// The text as written.
    public let description: String

    /// Why a template cannot be read.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unknownPlaceholder(String)
        case unclosedBrace
        case noSuchGroup(Int, groups: Int)

        public var description: String {
            switch self {
            case .unknownPlaceholder(let name):
                "unknown placeholder {\(name)}; known: " + Placeholder.allCases.filter(Placeholder.requestFacts.contains)
                    .map { "{\($0.rawValue)}" }.joined(separator: ", ")
            case .unclosedBrace: "a { without its closing } (write {{ for a literal brace)"
            case .noSuchGroup(let index, let groups):
                "{\(index)} names a group the expression does not have (it has \(groups))"
            }
        }
    }

    /// A template of text with braces of its own (an HTML error page's CSS or script): only known placeholders are
    /// filled, every other brace is kept as it is.
    public init(lenient text: String) {
        description = text
        var parts: [Part] = []
        var literal = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            literal += rest[..<open]
            let afterOpen = rest.index(after: open)
            if let close = rest[afterOpen...].firstIndex(of: "}"), let placeholder = Placeholder(rawValue: String(rest[afterOpen..<close])) {
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.placeholder(placeholder))
                rest = rest[rest.index(after: close)...]
            } else {
                literal.append("{")
                rest = rest[afterOpen...]
            }
        }
        literal += rest
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// `groups`: how many capturing groups `{1}`...`{9}` may name (a rewrite's expression); none elsewhere.
    public init(parsing text: String, allowed: Set<Placeholder> = Placeholder.requestFacts, groups: Int = 0) throws(ParseError) {
        description = text
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "{" {
                if next < text.endIndex && text[next] == "{" {
                    literal.append("{")
                    index = text.index(after: next)
                    continue
                }
                guard let close = text[next...].firstIndex(of: "}") else { throw .unclosedBrace }
                let name = String(text[next..<close])
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                if let index = Int(name), name.count == 1 {
                    guard (1...9).contains(index), index <= groups else { throw .noSuchGroup(index, groups: groups) }
                    parts.append(.capture(index))
                } else {
                    guard let placeholder = Placeholder(rawValue: name), allowed.contains(placeholder) else {
                        throw .unknownPlaceholder(name)
                    }
                    parts.append(.placeholder(placeholder))
                }
                index = text.index(after: close)
                continue
            }
            if character == "}" && next < text.endIndex && text[next] == "}" {
                literal.append("}")
                index = text.index(after: next)
                continue
            }
            literal.append(character)
            index = next
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// Whether the template is the same for every request (no placeholder).
    public var isConstant: Bool { parts.allSatisfy { if case .literal = $0 { true } else { false } } }


    /// The text with the request's values filled in, each passed through `escape` first (HTML, say).
    public func render(_ values: some PlaceholderValues, escape: ((String) -> String)? = nil) -> String {
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        var text = ""
        for part in parts {
            switch part {
            case .literal(let literal): text += literal
            case .placeholder(let placeholder):
                let value = values.value(of: placeholder)
                text += escape.map { $0(value) } ?? value
            case .capture(let index):
                let value = values.capture(index)
                text += escape.map { $0(value) } ?? value
            }
        }
        return text
    }

    /// The text of a constant template (nil when it has placeholders).
    public var constantText: String? {
        if parts.isEmpty { return "" }
        guard isConstant else { return nil }
        return parts.map { if case .literal(let text) = $0 { text } else { "" } }.joined()
    }
}
