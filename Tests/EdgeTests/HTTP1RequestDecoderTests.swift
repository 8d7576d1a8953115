import HTTP1Parser
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Static
import Testing

@testable import Edge

/// The HTTP/1.1 decoder between the connection's bytes and the request handler: parts in order, refusals after the
/// requests before them, nothing read after a closing request, bytes after an upgrade handed to what takes over.
@Suite struct HTTP1RequestDecoderTests {
    /// Records what reaches the request handler's place: request parts and errors.
    final class Recorder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        var seen: [String] = []
        /// Called on each part, for tests that change the pipeline mid-read.
        var onPart: ((HTTPServerRequestPart) -> Void)?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let part = unwrapInboundIn(data)
            switch part {
            case .head(let head): seen.append("head \(head.method.rawValue) \(head.uri) \(head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ","))")
            case .body(let body): seen.append("body \(String(buffer: body))")
            case .end(let trailers): seen.append("end" + (trailers.map { " " + $0.map { "\($0.name)=\($0.value)" }.joined(separator: ",") } ?? ""))
            }
            onPart?(part)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            seen.append("refused \(error as? RequestParser.Refusal as Any)")
        }
    }

    /// Stands for the tunnel that takes a connection over after an upgrade: records the raw bytes it gets.
    final class Tunnel: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var seen: [String] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            seen.append(String(buffer: unwrapInboundIn(data)))
        }
    }

    private func makeChannel() throws -> (EmbeddedChannel, HTTP1RequestDecoder, Recorder) {
        let decoder = HTTP1RequestDecoder(limits: RequestParser.Limits())
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(decoder)
        try channel.pipeline.syncOperations.addHandler(recorder)
        return (channel, decoder, recorder)
    }

    /// The request handler's head is made in one pass with its header summary: the same head, and the same summary,
    /// as NIO's head read over again.
    @Test func aParsedHeadAndItsSummaryMatchTheTwoPassForm() throws {
        var parser = RequestParser(limits: RequestParser.Limits())
        var bytes = ByteBuffer(string: "GET /a/b?c=d HTTP/1.1\r\nHost: example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
            + "cookie: a=1\r\nCOOKIE: b=2\r\nDNT: 1\r\nSec-GPC: 1\r\nSec-Purpose: prefetch;prerender\r\n"
            + "If-None-Match: \"x\"\r\nIf-None-Match: \"y\"\r\nIf-Modified-Since: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
            + "Range: bytes=0-1\r\nAccept-Encoding: br, gzip\r\nReferer: https://r.test/\r\nX-Request-Id: abc\r\n"
            + "X-Moz: Prefetch\r\nX-Other: é\r\n\r\n")
        guard case .head(let parsed) = try parser.next(&bytes) else {
            Issue.record("no head")
            return
        }
        let (head, summary) = parsed.makeSummarizedHead()
        let twoPass = parsed.makeHTTPRequestHead()
        #expect(head.httpRequestHead == twoPass)
        #expect(head.headers == RequestFields(twoPass.headers) && head.uri == twoPass.uri && head.method == twoPass.method)
        #expect(summary.values == RequestHeaderSummary.Values(twoPass.headers))
        #expect(summary.cookie == "a=1; b=2" && summary.ifNoneMatch == "\"x\"" && summary.userAgent == "Mozilla/5.0 (X11; Linux x86_64)")
        #expect(summary.doNotTrack && summary.globalPrivacyControl && summary.isPrefetch && summary.host == "example.test")
    }

    @Test func pipelinedRequestsArriveInOrderWithTheirBodies() throws {
        let (channel, _, recorder) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel"))
        try channel.writeInbound(ByteBuffer(string: "loPOST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"))
        #expect(recorder.seen == [
            "head GET /a Host=h", "end",
            "head POST /b Host=h,Content-Length=5", "body hel", "body lo", "end",
            "head POST /c Host=h,Transfer-Encoding=chunked", "body ok", "end X-T=1",
        ])
        _ = try channel.finish()
    }

    @Test func aRefusalComesAfterTheRequestsBeforeItAndEndsReading() throws {
        let (channel, _, recorder) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(recorder.seen == ["head GET /a Host=h", "end", "refused Optional(400 Content-Length is repeated)"])
        _ = try channel.finish()
    }

    @Test func nothingIsReadAfterARequestThatClosesTheConnection() throws {
        let (channel, _, recorder) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: "junk that would not parse\r\n\r\n"))
        #expect(recorder.seen == ["head GET /a Host=h,Connection=close", "end"])
        _ = try channel.finish()
    }

    @Test func bytesAfterAnUpgradeGoToWhatTakesTheConnectionOver() throws {
        let (channel, decoder, recorder) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nframe-1"))
        try channel.writeInbound(ByteBuffer(string: "GET /not-a-request HTTP/1.1\r\n\r\n"))
        #expect(recorder.seen == ["head GET /ws Host=h,Upgrade=websocket,Connection=Upgrade", "end"])
        let tunnel = Tunnel()
        try channel.pipeline.syncOperations.addHandler(tunnel, position: .after(decoder))
        try channel.pipeline.syncOperations.removeHandler(recorder).wait()
        try channel.pipeline.syncOperations.removeHandler(decoder).wait()
        #expect(tunnel.seen == ["frame-1GET /not-a-request HTTP/1.1\r\n\r\n"])
        try channel.writeInbound(ByteBuffer(string: "frame-2"))
        #expect(tunnel.seen.last == "frame-2")
        _ = try channel.finish()
    }

    /// The request handler accepts a WebSocket while the decoder is still delivering the upgrade request's end:
    /// the rest of that read is the tunnel's.
    @Test func anUpgradeAcceptedMidReadHandsOnTheRestOfThatRead() throws {
        let (channel, decoder, recorder) = try makeChannel()
        let tunnel = Tunnel()
        recorder.onPart = { part in
            guard case .end = part else { return }
            let sync = channel.pipeline.syncOperations
            try? sync.addHandler(tunnel, position: .after(decoder))
            sync.removeHandler(recorder, promise: nil)
            sync.removeHandler(decoder, promise: nil)
        }
        try channel.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\nframe"))
        #expect(recorder.seen == ["head GET /ws Host=h,Upgrade=websocket", "end"])
        #expect(tunnel.seen == ["frame"])
        _ = try channel.finish()
    }

    @Test func tooMuchBeforeAnUpgradeIsAnsweredClosesTheConnection() throws {
        let (channel, _, _) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(repeating: 0x41, count: HTTP1RequestDecoder.maxHeldAfterUpgrade + 1))
        #expect(!channel.isActive)
    }
}
