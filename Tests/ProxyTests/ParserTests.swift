import NIOCore
import NIOHTTP1
import Testing

@testable import Proxy

@Suite struct ParserTests {
    struct Unexpected: Error {}

    enum Seen: Equatable {
        case head(Int, keepAlive: Bool)
        case body(String)
        case end(trailers: [String])
        case upgraded
    }

    /// Feeds `chunks` one after another and records every event.
    func events(_ chunks: [String], head: Bool = false, closeAtEnd: Bool = false) throws -> [Seen] {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHead: head)
        var seen: [Seen] = []
        var pending = ByteBuffer()
        func record(_ event: UpstreamResponseParser.Event) {
            switch event {
            case .head(let head): seen.append(.head(Int(head.status.code), keepAlive: head.keepAlive))
            case .body(let buffer):
                if case .body(let previous) = seen.last {
                    seen[seen.count - 1] = .body(previous + String(buffer: buffer))
                } else {
                    seen.append(.body(String(buffer: buffer)))
                }
            case .end(let trailers): seen.append(.end(trailers: trailers.map { $0.map { "\($0.name)=\($0.value)" } } ?? []))
            case .upgraded: seen.append(.upgraded)
            }
        }
        for chunk in chunks {
            pending.writeString(chunk)
            while let event = try parser.next(&pending) {
                record(event)
                if case .upgraded = event { return seen }
            }
        }
        if closeAtEnd, let event = parser.connectionClosed() { record(event) }
        return seen
    }

    @Test func contentLengthBodyAcrossReads() throws {
        #expect(try events(["HTTP/1.1 200 OK\r\nContent-Le", "ngth: 11\r\n\r\nhello", " world"])
            == [.head(200, keepAlive: true), .body("hello world"), .end(trailers: [])])
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 9\r\n\r\n"
        #expect(try events([response]) == [.head(200, keepAlive: true), .body("hello world"), .end(trailers: ["X-Sum=9"])])
        // The same, one byte at a time.
        #expect(try events(response.map { String($0) }) == [.head(200, keepAlive: true), .body("hello world"), .end(trailers: ["X-Sum=9"])])
    }

    @Test func bodilessAnswers() throws {
        #expect(try events(["HTTP/1.1 204 No Content\r\n\r\n"]) == [.head(204, keepAlive: true), .end(trailers: [])])
        #expect(try events(["HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"]) == [.head(304, keepAlive: true), .end(trailers: [])])
        #expect(try events(["HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"], head: true) == [.head(200, keepAlive: true), .end(trailers: [])])
        #expect(try events(["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]) == [.head(200, keepAlive: true), .end(trailers: [])])
    }

    @Test func interimAnswersAreSkippedAndUpgradesStop() throws {
        #expect(try events(["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"])
            == [.head(200, keepAlive: true), .body("x"), .end(trailers: [])])
        #expect(try events(["HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u{81}"]) == [.head(101, keepAlive: true), .upgraded])
    }

    @Test func bodyUntilCloseAndKeepAliveRules() throws {
        #expect(try events(["HTTP/1.0 200 OK\r\n\r\nall of it"], closeAtEnd: true)
            == [.head(200, keepAlive: false), .body("all of it"), .end(trailers: [])])
        #expect(try events(["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"]) == [.head(200, keepAlive: false), .body("x"), .end(trailers: [])])
        #expect(try events(["HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"]) == [.head(200, keepAlive: true), .body("x"), .end(trailers: [])])
        // Transfer-Encoding wins over Content-Length.
        #expect(try events(["HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"])
            == [.head(200, keepAlive: true), .body("x"), .end(trailers: [])])
    }

    @Test func badFramingIsAnError() {
        for bad in [
            "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
        ] {
            #expect(throws: UpstreamResponseParser.ParseError.self, "\(bad)") { try events([bad]) }
        }
        #expect(throws: UpstreamResponseParser.ParseError.self) {
            try events(["HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 70_000)])
        }
    }
}
