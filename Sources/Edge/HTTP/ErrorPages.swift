import Config
import Foundation
import HeaderRules

/// A site's `errors:` pages for the answers Vantage makes itself (no route or file, upstream down, rate limited,
/// body too large, ...), nginx's `error_page` and Caddy's `handle_errors`:
///
/// ```yaml
/// errors:
///   404: errors/404.html              # a file, read at load
///   5xx: { file: errors/5xx.html }
///   429: { body: "<h1>Slow down</h1><p>Request {request_id}</p>", content_type: text/html }
/// ```
///
/// A status code or a class (`4xx`, `5xx`); an exact code wins over its class. Pages may hold `{status}`,
/// `{reason}`, `{request_id}` and the request's placeholders (HTML-escaped in HTML pages); any other brace stays as
/// written, so CSS and scripts need no escaping.
public struct ErrorPages: Sendable {
    struct Page: Sendable {
        var body: Template
        var contentType: String
        var isHTML: Bool { contentType.lowercased().hasPrefix("text/html") }
    }

    var byStatus: [Int: Page] = [:]
    var byClass: [Int: Page] = [:]

    /// Pages larger than this are refused at load: an error answer is written from memory.
    static let maxPageSize = 1 << 20

    public init(from node: ConfigNode) throws {
        for (key, child) in try node.entries() {
            let page = try Self.readPage(child)
            if key.count == 3, let digit = key.first?.wholeNumberValue, (4...5).contains(digit), key.dropFirst().lowercased() == "xx" {
                byClass[digit] = page
            } else if let code = Int(key), (400...599).contains(code) {
                byStatus[code] = page
            } else {
                throw child.error("expected a status from 400 to 599 or a class (4xx, 5xx) as the key, found \"\(key)\"")
            }
        }
    }

    private static func readPage(_ node: ConfigNode) throws -> Page {
        var fileNode: ConfigNode? = node
        var contentType: String?
        var body: String?
        if (try? node.string()) == nil {
            let map = try node.mapping(keys: ["file", "body", "content_type"])
            fileNode = map["file"]
            if let value = map["body"] {
                guard fileNode == nil else { throw value.error("expected one of file and body, found both") }
                body = try value.string()
            }
            guard fileNode != nil || body != nil else { throw node.error("expected file: PATH or body: TEXT") }
            if let value = map["content_type"] { contentType = try value.nonEmptyString() }
        }
        if let fileNode {
            let path = try fileNode.path()
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                (attributes[.type] as? FileAttributeType) == .typeRegular
            else { throw fileNode.error("expected a readable file, found \"\(path)\" which is not one") }
            guard (attributes[.size] as? Int ?? 0) <= maxPageSize else { throw fileNode.error("an error page may be 1MB at most") }
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw fileNode.error("expected a UTF-8 text file, found \"\(path)\" which cannot be read as one")
            }
            body = text
            if contentType == nil { contentType = MediaTypesForPages.type(forPath: path) }
        }
        return Page(body: Template(lenient: body ?? ""), contentType: contentType ?? "text/html; charset=utf-8")
    }

    /// The page for a status, if the site has one.
    func page(for status: Int) -> Page? { byStatus[status] ?? byClass[status / 100] }
}

/// The page types a file's extension gives (error pages are HTML, text or JSON).
private enum MediaTypesForPages {
    static func type(forPath path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "json": "application/json"
        case "txt": "text/plain; charset=utf-8"
        default: "text/html; charset=utf-8"
        }
    }
}
