import Foundation
import Testing

/// A site's `errors:` pages through the real binary: the edge's own 404 and 502 as the site's pages, JSON or text
/// when the client asks for it, upstream errors passing unless `intercept_errors`, and the page in Chromium.
@Suite(.serialized) struct ErrorPagesTests {
    @Test func theSitesPagesForTheEdgesOwnErrors() throws {
        let node = try BackendProcess.node("n1")
        defer { node.kill() }
        let closedPort = try freePort()
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            sites:
              - errors:
                  404: "{{DIR}}/404.html"
                  5xx: { body: "<h1>Down for a moment</h1><p>{status}: {reason}</p>" }
                headers: { set: { X-Frame-Options: DENY } }
                routes:
                  - { path: /files/, static: { root: "{{DIR}}/www", strip_prefix: true } }
                  - { path: /down/, proxy: { upstreams: ["127.0.0.1:\(closedPort)"], retries: 0 } }
                  - { path: /app/, proxy: { upstreams: ["\(node.address)"] } }
                  - { path: /strict/, proxy: { upstreams: ["\(node.address)"], intercept_errors: true } }
            """
        ) { directory in
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("www"), withIntermediateDirectories: true)
            try """
                <!doctype html><html><head><title>Not here</title><style>body { font: 16px serif }</style></head>
                <body><h1>Nothing at {path}</h1><p id="ref">Reference {request_id}</p></body></html>
                """.write(to: directory.appendingPathComponent("404.html"), atomically: true, encoding: .utf8)
        }

        let missing = try curl([vantage.url("/files/gone?x=1")])
        #expect(missing.status == 404 && missing.headers["content-type"] == "text/html; charset=utf-8")
        #expect(missing.body.contains("<h1>Nothing at /files/gone</h1>") && missing.body.contains("body { font: 16px serif }"))
        #expect(missing.body.firstMatch(of: /Reference [0-9a-f]{32}</) != nil, "the request ID in the page")
        #expect(missing.headers["x-frame-options"] == "DENY", "header rules apply to error pages")

        // What the client asks for: JSON for an API client, text for a terminal that says so.
        let apiAnswer = try curl([vantage.url("/nowhere"), "-H", "Accept: application/json"])
        let error = try #require(try json(apiAnswer.body)["error"] as? [String: Any])
        #expect(apiAnswer.status == 404 && error["status"] as? Int == 404 && error["reason"] as? String == "no route matches this path")
        #expect((error["request_id"] as? String)?.count == 32)
        let text = try curl([vantage.url("/nowhere"), "-H", "Accept: text/plain"])
        #expect(text.status == 404 && text.body.hasPrefix("404 Not Found: no route matches this path"))

        // An upstream that is down: the 5xx page, with the reason filled in.
        let down = try curl([vantage.url("/down/x")])
        #expect(down.status == 502 && down.body.contains("<h1>Down for a moment</h1>") && down.body.contains("502: the upstream"))

        // The application's own errors pass, unless the route intercepts them.
        let passed = try curl([vantage.url("/app/status/404")])
        #expect(passed.status == 404 && passed.headers["content-type"] == "application/json" && passed.body.contains("n1"))
        let intercepted = try curl([vantage.url("/strict/status/503")])
        #expect(intercepted.status == 503 && intercepted.body.contains("503: the application answered 503"))
        #expect(try curl([vantage.url("/strict/echo")]).status == 200, "the connection to the app still serves")
        let kept = try curl([vantage.url("/strict/status/404"), vantage.url("/strict/echo")])
        #expect(kept.status == 200, "an intercepted answer's body was read off the keep-alive connection")

        // A browser shows the page.
        let dom = try run(["chromium", "--no-sandbox", "--headless", "--disable-gpu", "--dump-dom", vantage.url("/files/nothing")])
        #expect(dom.stdout.contains("Nothing at /files/nothing") && dom.stdout.contains("Reference "), "\(dom.stdout.prefix(500))")
        #expect(vantage.stop() == 0)
    }
}
