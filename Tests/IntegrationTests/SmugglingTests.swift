import Foundation
import Testing

/// Request-smuggling probes through the real binary in front of a real Node backend: every head that two HTTP/1.1
/// parsers could frame differently is refused with the connection closed, and the request hidden behind it is
/// never served. Each probe is sent on one connection followed by a plain `GET /proxy/echo/smuggled`.
@Suite(.serialized) struct SmugglingTests {
    static let hidden = "GET /proxy/echo/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"

    /// name, the probe (its body may hold the hidden request), and the status it must get.
    static let probes: [(String, String, Int)] = [
        ("CL.TE", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400),
        ("TE.CL", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
        ("TE.TE duplicate", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400),
        ("TE xchunked", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 501),
        ("TE chunked, gzip", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        ("TE with vertical tab", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\u{0B}\r\n\r\n0\r\n\r\n", 400),
        ("TE name with space before colon", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
        ("TE folded", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400),
        ("CL twice, different", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nABCDE", 400),
        ("CL twice, same", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nABCDE", 400),
        ("CL list", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\n\r\nABCDE", 400),
        ("CL plus sign", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nABCDE", 400),
        ("CL hex", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0x5\r\n\r\nABCDE", 400),
        ("CL negative", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", 400),
        ("CL overflow", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("chunk size with 0x", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nABCDE\r\n0\r\n\r\n", 400),
        ("chunk size overflow", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nA\r\n0\r\n\r\n", 400),
        ("chunk without CRLF", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nABCDEXX0\r\n\r\n", 400),
        ("bare LF chunk", "POST /proxy/upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\nABCDE\n0\n\n", 400),
        ("two Hosts", "GET /proxy/echo HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n", 400),
        ("no Host", "GET /proxy/echo HTTP/1.1\r\n\r\n", 400),
        ("Host with userinfo", "GET /proxy/echo HTTP/1.1\r\nHost: evil@localhost\r\n\r\n", 400),
        ("NUL in a header", "GET /proxy/echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\u{0}b\r\n\r\n", 400),
        ("header without colon", "GET /proxy/echo HTTP/1.1\r\nHost: localhost\r\nJunk\r\n\r\n", 400),
        ("space in the target", "GET /proxy/echo /x HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
        ("unknown version", "GET /proxy/echo HTTP/1.2\r\nHost: localhost\r\n\r\n", 400),
        ("lowercase method", "get /proxy/echo HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
        ("encoded slash", "GET /proxy/echo%2F..%2F..%2Fx HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
        ("CONNECT", "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n", 405),
    ]

    @Test func ambiguousHeadsAreRefusedAndNothingBehindThemIsServed() throws {
        let backend = try BackendProcess.node("smuggle")
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: off }
            access_log: off
            limits: { header_timeout: 2s, body_timeout: 2s }
            sites:
              - routes:
                  - { path: /proxy/, proxy: { upstreams: ["\(backend.address)"] } }
                  - { respond: "root" }
            """)
        defer { _ = vantage.stop(); backend.kill() }
        var outcomes: [String] = []
        for (name, probe, status) in Self.probes {
            let answer = try rawExchange(port: vantage.ports["http"]!, send: [probe + Self.hidden], timeout: 5)
            let got = split(answer).status
            let answers = answerCount(answer)
            outcomes.append("\(name): \(got.map(String.init) ?? "none") (\(answers) answer(s))")
            #expect(got == status, "\(name): expected \(status), got \(answer.prefix(160))")
            #expect(answers <= 1, "\(name): something behind the probe was answered: \(answer)")
            #expect(!answer.contains("/proxy/echo/smuggled"), "\(name): the hidden request was served")
            #expect(answer.contains("Connection: close") || answer.isEmpty, "\(name): the connection stays open")
        }
        print("smuggling probes:\n  " + outcomes.joined(separator: "\n  "))
    }
}
