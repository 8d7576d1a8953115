import HTTP2Session
import NIOCore
import NIOEmbedded
import Testing

/// The nghttp2-backed session driven with hand-written client frames: request events, responses under flow
/// control, trailers, and the protocol errors it must answer.
struct HTTP2ServerSessionTests {
    static let settings = HTTP2ServerSession.Settings(
        maxConcurrentStreams: 100, maxHeaderListSize: 16 << 10, initialWindowSize: 1 << 20, connectionWindowSize: 4 << 20)

    /// A frame as the client sends it.
    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32, _ payload: [UInt8] = []) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)]
            + payload
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// `GET /` over https for localhost: three static-table fields and :authority as a literal.
    static let getBlock: [UInt8] = [0x82, 0x87, 0x84, 0x01, 0x09] + Array("localhost".utf8)

    static func settingsPayload(_ pairs: [(UInt16, UInt32)]) -> [UInt8] {
        pairs.flatMap { key, value in
            [UInt8(key >> 8), UInt8(key & 0xff), UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        }
    }

    struct Frame: Equatable {
        var type: UInt8
        var flags: UInt8
        var stream: UInt32
        var payload: [UInt8]
    }

    /// The frames in what the session sends.
    static func frames(_ buffer: ByteBuffer?) -> [Frame] {
        guard var buffer else { return [] }
        var frames: [Frame] = []
        while let head = buffer.readBytes(length: 9) {
            let length = Int(head[0]) << 16 | Int(head[1]) << 8 | Int(head[2])
            let stream = UInt32(head[5] & 0x7f) << 24 | UInt32(head[6]) << 16 | UInt32(head[7]) << 8 | UInt32(head[8])
            frames.append(Frame(type: head[3], flags: head[4], stream: stream, payload: buffer.readBytes(length: length) ?? []))
        }
        return frames
    }

    /// A session past the handshake; the client announced `clientSettings`.
    static func connected(_ settings: HTTP2ServerSession.Settings = settings, clientSettings: [(UInt16, UInt32)] = []) throws
        -> HTTP2ServerSession
    {
        let session = HTTP2ServerSession(settings: settings)
        let events = try session.receive(ByteBuffer(bytes: preface + frame(4, stream: 0, settingsPayload(clientSettings))))
        #expect(events.isEmpty)
        let sent = frames(session.output(allocator: .init())?.bytes)
        #expect(sent.first?.type == 4, "the server's SETTINGS come first")
        #expect(sent.contains { $0.type == 8 && $0.stream == 0 }, "the connection window is opened")
        return session
    }

    @Test func aRequestBecomesOneEventWithItsFields() throws {
        let session = try Self.connected()
        let events = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x5, stream: 1, Self.getBlock)))
        guard events.count == 1, case .request(let stream, let fields, let endStream) = events[0] else {
            Issue.record("expected one request, got \(events)")
            return
        }
        #expect(stream == 1)
        #expect(endStream)
        #expect(fields.map { "\($0.name)=\($0.value)" } == [":method=GET", ":scheme=https", ":path=/", ":authority=localhost"])
    }

    @Test func aBodyArrivesInPiecesAndEnds() throws {
        let session = try Self.connected()
        let bytes = Self.frame(1, flags: 0x4, stream: 1, [0x83, 0x87, 0x84, 0x01, 0x01, 0x61])
            + Self.frame(0, stream: 1, Array("abc".utf8)) + Self.frame(0, flags: 0x1, stream: 1, Array("de".utf8))
        let events = try session.receive(ByteBuffer(bytes: bytes))
        var body = ""
        var ended = false
        for event in events {
            switch event {
            case .body(let stream, let buffer):
                #expect(stream == 1)
                body += String(buffer: buffer)
                session.consume(buffer.readableBytes, on: stream)
            case .end(let stream):
                #expect(stream == 1)
                ended = true
            case .request(_, _, let endStream):
                #expect(!endStream)
            default:
                Issue.record("unexpected \(event)")
            }
        }
        #expect(body == "abcde")
        #expect(ended)
    }

    @Test func aResponseGoesOutAndItsWriteCompletes() throws {
        let loop = EmbeddedEventLoop()
        let session = try Self.connected()
        _ = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x5, stream: 1, Self.getBlock)))
        session.respond(stream: 1, endStream: false) { $0.append(name: ":status", value: "200"); $0.append(name: "content-type", value: "text/plain") }
        let promise = loop.makePromise(of: Void.self)
        session.send(ByteBuffer(string: "hello"), on: 1, endStream: true, promise: promise)
        let output = try #require(session.output(allocator: .init()))
        let sent = Self.frames(output.bytes)
        #expect(sent.map(\.type) == [1, 0])
        #expect(sent[1].payload == Array("hello".utf8))
        #expect(sent[1].flags & 0x1 == 0x1, "END_STREAM on the last DATA")
        #expect(output.promises.count == 1)
        output.promises.forEach { $0.succeed(()) }
        #expect(throws: Never.self) { try promise.futureResult.wait() }
        let closed = session.takeEvents()
        #expect(closed.count == 1)
        if case .closed(let stream, let code) = closed.first {
            #expect(stream == 1 && code == 0)
        }
    }

    @Test func flowControlHoldsTheBodyUntilTheClientOpensItsWindow() throws {
        let loop = EmbeddedEventLoop()
        let session = try Self.connected(clientSettings: [(4, 2)])  // SETTINGS_INITIAL_WINDOW_SIZE = 2
        _ = try session.receive(ByteBuffer(bytes: Self.frame(4, flags: 0x1, stream: 0) + Self.frame(1, flags: 0x5, stream: 1, Self.getBlock)))
        session.respond(stream: 1, endStream: false) { $0.append(name: ":status", value: "200") }
        let promise = loop.makePromise(of: Void.self)
        session.send(ByteBuffer(string: "hello"), on: 1, endStream: true, promise: promise)
        let first = try #require(session.output(allocator: .init()))
        #expect(Self.frames(first.bytes).filter { $0.type == 0 }.map(\.payload) == [Array("he".utf8)])
        #expect(first.promises.isEmpty, "the write is not done while bytes wait for the window")
        _ = try session.receive(ByteBuffer(bytes: Self.frame(8, stream: 1, [0, 0, 0, 3])))
        let second = try #require(session.output(allocator: .init()))
        let data = Self.frames(second.bytes).filter { $0.type == 0 }
        #expect(data.map(\.payload) == [Array("llo".utf8)])
        #expect(data.first.map { $0.flags & 0x1 } == 0x1)
        #expect(second.promises.count == 1)
        second.promises.forEach { $0.succeed(()) }
    }

    @Test func trailersEndTheStreamAfterTheBody() throws {
        let session = try Self.connected()
        _ = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x5, stream: 1, Self.getBlock)))
        session.respond(stream: 1, endStream: false) { $0.append(name: ":status", value: "200") }
        session.send(ByteBuffer(string: "x"), on: 1, endStream: false, promise: nil)
        session.sendTrailers(on: 1) { $0.append(name: "x-checksum", value: "1") }
        let sent = Self.frames(session.output(allocator: .init())?.bytes)
        #expect(sent.map(\.type) == [1, 0, 1])
        #expect(sent[1].flags & 0x1 == 0, "the DATA frame leaves the stream open for the trailers")
        #expect(sent[2].flags & 0x1 == 0x1)
    }

    @Test func aLowerStreamIdentifierIsAConnectionError() throws {
        let session = try Self.connected()
        let bytes = Self.frame(1, flags: 0x5, stream: 5, Self.getBlock) + Self.frame(1, flags: 0x5, stream: 3, Self.getBlock)
        _ = try session.receive(ByteBuffer(bytes: bytes))
        let goAway = Self.frames(session.output(allocator: .init())?.bytes).first { $0.type == 7 }
        #expect(goAway.map { Array($0.payload[4..<8]) } == [0, 0, 0, 1], "GOAWAY with PROTOCOL_ERROR")
        #expect(!session.isAlive)
    }

    @Test func trailersOnAStreamJustResetAreNotANewStream() throws {
        let session = try Self.connected()
        let post: [UInt8] = [0x83, 0x87, 0x84, 0x01, 0x01, 0x61]
        _ = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x4, stream: 1, post) + Self.frame(1, flags: 0x4, stream: 3, post)))
        session.reset(stream: 1, code: .noError)
        _ = session.output(allocator: .init())
        // The client had sent its trailers on stream 1 before the reset reached it.
        _ = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x5, stream: 1, [0x00, 0x01, 0x78, 0x01, 0x79])))
        let sent = Self.frames(session.output(allocator: .init())?.bytes)
        #expect(!sent.contains { $0.type == 7 }, "no GOAWAY: \(sent)")
        #expect(session.isAlive)
    }

    @Test func aHeadOverTheHeaderListBoundIsReportedWithoutItsFields() throws {
        var settings = Self.settings
        settings.maxHeaderListSize = 200
        let session = try Self.connected(settings)
        // x-big: 300 bytes, as a literal without indexing and a new name.
        let block = Self.getBlock + [0x00, 0x05] + Array("x-big".utf8) + [0x7f, 0xad, 0x01] + Array(repeating: UInt8(ascii: "a"), count: 300)
        let events = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x5, stream: 1, block)))
        guard events.count == 1, case .headerListTooLarge(let stream, let endStream) = events[0] else {
            Issue.record("expected the oversized head reported, got \(events)")
            return
        }
        #expect(stream == 1 && endStream)
        #expect(!Self.frames(session.output(allocator: .init())?.bytes).contains { $0.type == 3 || $0.type == 7 },
                "no reset and no GOAWAY: the head gets its 431")
        // The HPACK state stayed in step: the next request decodes.
        let next = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x5, stream: 3, Self.getBlock)))
        #expect(next.count == 1)
        if case .request(3, let fields, _) = next.first { #expect(fields.count == 4) }
    }

    @Test func resetsNameTheirOwnStreams() throws {
        let session = try Self.connected(clientSettings: [(4, 0)])
        var requests: [UInt8] = Self.frame(4, flags: 0x1, stream: 0)
        for stream: UInt32 in [1, 3, 5] { requests += Self.frame(1, flags: 0x5, stream: stream, [0x82, 0x87, 0x84, 0x01, 0x01, 0x61]) }
        _ = try session.receive(ByteBuffer(bytes: requests))
        for stream: Int32 in [1, 3, 5] {
            session.respond(stream: stream, endStream: false) { $0.append(name: ":status", value: "200") }
            session.send(ByteBuffer(string: "held by a closed window"), on: stream, endStream: false, promise: nil)
        }
        _ = session.output(allocator: .init())
        for stream: Int32 in [5, 1, 3] { session.reset(stream: stream, code: .cancel) }
        let resets = Self.frames(session.output(allocator: .init())?.bytes).filter { $0.type == 3 }
        #expect(resets.map(\.stream).sorted() == [1, 3, 5])
        let closed = session.takeEvents().compactMap { event -> Int32? in
            if case .closed(let stream, 8) = event { stream } else { nil }
        }
        #expect(closed.sorted() == [1, 3, 5])
    }

    @Test func aResetAfterTheResponseFollowsItInALaterWrite() throws {
        let session = try Self.connected()
        _ = try session.receive(ByteBuffer(bytes: Self.frame(1, flags: 0x4, stream: 1, [0x83, 0x87, 0x84, 0x01, 0x01, 0x61])))
        session.respond(stream: 1, endStream: false) { $0.append(name: ":status", value: "413") }
        session.send(ByteBuffer(string: "too large"), on: 1, endStream: true, promise: nil)
        session.resetAfterResponse(stream: 1)
        let response = Self.frames(session.output(allocator: .init())?.bytes)
        #expect(response.map(\.type) == [1, 0])
        #expect(session.hasResetsDue)
        let reset = Self.frames(session.output(allocator: .init())?.bytes)
        #expect(reset.map(\.type) == [3])
        #expect(reset.first?.payload == [0, 0, 0, 0], "NO_ERROR: stop sending, the answer stands")
    }

    @Test func abandoningTheStreamsFailsTheirPendingWrites() throws {
        let loop = EmbeddedEventLoop()
        let session = try Self.connected(clientSettings: [(4, 0)])
        _ = try session.receive(ByteBuffer(bytes: Self.frame(4, flags: 0x1, stream: 0) + Self.frame(1, flags: 0x5, stream: 1, Self.getBlock)))
        session.respond(stream: 1, endStream: false) { $0.append(name: ":status", value: "200") }
        let promise = loop.makePromise(of: Void.self)
        session.send(ByteBuffer(string: "never sent"), on: 1, endStream: true, promise: promise)
        _ = session.output(allocator: .init())
        session.abandonAllStreams()
        #expect(throws: ChannelError.self) { try promise.futureResult.wait() }
    }

    @Test func aBadPrefaceEndsTheSession() {
        let session = HTTP2ServerSession(settings: Self.settings)
        #expect(throws: HTTP2ServerSession.Failure.self) {
            try session.receive(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        }
    }
}
