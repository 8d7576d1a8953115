import Compression
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import Static

/// Drives the static file server against a real folder, with a real thread pool for the disk work.
final class StaticFixture {
    let root: String
    let outside: String
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)
    let server: StaticFileServer

    init(configure: (inout StaticConfiguration) -> Void = { _ in }) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-static-\(UUID().uuidString)")
        root = base.appendingPathComponent("www").path
        outside = base.appendingPathComponent("outside").path
        try FileManager.default.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try String(repeating: "<p>hello</p>\n", count: 100).write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        try "body{}".write(toFile: root + "/docs/app.css", atomically: true, encoding: .utf8)
        try "secret".write(toFile: root + "/.env", atomically: true, encoding: .utf8)
        try "outside".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape.txt", withDestinationPath: outside + "/secret.txt")
        try Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: root + "/big.bin"))
        try "precompressed".write(toFile: root + "/docs/app.css.gz", atomically: true, encoding: .utf8)
        pool.start()
        var configuration = StaticConfiguration(root: root)
        configure(&configuration)
        var cacheSettings = StaticCacheConfiguration()
        cacheSettings.maxFileSize = 100_000
        server = try StaticFileServer(
            configuration: configuration, cache: FileCache(maxBytes: 1 << 20), cacheSettings: cacheSettings,
            threadPool: pool)
    }

    deinit {
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: root).deletingLastPathComponent().path)
    }

    func get(_ path: String, method: HTTPMethod = .GET, headers: HTTPHeaders = [:]) throws -> StaticResponse {
        let pathPart = path.split(separator: "?", maxSplits: 1)
        let request = StaticRequest(
            method: method, path: Substring(pathPart[0]), query: pathPart.count > 1 ? pathPart[1] : nil,
            headers: RequestHeaderSummary(headers))
        let response: StaticResponse
        switch server.respond(to: request, on: group.next()) {
        case .ready(let ready): response = ready
        case .pending(let future): response = try future.wait()
        }
        if case .file(let file) = response.body { try file.handle.close() }
        return response
    }
}

extension StaticResponse {
    var bodyString: String? {
        if case .buffer(let buffer) = body { return String(buffer: buffer) }
        return nil
    }
}

@Suite struct StaticFileServerTests {
    @Test func servesIndexAndCachesIt() throws {
        let fixture = try StaticFixture()
        let first = try fixture.get("/")
        #expect(first.status == .ok)
        #expect(first.headers.first(name: "content-type") == "text/html; charset=utf-8")
        #expect(first.bodyString?.hasPrefix("<p>hello</p>") == true)
        let request = StaticRequest(method: .GET, path: "/", query: nil, headers: RequestHeaderSummary())
        guard case .ready = fixture.server.respond(to: request, on: fixture.group.next()) else {
            Issue.record("the second request should be a cache hit")
            return
        }
    }

    @Test func conditionalAndRangeRequests() throws {
        let fixture = try StaticFixture()
        let full = try fixture.get("/index.html")
        let etag = try #require(full.headers.first(name: "etag"))
        #expect(try fixture.get("/index.html", headers: ["If-None-Match": etag]).status == .notModified)
        let lastModified = try #require(full.headers.first(name: "last-modified"))
        #expect(try fixture.get("/index.html", headers: ["If-Modified-Since": lastModified]).status == .notModified)
        let partial = try fixture.get("/index.html", headers: ["Range": "bytes=0-2"])
        #expect(partial.status == .partialContent)
        #expect(partial.bodyString == "<p>")
        #expect(partial.headers.first(name: "content-range") == "bytes 0-2/1300")
        let unsatisfiable = try fixture.get("/index.html", headers: ["Range": "bytes=5000-"])
        #expect(unsatisfiable.status == .rangeNotSatisfiable)
        #expect(unsatisfiable.headers.first(name: "content-range") == "bytes */1300")
        let stale = try fixture.get("/index.html", headers: ["Range": "bytes=0-2", "If-Range": "\"old\""])
        #expect(stale.status == .ok)
    }

    @Test func compressesTextOnTheFlyAndPrefersPrecompressedSiblings() throws {
        let fixture = try StaticFixture()
        let brotli = try fixture.get("/index.html", headers: ["Accept-Encoding": "gzip, br"])
        #expect(brotli.headers.first(name: "content-encoding") == "br")
        #expect(brotli.headers.first(name: "vary") == "Accept-Encoding")
        guard case .buffer(let compressed) = brotli.body else { return }
        #expect(Decompressor.decompress(compressed, coding: .brotli).map { String(buffer: $0) }?.hasPrefix("<p>hello") == true)
        let sibling = try fixture.get("/docs/app.css", headers: ["Accept-Encoding": "gzip"])
        #expect(sibling.headers.first(name: "content-encoding") == "gzip")
        #expect(sibling.bodyString == "precompressed")
        let identity = try fixture.get("/docs/app.css")
        #expect(identity.bodyString == "body{}")
        let head = try fixture.get("/index.html", method: .HEAD)
        #expect(head.headers.first(name: "content-length") == "1300")
        if case .empty = head.body {} else { Issue.record("HEAD must have no body") }
    }

    @Test func refusesHostilePaths() throws {
        let fixture = try StaticFixture()
        #expect(try fixture.get("/../etc/passwd").status == .badRequest)
        #expect(try fixture.get("/a%2Fb").status == .badRequest)
        #expect(try fixture.get("/.env").status == .notFound)
        #expect(try fixture.get("/escape.txt").status == .forbidden)
        #expect(try fixture.get("/missing").status == .notFound)
        #expect(try fixture.get("/", method: .POST).status == .methodNotAllowed)
    }

    @Test func symlinksOutsideTheRootWhenAllowed() throws {
        let fixture = try StaticFixture { $0.allowSymlinksOutsideRoot = true }
        #expect(try fixture.get("/escape.txt").bodyString == "outside")
    }

    @Test func foldersRedirectToTheirSlashAndListOnlyWhenAsked() throws {
        let fixture = try StaticFixture()
        let redirect = try fixture.get("/docs?x=1")
        #expect(redirect.status == .movedPermanently)
        #expect(redirect.headers.first(name: "location") == "/docs/?x=1")
        #expect(try fixture.get("/docs/").status == .notFound)
        let browsing = try StaticFixture { $0.browse = true }
        let listing = try browsing.get("/docs/")
        #expect(listing.status == .ok)
        #expect(listing.bodyString?.contains("app.css") == true)
    }

    @Test func largeFilesAreStreamedFromAnOpenFile() throws {
        let fixture = try StaticFixture()
        let response = try fixture.get("/big.bin", headers: ["Range": "bytes=100-199"])
        #expect(response.status == .partialContent)
        #expect(response.headers.first(name: "content-length") == "100")
        let full = try fixture.get("/big.bin")
        #expect(full.headers.first(name: "content-length") == "300000")
        #expect(full.headers.first(name: "content-type") == "application/octet-stream")
    }
}
