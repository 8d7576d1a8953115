import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import Edge

/// Gives a test the context of a handler in an embedded pipeline (what an ``HTTP1ResponseWriter`` writes through).
private final class ContextHolder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var context: ChannelHandlerContext?
    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
}

/// HTTP/1.1 framing of answers: what the writer adds, how bodies of unknown length go, and TLS's held head.
@Suite struct HTTP1ResponseWriterTests {
    static let yaml = """
        listen: { http: ":8080", }
        sites:
          - hosts: [example.com]
            routes:
              - { path: /, respond: "ok" }
        """

    /// A writer on an embedded channel, and what it wrote so far as text.
    final class Fixture {
        let harness: HandlerHarness
        let channel = EmbeddedChannel()
        let writer: HTTP1ResponseWriter

        init(isTLS: Bool = false) throws {
            harness = try HandlerHarness(HTTP1ResponseWriterTests.yaml)
            let holder = ContextHolder()
            try channel.pipeline.syncOperations.addHandler(holder)
            let loop = harness.core.loopContext(for: harness.channel.embeddedEventLoop)
            loop.refreshClock()
            writer = HTTP1ResponseWriter(
                context: try #require(holder.context), loop: loop,
                connection: ConnectionInfo(channel: channel, isTLS: isTLS, core: harness.core))
        }

        /// Each write the channel received, as text, once the loop's tick has ended (flushes wait for it).
        func writes() throws -> [String] {
            harness.channel.embeddedEventLoop.run()
            var all: [String] = []
            while let chunk = try channel.readOutbound(as: ByteBuffer.self) { all.append(String(buffer: chunk)) }
            return all
        }

        func head(_ headers: HTTPHeaders = ["Content-Type": "text/plain"]) {
            writer.startHead(ComposedHead(status: .ok, headers: headers, cached: nil, rules: nil))
        }
    }

    static let keepAlive = Persistence(keepAlive: true, isHTTP10: false)

    @Test func aWholeAnswerCarriesDateServerAndTheExchangesFields() throws {
        let fixture = try Fixture()
        fixture.head(["Content-Type": "text/plain", "Content-Length": "2"])
        fixture.writer.writeAnswer(
            ExchangeFields(requestID: "r1", visitorCookie: "vid=a"), persistence: Self.keepAlive, body: ByteBuffer(string: "ok"))
        fixture.writer.flush()
        let text = try fixture.writes().joined()
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nDate: "))
        #expect(text.contains("\r\nServer: vantage\r\nX-Request-Id: r1\r\nSet-Cookie: vid=a\r\n\r\nok"))
        #expect(!text.contains("Connection:"), "HTTP/1.1 keeps the connection without saying so")
    }

    @Test func persistenceIsSaidTheWayEachVersionNeeds() throws {
        let fixture = try Fixture()
        fixture.head()
        fixture.writer.writeAnswer(ExchangeFields(), persistence: Persistence(keepAlive: true, isHTTP10: true), body: nil)
        fixture.head()
        fixture.writer.writeAnswer(ExchangeFields(), persistence: Persistence(keepAlive: false, isHTTP10: false), body: nil)
        fixture.writer.flush()
        let text = try fixture.writes().joined()
        #expect(text.contains("Connection: keep-alive\r\n\r\n"))
        #expect(text.contains("Connection: close\r\n\r\n"))
    }

    @Test func aBodyOfUnknownLengthGoesChunkedWithTrailers() throws {
        let fixture = try Fixture()
        fixture.head()
        #expect(!fixture.writer.writeHead(ExchangeFields(), persistence: Self.keepAlive, body: .unknown))
        #expect(fixture.writer.writeBody(ByteBuffer(string: "hello")))
        fixture.writer.endBody(trailers: ["Checksum": "abc"])
        fixture.writer.flush()
        let text = try fixture.writes().joined()
        #expect(text.contains("Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nChecksum: abc\r\n\r\n"))
    }

    @Test func anHTTP10ClientLearnsTheEndFromTheClose() throws {
        let fixture = try Fixture()
        fixture.head()
        let closes = fixture.writer.writeHead(ExchangeFields(), persistence: Persistence(keepAlive: true, isHTTP10: true), body: .unknown)
        #expect(closes)
        _ = fixture.writer.writeBody(ByteBuffer(string: "hello"))
        fixture.writer.endBody(trailers: nil)
        fixture.writer.flush()
        let text = try fixture.writes().joined()
        #expect(text.contains("Connection: close\r\n\r\nhello"))
        #expect(!text.contains("chunked"))
    }

    @Test func underTLSAHeadWaitsToShareARecordWithTheFirstPiece() throws {
        let fixture = try Fixture(isTLS: true)
        fixture.head(["Content-Length": "5"])
        _ = fixture.writer.writeHead(ExchangeFields(), persistence: Self.keepAlive, body: .known)
        #expect(try fixture.writes().isEmpty, "the head is held")
        _ = fixture.writer.writeBody(ByteBuffer(string: "hello"))
        fixture.writer.endBody(trailers: nil)
        fixture.writer.flush()
        let writes = try fixture.writes()
        #expect(writes.count == 1)
        #expect(writes.first?.hasSuffix("\r\n\r\nhello") == true)
    }

    @Test func aBodilessAnswerDropsStrayPieces() throws {
        let fixture = try Fixture()
        fixture.head()
        _ = fixture.writer.writeHead(ExchangeFields(), persistence: Self.keepAlive, body: .none)
        _ = fixture.writer.writeBody(ByteBuffer(string: "stray"))
        fixture.writer.endBody(trailers: nil)
        fixture.writer.flush()
        #expect(try !fixture.writes().joined().contains("stray"))
    }
}
