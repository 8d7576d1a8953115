import Foundation
import Testing

/// A site's `rewrites` through the real binary: redirects with the expression's groups, internal rewrites that
/// routing and a backend see (the access log keeps the target as sent), and a rewrite that would climb above the
/// root refused.
@Suite(.serialized) struct RewriteTests {
    @Test func rewritesRouteOnTheirResult() throws {
        let node = try BackendProcess.node("n1")
        defer { node.kill() }
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: access.log
            sites:
              - rewrites:
                  - { match: '^/blog/(\\d{4})/(.+)$', to: "/archive/{1}/{2}", redirect: 301 }
                  - { match: '^/item/(\\d+)$', to: "/api/echo?id={1}" }
                  - { match: '^/climb/(.*)$', to: "/{1}/../../../etc" }
                  - { match: '^/who$', to: "/api/echo?from={remote_addr}&id={request_id}&on={host}" }
                routes:
                  - { path: /api/, proxy: { upstreams: ["\(node.address)"] } }
                  - { path: /, respond: "site" }
            """)
        let moved = try curl([vantage.url("/blog/2024/hello-world")])
        #expect(moved.status == 301 && moved.headers["location"] == "/archive/2024/hello-world")
        let rewritten = try curl([vantage.url("/item/42")])
        #expect(rewritten.status == 200 && rewritten.headers["x-backend"] == "n1", "routing saw /api/echo")
        #expect(try json(rewritten.body)["url"] as? String == "/api/echo?id=42")
        #expect(try curl([vantage.url("/climb/a")]).status == 400)
        // Placeholders are filled while routing; the request ID they settle is the one the upstream gets.
        let who = try json(try curl([vantage.url("/who")]).body)
        let whoURL = who["url"] as? String ?? ""
        let upstreamID = (who["headers"] as? [String: Any])?["x-request-id"] as? String ?? "none"
        #expect(whoURL == "/api/echo?from=127.0.0.1&id=\(upstreamID)&on=127.0.0.1", "got \(whoURL)")
        #expect(try curl([vantage.url("/other")]).body == "site")
        #expect(vantage.stop() == 0)
        let log = try String(contentsOf: vantage.directory.appendingPathComponent("access.log"), encoding: .utf8)
        #expect(log.contains("\"uri\":\"/item/42\""), "the log keeps the target as sent")
    }
}
