import Foundation
import Testing

/// `static.try_files` through the real binary: clean URLs (`/about` → `about.html`), folders with an index, and a
/// single-page app whose client-side routes all load its `index.html`, read by headless Chromium.
@Suite(.serialized) struct TryFilesTests {
    @Test func cleanURLsAndASinglePageApp() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            sites:
              - routes:
                  - path: /app/
                    static: { root: "{{DIR}}/app", strip_prefix: true, try_files: ["{path}", "/index.html"] }
                  - path: /
                    static: { root: "{{DIR}}/site", try_files: ["{path}", "{path}.html", "{path}/"] }
            """
        ) { directory in
            let site = directory.appendingPathComponent("site"), app = directory.appendingPathComponent("app")
            try FileManager.default.createDirectory(at: site.appendingPathComponent("docs"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: app.appendingPathComponent("assets"), withIntermediateDirectories: true)
            try "<!doctype html><title>About</title><h1>about page</h1>".write(to: site.appendingPathComponent("about.html"), atomically: true, encoding: .utf8)
            try "<!doctype html><title>Docs</title><h1>docs index</h1>".write(to: site.appendingPathComponent("docs/index.html"), atomically: true, encoding: .utf8)
            try "plain".write(to: site.appendingPathComponent("robots.txt"), atomically: true, encoding: .utf8)
            // A client-side router: the page shows the route it was loaded for.
            try """
                <!doctype html><html><head><title>App</title><script src="/app/assets/router.js" defer></script></head>
                <body><main id="view">loading</main><noscript>This app needs JavaScript.</noscript></body></html>
                """.write(to: app.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            try """
                document.getElementById("view").textContent = "route " + location.pathname.replace(/^\\/app/, "");
                """.write(to: app.appendingPathComponent("assets/router.js"), atomically: true, encoding: .utf8)
        }

        let about = try curl([vantage.url("/about")])
        #expect(about.status == 200 && about.body.contains("about page") && about.headers["content-type"]?.hasPrefix("text/html") == true)
        #expect(try curl([vantage.url("/about")]).body.contains("about page"), "again, from the cache")
        #expect(try curl([vantage.url("/docs")]).body.contains("docs index"), "a folder's index without the redirect")
        #expect(try curl([vantage.url("/robots.txt")]).body == "plain")
        #expect(try curl([vantage.url("/missing")]).status == 404)
        #expect(try curl([vantage.url("/.env")]).status == 404)

        // Deep links of the app answer its index; its real files stay files.
        let deep = try curl([vantage.url("/app/settings/profile")])
        #expect(deep.status == 200 && deep.body.contains("<main id=\"view\">"))
        #expect(try curl([vantage.url("/app/assets/router.js")]).headers["content-type"]?.contains("javascript") == true)
        let dom = try run(["chromium", "--no-sandbox", "--headless", "--disable-gpu", "--dump-dom", vantage.url("/app/settings/profile")])
        #expect(dom.stdout.contains("route /settings/profile"), "\(dom.stdout.prefix(600))")
        #expect(vantage.stop() == 0)
    }
}
