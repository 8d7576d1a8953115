import Foundation
import Testing

/// TLS with SNI, HTTP/2 by ALPN, HTTPS redirect and HSTS through the real binary, checked with curl and nghttp.
@Suite(.serialized) struct TLSAndHTTP2Tests {
    static let config = """
        listen: { http: "127.0.0.1:0", https: "127.0.0.1:0" }
        admin: { listen: off }
        access_log: off
        tls:
          certificates:
            - { cert: "{{DIR}}/a.pem", key: "{{DIR}}/a.key" }
            - { cert: "{{DIR}}/b.pem", key: "{{DIR}}/b.key" }
        sites:
          - hosts: [a.test]
            redirect_https: true
            hsts: { max_age: 1d }
            routes: [{ respond: "site a" }]
          - hosts: [b.test, "*.b.test"]
            routes: [{ respond: "site b" }]
          - hosts: "*"
            routes: [{ respond: "default site" }]
        """

    static func start() throws -> VantageProcess {
        try VantageProcess(config: config, expect: ["http", "https"]) { directory in
            _ = try makeCertificate(in: directory, name: "a", names: ["a.test"])
            _ = try makeCertificate(in: directory, name: "b", names: ["b.test", "*.b.test"])
        }
    }

    func resolve(_ vantage: VantageProcess, _ host: String) -> [String] {
        ["--resolve", "\(host):\(vantage.ports["https"]!):127.0.0.1"]
    }

    @Test func sniPicksTheCertificateAndALPNPicksHTTP2() throws {
        let vantage = try Self.start()
        let port = vantage.ports["https"]!
        let a = try curl(["-k", "--http2"] + resolve(vantage, "a.test") + ["https://a.test:\(port)/"])
        #expect(a.status == 200)
        #expect(a.version == "2")
        #expect(a.body == "site a")
        #expect(a.headers["strict-transport-security"] == "max-age=86400")
        let verbose = try run(["curl", "-skv", "--http1.1"] + resolve(vantage, "b.test") + ["https://b.test:\(port)/"])
        #expect(verbose.stdout == "site b")
        #expect(verbose.stderr.contains("subject: CN=b.test"))
        #expect(verbose.stderr.contains("HTTP/1.1 200"))
        let aCert = try run(["curl", "-skv"] + resolve(vantage, "a.test") + ["https://a.test:\(port)/"])
        #expect(aCert.stderr.contains("subject: CN=a.test"))
        // Verified against the certificate itself: the chain and the name check out.
        let verified = try run(["curl", "-s", "--cacert", vantage.directory.appendingPathComponent("b.pem").path]
            + resolve(vantage, "x.b.test") + ["https://x.b.test:\(port)/"])
        #expect(verified.status == 0)
        #expect(verified.stdout == "site b")
    }

    @Test func nghttpSpeaksHTTP2() throws {
        let vantage = try Self.start()
        let result = try run(["nghttp", "-nv", "https://127.0.0.1:\(vantage.ports["https"]!)/"])
        #expect(result.stdout.contains("The negotiated protocol: h2"))
        #expect(result.stdout.contains(":status: 200"))
    }

    @Test func oldTLSVersionsAreRefused() throws {
        let vantage = try Self.start()
        let port = vantage.ports["https"]!
        let tls11 = try run(["curl", "-sk", "--tlsv1.1", "--tls-max", "1.1", "https://127.0.0.1:\(port)/"])
        #expect(tls11.status != 0)
        let tls12 = try run(["curl", "-sk", "--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{http_code}",
                             "https://127.0.0.1:\(port)/"])
        #expect(tls12.stdout == "200")
        let cbc = try run(["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-cipher",
                           "ECDHE-ECDSA-AES128-SHA"])
        #expect(cbc.stdout.contains("Cipher is (NONE)") || cbc.status != 0)
    }

    static let streamingConfig = """
        listen: { https: "127.0.0.1:0" }
        admin: { listen: off }
        access_log: off
        tls: { certificates: [{ cert: "{{DIR}}/a.pem", key: "{{DIR}}/a.key" }] }
        sites:
          - routes:
              - { path: /upload, respond: "got it", max_body_size: 5MB }
              - { path: /, static: { root: "{{DIR}}/www" } }
        """

    @Test func http2BodiesStreamBothWays() throws {
        let vantage = try VantageProcess(config: Self.streamingConfig, expect: ["https"]) { directory in
            _ = try makeCertificate(in: directory, name: "a", names: ["127.0.0.1"])
            let www = directory.appendingPathComponent("www")
            try FileManager.default.createDirectory(at: www, withIntermediateDirectories: true)
            try Data((0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: www.appendingPathComponent("big.bin"))
            try Data(repeating: 7, count: 3 << 20).write(to: directory.appendingPathComponent("upload.bin"))
            try Data(repeating: 7, count: 6 << 20).write(to: directory.appendingPathComponent("too-big.bin"))
        }
        let base = "https://127.0.0.1:\(vantage.ports["https"]!)"
        // 3 MB up: more than the initial flow-control windows, so the server must hand back credit.
        let upload = try run(["curl", "-sk", "--http2", "-w", " %{http_code} %{http_version}", "--data-binary",
                              "@\(vantage.directory.path)/upload.bin", "\(base)/upload"])
        #expect(upload.stdout == "got it 200 2")
        let tooBig = try run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                              "@\(vantage.directory.path)/too-big.bin", "\(base)/upload"])
        #expect(tooBig.stdout == "413")
        // 6 MB down, larger than the memory cache limit: streamed from disk in chunks.
        let download = try run(["curl", "-sk", "--http2", "-o", "\(vantage.directory.path)/got.bin", "-w",
                                "%{http_code} %{size_download}", "\(base)/big.bin"])
        #expect(download.stdout == "200 \(6 << 20)")
        let original = try Data(contentsOf: vantage.directory.appendingPathComponent("www/big.bin"))
        let received = try Data(contentsOf: vantage.directory.appendingPathComponent("got.bin"))
        #expect(original == received)
        // Many streams at once on one connection.
        let many = try run(["nghttp", "-n", "-s", "-m", "50", "\(base)/upload"])
        #expect(many.status == 0)
        let answered = many.stdout.split(separator: "\n").filter { $0.contains(" 200 ") && $0.contains("/upload") }
        #expect(answered.count == 50)
        #expect(vantage.stop() == 0)
    }

    @Test func idleHTTP2ConnectionsGetGOAWAY() throws {
        let config = """
            listen: { https: "127.0.0.1:0" }
            admin: { listen: off }
            access_log: off
            limits: { idle_timeout: 1s }
            tls: { certificates: [{ cert: "{{DIR}}/a.pem", key: "{{DIR}}/a.key" }] }
            sites: [{ routes: [{ respond: "x" }] }]
            """
        let vantage = try VantageProcess(config: config, expect: ["https"]) { directory in
            _ = try makeCertificate(in: directory, name: "a", names: ["127.0.0.1"])
        }
        // A bare HTTP/2 client: preface and an empty SETTINGS frame, then wait for the server to hang up.
        let script = """
            import socket, ssl, sys, time
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
            s.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
            s.settimeout(10); data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            i = 0; types = []
            while i + 9 <= len(data):
                length = int.from_bytes(data[i:i + 3], "big"); types.append(data[i + 3]); i += 9 + length
            print("goaway" if 7 in types else "no goaway")
            """
        let result = try run(["python3", "-c", script, String(vantage.ports["https"]!)])
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "goaway", "\(result.stderr)")
    }

    @Test func aReloadSwapsTheCertificateWithoutARestart() throws {
        let vantage = try Self.start()
        let port = vantage.ports["https"]!
        func subject() throws -> String {
            let result = try run(["curl", "-skv"] + resolve(vantage, "b.test") + ["https://b.test:\(port)/"])
            return result.stderr.split(separator: "\n").first { $0.contains("subject:") }.map(String.init) ?? ""
        }
        #expect(try subject().contains("CN=b.test"))
        // Replace b's certificate with one whose first name differs, then reload: new handshakes see it.
        _ = try makeCertificate(in: vantage.directory, name: "b", names: ["renewed.b.test", "b.test"])
        vantage.signal(SIGHUP)
        try waitUntil { try subject().contains("CN=renewed.b.test") }
        #expect(vantage.log.contains("configuration reloaded"))
    }

    @Test func plainHTTPRedirectsToHTTPS() throws {
        let vantage = try Self.start()
        let answer = try curl(["-H", "Host: a.test", vantage.url("/path?x=1")])
        #expect(answer.status == 308)
        #expect(answer.headers["location"] == "https://a.test:\(vantage.ports["https"]!)/path?x=1")
        let other = try curl(["-H", "Host: b.test", vantage.url("/")])
        #expect(other.status == 200)
    }
}
