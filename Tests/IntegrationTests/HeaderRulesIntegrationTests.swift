import Foundation
import Testing

/// `headers:` on sites and routes and `proxy.request_headers`, through the real binary: static files (cached heads
/// included), a Node backend, fixed answers, redirects and the edge's own errors, over HTTP/1.1 and HTTP/2.
@Suite(.serialized) struct HeaderRulesIntegrationTests {
    @Test func sitesAndRoutesChangeEveryAnswersHeaders() throws {
        let node = try BackendProcess.node("n1")
        defer { node.kill() }
        let vantage = try VantageProcess(
            config: """
                listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
                admin: { listen: "127.0.0.1:0" }
                tls: { certificates: [{ cert: "{{DIR}}/site.pem", key: "{{DIR}}/site.key" }] }
                sites:
                  - hsts: true
                    headers:
                      set: { X-Frame-Options: DENY, Content-Security-Policy: "default-src 'self'" }
                      remove: [Server]
                    routes:
                      - path: /files/
                        static: { root: "{{DIR}}/www", strip_prefix: true }
                        headers:
                          set: { Cache-Control: "public, max-age=60", X-Request-Id: "{request_id}" }
                          add: { X-Route: "files for {host}" }
                      - path: /api/
                        proxy:
                          upstreams: ["\(node.address)"]
                          request_headers:
                            set: { X-From-Edge: "{scheme} {method} {rest}" }
                            remove: [X-Custom]
                        headers: { set: { X-Backend: "hidden" }, remove: [Strict-Transport-Security] }
                      - path: /old-blog/
                        redirect: { to: "/blog/{rest}", status: 301 }
                      - path: /ok
                        respond: { body: "ok", headers: { X-Frame-Options: SAMEORIGIN } }
                """, expect: ["http", "https", "admin"]
        ) { directory in
            _ = try makeCertificate(in: directory, name: "site", names: ["localhost", "127.0.0.1"])
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            try "<!doctype html><title>x</title>".write(to: www.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        }

        // A static file, twice (the second from the loop's cached head), over both protocols.
        for attempt in 0..<2 {
            for (url, flags) in [(vantage.url("/files/index.html"), []), (vantage.url("/files/index.html", kind: "https"), ["-k", "--http2"])] {
                let answer = try curl(flags + [url])
                #expect(answer.status == 200, "\(attempt) \(url): \(vantage.log.suffix(1500))")
                #expect(answer.headers["cache-control"] == "public, max-age=60", "the route's value replaces the file server's")
                #expect(answer.headers["x-frame-options"] == "DENY" && answer.headers["content-security-policy"] == "default-src 'self'")
                #expect(answer.headers["server"] == nil, "removed by the site")
                #expect(answer.headers["x-route"] == "files for 127.0.0.1")
                #expect(answer.headers["x-request-id"]?.count == 32, "a request ID is made for {request_id}")
                #expect(answer.headers["date"] != nil)
                if flags.isEmpty == false { #expect(answer.headers["strict-transport-security"] == "max-age=31536000") }
            }
        }

        // The edge's own errors carry the site's and route's headers too.
        let missing = try curl([vantage.url("/files/nope.html")])
        #expect(missing.status == 404 && missing.headers["x-frame-options"] == "DENY" && missing.headers["x-route"] != nil)
        let noRoute = try curl([vantage.url("/nothing-here")])
        #expect(noRoute.status == 404 && noRoute.headers["x-frame-options"] == "DENY" && noRoute.headers["server"] == nil)

        // Proxied: upstream headers replaced or hidden, headers to the upstream set and removed.
        for (url, flags) in [(vantage.url("/api/echo"), []), (vantage.url("/api/echo", kind: "https"), ["-k", "--http2"])] {
            let answer = try curl(flags + [url, "-H", "X-Custom: secret", "-H", "X-Kept: yes"])
            #expect(answer.status == 200, "\(vantage.log.suffix(1500))")
            #expect(answer.headers["x-backend"] == "hidden")
            #expect(answer.headers["x-frame-options"] == "DENY")
            #expect(answer.headers["strict-transport-security"] == nil, "removed by the route")
            let upstream = try json(answer.body)["headers"] as? [String: String] ?? [:]
            #expect(upstream["x-custom"] == nil && upstream["x-kept"] == "yes")
            #expect(upstream["x-from-edge"] == (flags.isEmpty ? "http GET echo" : "https GET echo"))
            #expect(upstream["x-forwarded-for"] == "127.0.0.1", "the forwarding headers are still made")
        }

        // Redirects take the rest of the path; fixed answers keep their own header unless the site sets it.
        let moved = try curl([vantage.url("/old-blog/2024/x?y=1")])
        #expect(moved.status == 301 && moved.headers["location"] == "/blog/2024/x")
        #expect(moved.headers["x-frame-options"] == "DENY")
        let ok = try curl([vantage.url("/ok")])
        #expect(ok.body == "ok" && ok.headers["x-frame-options"] == "DENY", "site rules come after the handler's headers")
        #expect(vantage.stop() == 0)
    }

    @Test func rulesThatCannotWorkAreRefusedAtLoad() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-headers-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        for (rule, words) in [
            ("set: { Content-Length: \"1\" }", "Content-Length is a connection or framing header"),
            ("set: { X-A: \"{hots}\" }", "unknown placeholder {hots}"),
        ] {
            try """
                listen: { http: "127.0.0.1:0" }
                sites:
                  - routes:
                      - { path: /, respond: ok, headers: { \(rule) } }
                """.write(to: file, atomically: true, encoding: .utf8)
            let result = try run([VantageProcess.binary, "validate", "--config", file.path])
            #expect(result.status != 0)
            #expect((result.stdout + result.stderr).contains(words), "\(result.stdout)\(result.stderr)")
            #expect((result.stdout + result.stderr).contains("sites[0].routes[0].headers"), "\(result.stdout)\(result.stderr)")
        }
    }
}
