import Config
import HeaderRules
import NIOHTTP1
import RegexSet
import RequestTarget

/// A site's `rewrites:` (nginx's `rewrite`, Apache's `RewriteRule`): regular expressions over the request's
/// normalized path, tried in order before routing. The first that matches either answers with a redirect or
/// replaces the path (and, when its target has one, the query) that routing and the handlers see:
///
/// ```yaml
/// rewrites:
///   - { match: "^/blog/(\d{4})/(.+)$", to: "/archive/{1}/{2}", redirect: 301 }   # the client is sent on
///   - { match: "^/product/(\d+)$", to: "/shop/item?id={1}" }                      # the routes see the new target
/// ```
///
/// Expressions are PCRE2, compiled when the configuration loads and matched with a step limit (a pathological one
/// fails to match rather than taking the loop). A rewritten path is normalized again, so routing still decides on
/// the one normal form; one pass, no loops.
struct RewriteRules: Sendable {
    struct Rule: Sendable {
        let pattern: CompiledPattern
        let target: Template
        /// The redirect's status; nil for a rewrite the routes see.
        let redirect: HTTPResponseStatus?
    }

    enum Outcome: Equatable {
        case redirect(location: String, status: HTTPResponseStatus)
        /// The new request target (path and query) in normal form.
        case rewrite(target: String)
        /// The rewritten path cannot be served (climbs above `/`, say).
        case refused(reason: String)
    }

    let rules: [Rule]

    init(from node: ConfigNode) throws {
        rules = try node.list().map { item in
            let map = try item.mapping(keys: ["match", "to", "redirect"])
            let matchNode = try map.required("match", expected: "a regular expression over the path, such as ^/old/(.*)$")
            let pattern: CompiledPattern
            do {
                pattern = try CompiledPattern(try matchNode.nonEmptyString())
            } catch let error as CompiledPattern.SyntaxError {
                throw matchNode.error(error.description)
            }
            let toNode = try map.required("to", expected: "the new path or URL, with {1}, {2}... for the expression's groups")
            let text = try toNode.nonEmptyString()
            let target: Template
            do {
                target = try Template(parsing: text, groups: pattern.groupCount)
            } catch let error as Template.ParseError {
                throw toNode.error(error.description)
            }
            var redirect: HTTPResponseStatus?
            if let value = map["redirect"] {
                let code = try value.int(in: 300...308)
                guard [301, 302, 303, 307, 308].contains(code) else { throw value.error("expected 301, 302, 303, 307 or 308, found \(code)") }
                redirect = HTTPResponseStatus(statusCode: code)
            } else if !text.hasPrefix("/") && !text.hasPrefix("{") {
                throw toNode.error("a rewrite the routes see is a path starting with /; to send the client elsewhere, add redirect: 301 (or 302, 307, 308)")
            }
            return Rule(pattern: pattern, target: target, redirect: redirect)
        }
    }

    /// What the first matching rule makes of `path` (nil: none matches). `query` is the request's (without `?`),
    /// kept by an internal rewrite whose target has none. `facts` are gathered only when a rule matches.
    func apply<Facts: PlaceholderValues>(
        path: Substring, query: Substring?, facts: @autoclosure () -> Facts, scratch: MatchScratch,
        encodedSlashes: EncodedSlashPolicy
    ) -> Outcome? {
        for rule in rules {
            // Matched on the path's bytes in place (a request path is a native, contiguous string); the groups are
            // read while those bytes are lent, so the target is filled in there.
            func render(_ bytes: UnsafeRawBufferPointer) -> String? {
                guard rule.pattern.matches(bytes, scratch: scratch) else { return nil }
                return rule.target.render(Captured(base: facts(), scratch: scratch))
            }
            let rendered = path.utf8.withContiguousStorageIfAvailable { render(UnsafeRawBufferPointer($0)) }
                ?? Array(path.utf8).withUnsafeBytes { render($0) }
            guard let text = rendered else { continue }
            if let status = rule.redirect {
                // Never protocol-relative (`//host`), whatever a group held.
                var location = text
                if location.hasPrefix("/") { while location.hasPrefix("//") || location.hasPrefix("/\\") { location.removeFirst() } }
                return .redirect(location: location, status: status)
            }
            let questionMark = text.firstIndex(of: "?")
            let newPath = text[..<(questionMark ?? text.endIndex)]
            let newQuery = questionMark.map { text[text.index(after: $0)...] } ?? query
            switch NormalizedPath.normalize(newPath, encodedSlashes: encodedSlashes) {
            case .success(let normal):
                let routed = normal ?? String(newPath)
                return .rewrite(target: newQuery.map { routed + "?" + $0 } ?? routed)
            case .failure(let rejection):
                return .refused(reason: "the rewritten path \(newPath): \(rejection.rawValue)")
            }
        }
        return nil
    }

    /// The request's placeholders plus the groups of the expression that matched.
    private struct Captured<Base: PlaceholderValues>: PlaceholderValues {
        let base: Base
        let scratch: MatchScratch
        func value(of placeholder: Placeholder) -> String { base.value(of: placeholder) }
        func capture(_ index: Int) -> String { scratch.group(index) ?? "" }
    }
}
