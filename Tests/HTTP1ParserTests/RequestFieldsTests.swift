import NIOCore
import NIOHTTP1
import Testing

@testable import HTTP1Parser

/// A request's fields as bytes answer what NIO's `HTTPHeaders` answers for the same list, whether they came from a
/// parsed head, a builder or NIO's list, and stay right after they are changed.
struct RequestFieldsTests {
    static let wire = "GET /a?b HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 192.0.2.1 , 198.51.100.2,\r\n"
        + "connection: keep-alive, Upgrade\r\nCookie: a=1\r\nCOOKIE: b=2\r\nX-Other: é\r\nEmpty:\r\n\r\n"

    private func parsedHead() throws -> (RequestHead, HTTPRequestHead) {
        var parser = RequestParser(limits: RequestParser.Limits())
        var bytes = ByteBuffer(string: Self.wire)
        guard case .head(let parsed) = try parser.next(&bytes) else { throw Failure() }
        return (parsed.makeRequestHead(), parsed.makeHTTPRequestHead())
    }

    private struct Failure: Error {}

    @Test func aParsedHeadAnswersAsNIOsHeadDoes() throws {
        let (head, nio) = try parsedHead()
        #expect(head.uri == "/a?b" && head.method == .GET && head.version == .http1_1)
        #expect(head.headers.count == nio.headers.count)
        #expect(head.headers.map { $0.name } == nio.headers.map { $0.name })
        #expect(head.headers.map { $0.value } == nio.headers.map { $0.value })
        for name in ["host", "HOST", "cookie", "x-other", "empty", "missing", "x-forwarded-fo"] {
            #expect(head.headers.first(name: name) == nio.headers.first(name: name), "first(name: \(name))")
            #expect(head.headers.contains(name: name) == nio.headers.contains(name: name), "contains(name: \(name))")
        }
        for name in ["x-forwarded-for", "Connection", "cookie", "empty", "missing"] {
            #expect(head.headers[canonicalForm: name] == nio.headers[canonicalForm: name], "canonicalForm \(name)")
        }
        #expect(head.headers.httpHeaders == nio.headers)
        #expect(head.httpRequestHead == nio)
        #expect(head.isKeepAlive && !head.isHeadRequest)
    }

    @Test func forEachGivesEveryFieldsBytesInOrder() throws {
        let (head, _) = try parsedHead()
        var seen: [String] = []
        head.headers.forEach { name, value in
            seen.append(String(decoding: name, as: UTF8.self) + "=" + String(decoding: value, as: UTF8.self))
        }
        #expect(seen == [
            "Host=example.test", "X-Forwarded-For=192.0.2.1 , 198.51.100.2,", "connection=keep-alive, Upgrade", "Cookie=a=1",
            "COOKIE=b=2", "X-Other=é", "Empty=",
        ])
    }

    @Test func changesRewriteTheListAndKeepTheRest() throws {
        var (head, _) = try parsedHead()
        head.headers.replaceOrAdd(name: "HOST", value: "other.test")
        #expect(head.headers.first(name: "host") == "other.test" && head.headers.count == 7)
        #expect(head.headers.map { $0.name }.last == "HOST")
        head.headers.remove(name: "cookie")
        #expect(!head.headers.contains(name: "Cookie") && head.headers.count == 5)
        head.headers.add(name: "transfer-encoding", value: "chunked")
        #expect(head.headers.first(name: "Transfer-Encoding") == "chunked")
        #expect(head.headers.first(name: "x-other") == "é" && head.headers.first(name: "empty") == "")
        var nio = HTTPHeaders(head.headers.map { ($0.name, $0.value) })
        nio.remove(name: "x-other")
        head.headers.remove(name: "X-OTHER")
        #expect(head.headers.httpHeaders == nio)
    }

    @Test func builtAndConvertedListsAreEqualByNamesInAnyCaseAndValues() {
        var builder = RequestFields.Builder(byteCount: 4, fieldCount: 1)
        builder.add(name: "Host", value: "h")
        builder.add(name: "Accept", value: "*/*")
        let built = builder.finish()
        let literal: RequestFields = ["host": "h", "ACCEPT": "*/*"]
        #expect(built == literal)
        #expect(built == RequestFields(HTTPHeaders([("Host", "h"), ("Accept", "*/*")])))
        #expect(built != ["host": "h"])
        #expect(built != ["host": "h", "accept": "text/html"])
        #expect(RequestFields().count == 0 && RequestFields().first(name: "host") == nil && RequestFields() == [:])
    }

    @Test func aBuilderGrowsPastItsEstimates() {
        var builder = RequestFields.Builder(byteCount: 1, fieldCount: 1)
        var expected = HTTPHeaders()
        for index in 0..<40 {
            let name = "X-Field-\(index)", value = String(repeating: "v", count: index * 7)
            builder.add(name: name, value: value)
            expected.add(name: name, value: value)
        }
        let fields = builder.finish()
        #expect(fields.count == 40 && fields.httpHeaders == expected)
        #expect(fields.first(name: "x-field-39") == String(repeating: "v", count: 273))
        #expect(fields.byteCount == expected.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count })
        #expect(RequestFields.Builder(byteCount: 0, fieldCount: 0).finish() == RequestFields())
    }

    @Test func keepAliveFollowsTheVersionAndConnection() {
        #expect(RequestHead(version: .http1_1, method: .GET, uri: "/").isKeepAlive)
        #expect(!RequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Connection": "Close"]).isKeepAlive)
        #expect(!RequestHead(version: .http1_0, method: .GET, uri: "/").isKeepAlive)
        #expect(RequestHead(version: .http1_0, method: .HEAD, uri: "/", headers: ["connection": "Keep-Alive"]).isKeepAlive)
        #expect(RequestHead(version: .http1_0, method: .HEAD, uri: "/").isHeadRequest)
        for version in [HTTPVersion.http1_0, .http1_1] {
            for value in ["upgrade, close", " Keep-Alive ,x", "x,\tclose\t", "closed", "keep-alive-ish", ",", "", "TE, keep-alive"] {
                let nio = HTTPRequestHead(version: version, method: .GET, uri: "/", headers: ["Connection": value])
                #expect(RequestHead(nio).isKeepAlive == nio.isKeepAlive, "\(version) Connection: \(value)")
            }
        }
    }
}
