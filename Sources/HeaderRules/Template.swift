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
}

/// Where a template finds the values of its placeholders.
public protocol PlaceholderValues {
    func value(of placeholder: Placeholder) -> String
}

/// A string with `{placeholder}`s, parsed once at load. `{{` and `}}` stand for literal braces.
public struct Template: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal(String)
        case placeholder(Placeholder)
    }

    let parts: [Part]
    /// The text as written.
    public let description: String

    /// Why a template cannot be read.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unknownPlaceholder(String)
        case unclosedBrace

        public var description: String {
            switch self {
            case .unknownPlaceholder(let name):
                "unknown placeholder {\(name)}; known: " + Placeholder.allCases.map { "{\($0.rawValue)}" }.joined(separator: ", ")
            case .unclosedBrace: "a { without its closing } (write {{ for a literal brace)"
            }
        }
    }

    public init(parsing text: String, allowed: Set<Placeholder> = Set(Placeholder.allCases)) throws(ParseError) {
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
                guard let placeholder = Placeholder(rawValue: name), allowed.contains(placeholder) else {
                    throw .unknownPlaceholder(name)
                }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.placeholder(placeholder))
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

    /// Whether the template uses `placeholder`.
    public func uses(_ placeholder: Placeholder) -> Bool { parts.contains(.placeholder(placeholder)) }

    /// The text with the request's values filled in.
    public func render(_ values: some PlaceholderValues) -> String {
        if parts.count == 1, case .literal(let text) = parts[0] { return text }
        var text = ""
        for part in parts {
            switch part {
            case .literal(let literal): text += literal
            case .placeholder(let placeholder): text += values.value(of: placeholder)
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
