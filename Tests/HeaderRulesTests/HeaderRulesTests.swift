import Config
import NIOHTTP1
import Testing

@testable import HeaderRules

private struct Facts: PlaceholderValues {
    var values: [Placeholder: String] = [.host: "example.com", .requestID: "r-1", .path: "/old-blog/2024/x", .rest: "2024/x", .query: "a=1"]
    func value(of placeholder: Placeholder) -> String { values[placeholder] ?? "" }
}

private func rules(_ yaml: String, _ direction: HeaderRules.Direction = .response) throws -> HeaderRules {
    try HeaderRules(from: ConfigDocument(yaml: yaml, file: "test.yaml", environment: [:]).root, direction: direction)
}

struct TemplateTests {
    @Test func placeholdersAreFilledAndBracesEscaped() throws {
        let template = try Template(parsing: "https://{host}/blog/{rest}?{query} {{literal}}")
        #expect(template.render(Facts()) == "https://example.com/blog/2024/x?a=1 {literal}")
        #expect(!template.isConstant)
        #expect(try Template(parsing: "DENY").constantText == "DENY")
    }

    @Test func unknownPlaceholdersAreRefusedWithTheKnownOnes() {
        #expect(throws: Template.ParseError.unknownPlaceholder("hots")) { try Template(parsing: "{hots}") }
        #expect(throws: Template.ParseError.unclosedBrace) { try Template(parsing: "/a/{path") }
        #expect(Template.ParseError.unknownPlaceholder("x").description.contains("{request_id}"))
    }
}

struct HeaderRulesTests {
    @Test func setReplacesAddAppendsRemoveDrops() throws {
        let rules = try rules("""
            set: { Cache-Control: "public, max-age=60", X-Served-For: "{host}" }
            add: { Link: "</a.css>; rel=preload" }
            remove: [X-Powered-By, Server]
            """)
        var headers: HTTPHeaders = ["Cache-Control": "no-cache", "X-Powered-By": "Express", "Link": "</b.js>", "Content-Type": "text/html"]
        rules.apply(to: &headers, Facts())
        #expect(headers["cache-control"] == ["public, max-age=60"])
        #expect(headers["x-served-for"] == ["example.com"])
        #expect(headers["link"] == ["</b.js>", "</a.css>; rel=preload"])
        #expect(!headers.contains(name: "x-powered-by") && headers["content-type"] == ["text/html"])
        #expect(rules.replaces("server") && !rules.replaces("date"))
        #expect(rules.drops("X-POWERED-BY".utf8) && !rules.drops("Content-Type".utf8))
    }

    @Test func aRoutesRulesComeAfterItsSites() throws {
        let site = try rules("set: { X-Frame-Options: DENY, Cache-Control: no-store }")
        let route = try rules("set: { Cache-Control: \"public, max-age=3600\" }\nremove: [X-Frame-Options]")
        var headers = HTTPHeaders()
        site.merged(with: route).apply(to: &headers, Facts())
        #expect(headers["cache-control"] == ["public, max-age=3600"])
        #expect(!headers.contains(name: "x-frame-options"))
        #expect(site.merged(with: HeaderRules()).additions.count == 2)
    }

    @Test func framingAndConnectionHeadersCannotBeTouched() {
        for (yaml, words) in [
            ("set: { Content-Length: \"5\" }", "framing"), ("remove: [Transfer-Encoding]", "framing"),
            ("add: { Connection: close }", "framing"), ("set: { Date: x }", "Date"), ("set: { \"Bad Name\": x }", "valid header name"),
            ("set: { X-A: \"{nope}\" }", "unknown placeholder {nope}"), ("sett: { X-A: b }", "sett"),
        ] {
            #expect {
                try rules(yaml)
            } throws: { error in
                "\(error)".contains(words)
            }
        }
        #expect(throws: (any Error).self) { try rules("set: { Host: x }", .request) }
        #expect((try? rules("set: { X-Forwarded-Host: \"{host}\" }", .request)) != nil)
    }
}
