import Foundation
import Testing

/// HTTP/2 and HPACK conformance of the real binary: `h2_conformance.py` (the `h2` package's frame and HPACK code
/// in the test venv) sends each of its 146 cases on its own TLS connection (the sections h2spec checks: preface,
/// frame sizes, SETTINGS, PING, GOAWAY, RST_STREAM, flow control, stream states, HPACK errors, CONTINUATION,
/// request header rules) and every one must get the answer RFC 9113 and RFC 7541 require, error code included.
@Suite(.serialized) struct HTTP2ConformanceTests {
    static let config = """
        listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
        admin: { listen: off }
        access_log: off
        tls:
          certificates:
            - { cert: "{{DIR}}/a.pem", key: "{{DIR}}/a.key" }
        sites:
          - hosts: [localhost]
            routes: [{ respond: "conformance body" }]
          - hosts: "*"
            routes: [{ path: /elsewhere, respond: "not here" }]
        """

    /// On `localhost` a route answers once the request has ended; elsewhere the 404 is answered from the head
    /// alone, before the request's END_STREAM is read (the path that resets a stream whose body is still coming).
    @Test(arguments: ["localhost", "other.test"]) func everyCaseGetsTheAnswerTheRFCsRequire(host: String) throws {
        let vantage = try VantageProcess(config: Self.config, expect: ["https"]) { directory in
            _ = try makeCertificate(in: directory, name: "a", names: ["localhost"])
        }
        let script = BackendProcess.backendsFolder.appendingPathComponent("h2_conformance.py").path
        let result = try run([BackendProcess.python, script, String(vantage.ports["https"]!), "--host", host, "--json"])
        let answer = try json(result.stdout)
        let cases = answer["cases"] as? [[String: Any]] ?? []
        #expect(cases.count == 146, "the suite ran \(cases.count) cases: \(result.stderr)")
        let failed = cases.filter { ($0["passed"] as? Bool) != true }
        for failure in failed {
            Issue.record("\(failure["id"] ?? "?") \(failure["title"] ?? ""): \(failure["detail"] ?? "")")
        }
        #expect(failed.isEmpty && result.status == 0)
    }
}
