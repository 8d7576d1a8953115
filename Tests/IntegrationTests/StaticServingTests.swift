import Foundation
import Testing

/// The real binary serving a folder over plain HTTP/1.1, driven by curl.
@Suite(.serialized) struct StaticServingTests {
    static let config = """
        listen: { http: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        access_log: "{{DIR}}/access.log"
        sites:
          - hosts: "*"
            routes:
              - path: /
                static: { root: "{{DIR}}/www", cache_control: "public, max-age=60" }
              - path: /files/
                static: { root: "{{DIR}}/www", strip_prefix: true, browse: true }
        """

    static func start() throws -> VantageProcess {
        try VantageProcess(config: config, expect: ["http", "admin"]) { directory in
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www.appendingPathComponent("sub"), withIntermediateDirectories: true)
            try String(repeating: "<p>vantage</p>\n", count: 200).write(
                to: www.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            try "secret".write(to: www.appendingPathComponent(".env"), atomically: true, encoding: .utf8)
            try Data(repeating: 42, count: 3 << 20).write(to: www.appendingPathComponent("large.bin"))
            try "nested".write(to: www.appendingPathComponent("sub/file.txt"), atomically: true, encoding: .utf8)
        }
    }

    @Test func getHeadConditionalAndRange() throws {
        let vantage = try Self.start()
        let page = try curl([vantage.url("/")])
        #expect(page.status == 200)
        #expect(page.body.hasPrefix("<p>vantage</p>"))
        #expect(page.headers["cache-control"] == "public, max-age=60")
        let etag = try #require(page.headers["etag"])
        #expect(try curl(["-H", "If-None-Match: \(etag)", vantage.url("/index.html")]).status == 304)
        let head = try curl(["-I", vantage.url("/index.html")])
        #expect(head.headers["content-length"] == "3000")
        let range = try curl(["-H", "Range: bytes=3-9", vantage.url("/index.html")])
        #expect(range.status == 206)
        #expect(range.body == "vantage")
        #expect(try curl(["-H", "Range: bytes=9999-", vantage.url("/index.html")]).status == 416)
        #expect(vantage.stop() == 0)
        let accessLog = try String(contentsOfFile: vantage.directory.appendingPathComponent("access.log").path, encoding: .utf8)
        // Each event loop buffers its own lines, so the order in the file is not the request order.
        let entries = try accessLog.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(entries.count == 5)
        let home = try #require(entries.first { $0["uri"] as? String == "/" })
        #expect(home["status"] as? Int == 200)
        #expect(home["method"] as? String == "GET")
        #expect(home["bytes_sent"] as? Int == 3000)
        #expect(entries.contains { $0["status"] as? Int == 304 })
    }

    @Test func compressionAndLargeFiles() throws {
        let vantage = try Self.start()
        let brotli = try curl(["-H", "Accept-Encoding: br", "--compressed", vantage.url("/index.html")])
        #expect(brotli.headers["content-encoding"] == "br")
        #expect(brotli.body.count == 3000)
        let gzip = try curl(["-H", "Accept-Encoding: gzip", "--compressed", vantage.url("/index.html")])
        #expect(gzip.headers["content-encoding"] == "gzip")
        #expect(gzip.body.count == 3000)
        let large = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", vantage.url("/large.bin")])
        #expect(large.stdout == "200 3145728")
        let largeRange = try run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                                  "-H", "Range: bytes=1000-1999", vantage.url("/large.bin")])
        #expect(largeRange.stdout == "206 1000")
    }

    @Test func traversalAndHiddenFilesAreRefused() throws {
        let vantage = try Self.start()
        #expect(try curl(["--path-as-is", vantage.url("/../../etc/passwd")]).status == 400)
        #expect(try curl(["--path-as-is", vantage.url("/%2e%2e/%2e%2e/etc/passwd")]).status == 400)
        #expect(try curl([vantage.url("/sub%2Ffile.txt")]).status == 400)
        #expect(try curl([vantage.url("/a%00b")]).status == 400)
        #expect(try curl([vantage.url("/.env")]).status == 404)
        #expect(try curl(["-X", "DELETE", vantage.url("/index.html")]).status == 405)
        let folder = try curl([vantage.url("/sub")])
        #expect(folder.status == 301)
        #expect(folder.headers["location"] == "/sub/")
        #expect(try curl([vantage.url("/sub/")]).status == 404)
        let listing = try curl([vantage.url("/files/sub/")])
        #expect(listing.status == 200)
        #expect(listing.body.contains("file.txt"))
        #expect(try curl([vantage.url("/files/sub/file.txt")]).body == "nested")
    }

    @Test func metricsCountRequests() throws {
        let vantage = try Self.start()
        _ = try curl([vantage.url("/")])
        _ = try curl([vantage.url("/missing")])
        let metrics = try curl([vantage.url("/metrics", kind: "admin")])
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("vantage_requests_total{site=\"default\",route=\"/\",code=\"2xx\"} 1"))
        #expect(metrics.body.contains("vantage_requests_total{site=\"default\",route=\"/\",code=\"4xx\"} 1"))
        #expect(metrics.body.contains("vantage_static_cache_hits_total"))
        let health = try curl([vantage.url("/health", kind: "admin")])
        #expect(health.body.contains("\"status\":\"ok\""))
    }
}
