import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HTTP1Parser

/// What a parse of a whole input gives: the heads, bodies and trailers of every request, or the refusal.
struct Parsed: Equatable {
    /// The requests that ended, and how many input bytes they took.
    var completeRequests: (requests: [Request], consumed: Int) { (Array(requests.prefix(complete)), consumed) }
    var complete = 0
    var consumed = 0

    struct Request: Equatable {
        var method: String
        var target: String
        var version: String
        var headers: [String]
        var body: [UInt8]
        var trailers: [String]
    }
    var requests: [Request] = []
    var refusal: String?
}

/// Feeds `input` to the parser in pieces of `step` bytes.
func parse(_ input: [UInt8], step: Int = .max) -> Parsed {
    var parser = RequestParser()
    var buffer = ByteBuffer()
    var result = Parsed()
    var offset = 0
    repeat {
        let end = min(input.count, offset + step)
        buffer.writeBytes(input[offset..<end])
        offset = end
        do {
            while let event = try parser.next(&buffer) {
                switch event {
                case .head(let head):
                    var headers: [String] = []
                    head.forEachField { headers.append(String(decoding: $0, as: UTF8.self).lowercased() + ": " + String(decoding: $1, as: UTF8.self)) }
                    result.requests.append(.init(
                        method: head.method.rawValue, target: String(decoding: head.target, as: UTF8.self),
                        version: "\(head.version.major).\(head.version.minor)", headers: headers, body: [], trailers: []))
                case .body(let piece):
                    result.requests[result.requests.count - 1].body += Array(piece.readableBytesView)
                case .end(let trailers):
                    result.requests[result.requests.count - 1].trailers = trailers.map { $0.0.lowercased() + ": " + $0.1 }
                    result.complete = result.requests.count
                    result.consumed = offset - buffer.readableBytes
                }
            }
        } catch {
            result.refusal = "\(error.status.code)"
            return result
        }
    } while offset < input.count
    return result
}

/// The same input through NIO's llhttp-based decoder (the reference the differential test holds ours to).
func parseWithNIO(_ input: [UInt8]) -> Parsed {
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
    var result = Parsed()
    do {
        try channel.writeInbound(ByteBuffer(bytes: input))
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                result.requests.append(.init(
                    method: head.method.rawValue, target: head.uri, version: "\(head.version.major).\(head.version.minor)",
                    // RFC 9112 §5: a field value excludes the whitespace around it; llhttp keeps the trailing part.
                    headers: head.headers.map { $0.name.lowercased() + ": " + $0.value.trimmingCharacters(in: [" ", "\t"]) },
                    body: [], trailers: []))
            case .body(let piece):
                result.requests[result.requests.count - 1].body += Array(piece.readableBytesView)
            case .end(let trailers):
                result.requests[result.requests.count - 1].trailers =
                    trailers?.map { $0.name.lowercased() + ": " + $0.value.trimmingCharacters(in: [" ", "\t"]) } ?? []
            }
        }
    } catch {
        result.refusal = "error"
    }
    _ = try? channel.finish()
    return result
}

@Suite struct RequestParserTests {
    static let get = Array("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n".utf8)

    @Test func aHeadAndItsFieldsAtAnySplit() {
        for step in [1, 2, 3, 7, 64, .max] {
            let result = parse(Self.get, step: step)
            #expect(result.refusal == nil && result.requests.count == 1, "step \(step): \(result)")
            #expect(result.requests.first == .init(method: "GET", target: "/a?b=1", version: "1.1",
                                                   headers: ["host: example.com", "accept: */*"], body: [], trailers: []))
        }
    }

    @Test func bodiesByLengthAndByChunksAndPipelining() {
        let input = Array(("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 9\r\n\r\n"
            + "GET /next HTTP/1.0\r\n\r\nGET /never HTTP/1.1\r\n\r\n").utf8)
        for step in [1, 5, 1000] {
            let result = parse(input, step: step)
            #expect(result.refusal == nil, "\(result)")
            #expect(result.requests.map(\.target) == ["/u", "/c", "/next"])
            #expect(result.requests.map { String(decoding: $0.body, as: UTF8.self) } == ["hello", "abcde", ""])
            #expect(result.requests[1].trailers == ["x-sum: 9"])
        }
    }

    @Test func aHeadKeptByTheCallerIsNotChangedByTheNextOne() throws {
        // The parser fills one field list again and again; a head the caller still holds keeps its own fields.
        var parser = RequestParser()
        var buffer = ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: a\r\nX-One: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\nAccept: */*\r\nX-Two: 2\r\n\r\n"
            + "GET /c HTTP/1.1\r\nHost: c\r\nX-Three: 3\r\n\r\n")
        func nextHead() throws -> ParsedRequestHead {
            while let event = try parser.next(&buffer) { if case .head(let head) = event { return head } }
            throw CancellationError()
        }
        func names(_ head: ParsedRequestHead) -> [String] {
            var names: [String] = []
            head.forEachField { name, _ in names.append(String(decoding: name, as: UTF8.self)) }
            return names
        }
        let first = try nextHead()
        let second = try nextHead()
        #expect(names(first) == ["Host", "X-One"] && names(second) == ["Host", "Accept", "X-Two"])
        let secondStorage = second.fields.withUnsafeBufferPointer { $0.baseAddress }
        _ = consume second
        let third = try nextHead()
        #expect(names(first) == ["Host", "X-One"] && names(third) == ["Host", "X-Three"])
        #expect(third.fields.withUnsafeBufferPointer { $0.baseAddress } == secondStorage, "a released head's storage is filled again")
    }

    @Test func nothingIsReadAfterARequestThatClosesTheConnection() {
        let input = Array("GET /1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        #expect(parse(input).requests.map(\.target) == ["/1"])
        #expect(parse(Array("GET /1 HTTP/1.0\r\n\r\nGET /2 HTTP/1.0\r\n\r\n".utf8), step: 3).requests.map(\.target) == ["/1"])
    }

    @Test func keepAliveAndFlagsFollowTheVersionAndHeaders() throws {
        func head(_ text: String) throws -> ParsedRequestHead {
            var parser = RequestParser()
            var buffer = ByteBuffer(string: text)
            guard case .head(let head)? = try parser.next(&buffer) else { throw RequestParser.Refusal.bad("no head") }
            return head
        }
        #expect(try head("GET / HTTP/1.1\r\nHost: h\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n").keepAlive)
        #expect(try !head("GET / HTTP/1.0\r\n\r\n").keepAlive)
        #expect(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        let upgrade = try head("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n")
        #expect(upgrade.hasUpgrade && upgrade.expectsContinue)
        #expect(upgrade.makeHTTPRequestHead().headers["upgrade"] == ["websocket"])
    }

    /// The smuggling suite's heads, refused with its statuses (Host and target rules are admission's, later).
    @Test(arguments: [
        ("CL.TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", "400"),
        ("TE.CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "400"),
        ("TE twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", "400"),
        ("TE xchunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", "501"),
        ("TE chunked, gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "400"),
        ("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "501"),
        ("TE vertical tab", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\u{0B}\r\n\r\n", "400"),
        ("TE space before colon", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", "400"),
        ("TE folded", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", "400"),
        ("TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("CL twice, different", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", "400"),
        ("CL twice, same", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "400"),
        ("CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", "400"),
        ("CL plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", "400"),
        ("CL hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", "400"),
        ("CL negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", "400"),
        ("CL overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", "400"),
        ("chunk 0x", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nABCDE\r\n0\r\n\r\n", "400"),
        ("chunk overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nA\r\n0\r\n\r\n", "400"),
        ("chunk without CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nABCDEXX0\r\n\r\n", "400"),
        ("bare LF chunk", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nABCDE\n0\n\n", "400"),
        ("bare LF head", "GET / HTTP/1.1\nHost: h\n\n", "400"),
        ("bare CR head", "GET / HTTP/1.1\rHost: h\r\n\r\n", "400"),
        ("NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{0}b\r\n\r\n", "400"),
        ("no colon", "GET / HTTP/1.1\r\nHost: h\r\nJunk\r\n\r\n", "400"),
        ("space in the target", "GET /a /x HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
        ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", "400"),
        ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", "400"),
        ("method not a token", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
        ("lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
        ("TE in a trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("non-ASCII target", "GET /caf\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
        ("LF CR before the request", "\n\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
        ("NUL before a CRLF arrives", "GET /\u{0}", "400"),
        ("Host twice", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("Host twice on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", "400"),
        ("no Host on HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "400"),
    ] as [(String, String, String)])
    func ambiguousFramingIsRefused(name: String, input: String, status: String) {
        for step in [1, 1000] {
            #expect(parse(Array(input.utf8), step: step).refusal == status, "\(name), step \(step)")
        }
    }

    /// The one chunk-size reader, shared with the proxy's response parser.
    @Test func chunkSizesAreHexDigitsOnly() {
        #expect(HTTPBytes.chunkSize(Array("1a".utf8)) == 26 && HTTPBytes.chunkSize(Array("5 ;name=v".utf8)) == 5)
        for bad in ["", "+5", "-0", "0x5", " 5", "5g", "1000000000000000", "5;\u{1}"] {
            #expect(HTTPBytes.chunkSize(Array(bad.utf8)) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func limitsAnswerWithTheirStatus() {
        let many = "GET / HTTP/1.1\r\n" + (0..<101).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(parse(Array(many.utf8)).refusal == "431")
        let huge = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n"
        #expect(parse(Array(huge.utf8), step: 4096).refusal == "431")
        let long = "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n\r\n"
        #expect(parse(Array(long.utf8)).refusal == "414")
        let trailers = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + String(repeating: "X-T: 1234567890\r\n", count: 600) + "\r\n"
        #expect(parse(Array(trailers.utf8), step: 512).refusal == "400")
    }

    /// The fuzzer's corpus (Benchmarks/Fuzz/parser-corpus) under the fuzz harness's rules: ours reads each input the
    /// same whole and byte by byte, and the bytes of the requests it completes are the same requests to NIO (inputs
    /// with a method llhttp does not know, or a target not in origin form, are policy, not framing, and skipped).
    @Test func theFuzzCorpusAgreesWithNIO() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Benchmarks/Fuzz/parser-corpus")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(names.count > 100)
        let methods: Set<String> = ["DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "PATCH", "PURGE", "PROPFIND"]
        var compared = 0
        for name in names {
            let input = try [UInt8](Data(contentsOf: folder.appendingPathComponent(name)))
            let whole = parse(input), byByte = parse(input, step: 1)
            #expect(whole == byByte, "\(name): fed whole and byte by byte")
            guard whole.refusal == nil || !whole.requests.isEmpty else { continue }
            let complete = whole.completeRequests
            guard !complete.requests.isEmpty, complete.requests.allSatisfy({ methods.contains($0.method) && $0.target.hasPrefix("/") })
            else { continue }
            let theirs = parseWithNIO(Array(input[..<complete.consumed]))
            #expect(theirs.refusal == nil && theirs.requests == complete.requests, "\(name)\nours:   \(complete.requests)\ntheirs: \(theirs.requests)")
            compared += 1
        }
        #expect(compared > 50, "\(compared) inputs compared")
    }

    /// Whatever ours accepts, NIO's llhttp-based decoder reads the same way (requests, headers, bodies, trailers):
    /// ours may refuse more (it is stricter), never frame differently.
    @Test func whereItAcceptsItAgreesWithNIO() {
        let corpus: [String] = [
            "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: x/1\r\nAccept: text/html, */*;q=0.8\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\nA;name=value\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
            "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Spaces:   padded   \r\nX-Tab:\tv\t\r\n\r\n",
            "DELETE /r HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX-Obs: caf\u{E9}\r\n\r\n",
            "PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n",
        ]
        for text in corpus {
            let input = Array(text.utf8)
            let ours = parse(input)
            guard ours.refusal == nil else { continue }
            let theirs = parseWithNIO(input)
            #expect(theirs.refusal == nil, "NIO refused what ours accepted: \(text.debugDescription)")
            #expect(ours.requests == theirs.requests, "\(text.debugDescription)\nours:   \(ours.requests)\ntheirs: \(theirs.requests)")
        }
    }
}
