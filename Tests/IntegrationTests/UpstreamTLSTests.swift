import Foundation
import Testing

/// `https://` upstreams against a real Node HTTPS backend: verification against a configured CA, SNI, the
/// certificate's name and address checked, mutual TLS, pooled connections over TLS, health checks over TLS, and
/// failed handshakes told in words.
@Suite(.serialized) struct UpstreamTLSTests {
    /// A throwaway CA with server certificates (one for localhost, one for 127.0.0.1) and a client certificate,
    /// made by openssl.
    struct Authority {
        let directory: URL
        var ca: String { directory.appendingPathComponent("ca.pem").path }
        var serverCertificate: String { directory.appendingPathComponent("server.pem").path }
        var serverKey: String { directory.appendingPathComponent("server.key").path }
        var addressCertificate: String { directory.appendingPathComponent("server-ip.pem").path }
        var addressKey: String { directory.appendingPathComponent("server-ip.key").path }
        var clientCertificate: String { directory.appendingPathComponent("client.pem").path }
        var clientKey: String { directory.appendingPathComponent("client.key").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-ca-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let folder = directory.path
            let script = """
                set -e
                cd '\(folder)'
                key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
                key ca.key
                openssl req -x509 -key ca.key -days 2 -subj '/CN=Vantage test upstream CA' \
                  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem
                issue() {
                  key "$1.key"
                  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
                  printf '%s\\n' "$3" > "$1.ext"
                  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" \
                    -out "$1.pem" 2>/dev/null
                }
                issue server localhost 'subjectAltName=DNS:localhost
                extendedKeyUsage=serverAuth'
                issue server-ip 127.0.0.1 'subjectAltName=IP:127.0.0.1
                extendedKeyUsage=serverAuth'
                issue client vantage-edge 'extendedKeyUsage=clientAuth'
                """
            let result = try run(["sh", "-c", script])
            guard result.status == 0 else { throw Failure("openssl failed: \(result.stderr)") }
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static func start(_ routes: String) throws -> VantageProcess {
        try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            sites:
              - routes:
            \(routes)
            """, expect: ["http", "admin"])
    }

    func metrics(_ vantage: VantageProcess) throws -> String {
        try run(["curl", "-s", vantage.url("/metrics", kind: "admin")]).stdout
    }

    @Test func verifiesAgainstTheConfiguredCASendsSNIAndPoolsConnections() throws {
        let authority = try Authority()
        defer { authority.remove() }
        let backend = try BackendProcess.node(
            "tls1", environment: ["TLS_CERT": authority.serverCertificate, "TLS_KEY": authority.serverKey])
        let byAddressBackend = try BackendProcess.node(
            "tls1ip", environment: ["TLS_CERT": authority.addressCertificate, "TLS_KEY": authority.addressKey])
        let vantage = try Self.start("""
                  - { path: /name/, proxy: { upstreams: ["https://localhost:\(backend.port)"], tls: { ca: "\(authority.ca)" }, host: upstream } }
                  - { path: /ip/, proxy: { upstreams: ["https://127.0.0.1:\(byAddressBackend.port)"], tls: { ca: "\(authority.ca)" } } }
            """)

        // Three requests on one client connection (one event loop, so one pool).
        let url = vantage.url("/name/echo")
        let answers = try run(["curl", "-s", "-w", "\\n", url, url, url]).stdout.split(separator: "\n")
        #expect(answers.count == 3, "\(answers)\n\(vantage.log.suffix(2000))")
        var connections: Set<Int> = []
        for answer in answers {
            let echo = try json(String(answer))
            let tls = try #require(echo["tls"] as? [String: Any], "\(answer)")
            #expect(tls["servername"] as? String == "localhost")
            #expect(tls["alpn"] as? String == "http/1.1")
            #expect((echo["headers"] as? [String: String])?["host"] == "localhost:\(backend.port)")
            if let number = tls["connection"] as? Int { connections.insert(number) }
        }
        // Keep-alive over TLS: the three requests rode one pooled connection.
        #expect(connections.count == 1, "\(connections)")

        // An IP address: no SNI, and the certificate's IP entry is what is checked.
        let byAddress = try curl([vantage.url("/ip/echo")])
        #expect(byAddress.status == 200, "\(byAddress.body)\n\(vantage.log.suffix(2000))")
        let tls = try json(byAddress.body)["tls"] as? [String: Any]
        #expect(tls?["servername"] is NSNull)

        let text = try metrics(vantage)
        #expect(text.contains("vantage_upstream_connections_total{upstream=\"https://localhost:\(backend.port)\",kind=\"reused\"} 2"), "\(text)")
    }

    @Test func untrustedOrMisnamedCertificatesAre502WithTheReasonAndFailTheHealthCheck() throws {
        let authority = try Authority()
        defer { authority.remove() }
        let backend = try BackendProcess.node(
            "tls2", environment: ["TLS_CERT": authority.serverCertificate, "TLS_KEY": authority.serverKey])
        let vantage = try Self.start("""
                  - path: /system/
                    proxy:
                      upstreams: ["https://localhost:\(backend.port)"]
                      retries: 0
                      health_check: { path: /health, interval: 200ms, fails: 1 }
                  - { path: /misnamed/, proxy: { upstreams: ["https://localhost:\(backend.port)"], tls: { ca: "\(authority.ca)", server_name: other.test }, retries: 0 } }
                  - { path: /insecure/, proxy: { upstreams: ["https://localhost:\(backend.port)"], tls: { verify: false } } }
            """)

        // Not signed by a CA the system trusts: the handshake fails, the client gets 502, the log says why.
        try waitUntil(timeout: 10) { try metrics(vantage).contains("vantage_upstream_healthy{upstream=\"https://localhost:\(backend.port)\"} 0") }
        let untrusted = try curl([vantage.url("/system/echo")])
        #expect(untrusted.status == 502 || untrusted.status == 503)
        #expect(vantage.log.contains("failed its health check (its certificate is not signed by a trusted CA"), "\(vantage.log.suffix(3000))")

        let misnamed = try curl([vantage.url("/misnamed/echo")])
        #expect(misnamed.status == 502)
        #expect(vantage.log.contains("the TLS handshake with the upstream failed"), "\(vantage.log.suffix(3000))")
        #expect(vantage.log.contains("its certificate is not valid for other.test"), "\(vantage.log.suffix(3000))")

        // verify: false accepts the certificate the system does not trust.
        let insecure = try curl([vantage.url("/insecure/echo")])
        #expect(insecure.status == 200, "\(insecure.body)\n\(vantage.log.suffix(2000))")
    }

    @Test func plainHTTPOnATLSUpstreamIsToldAsSuch() throws {
        let backend = try BackendProcess.node("plain")
        let vantage = try Self.start("""
                  - { path: /, proxy: { upstreams: ["https://127.0.0.1:\(backend.port)"], retries: 0, tls: { verify: false } } }
            """)
        let answer = try curl([vantage.url("/echo")])
        #expect(answer.status == 502)
        #expect(vantage.log.contains("does not speak TLS on this port"), "\(vantage.log.suffix(3000))")
    }

    @Test func presentsAClientCertificateWhenTheUpstreamRequiresOne() throws {
        let authority = try Authority()
        defer { authority.remove() }
        let backend = try BackendProcess.node("mtls", environment: [
            "TLS_CERT": authority.serverCertificate, "TLS_KEY": authority.serverKey, "TLS_CLIENT_CA": authority.ca,
        ])
        let vantage = try Self.start("""
                  - path: /with/
                    proxy:
                      upstreams: ["https://localhost:\(backend.port)"]
                      tls: { ca: "\(authority.ca)", client_certificate: "\(authority.clientCertificate)", client_key: "\(authority.clientKey)" }
                      health_check: { path: /health, interval: 200ms }
                  - { path: /without/, proxy: { upstreams: ["https://localhost:\(backend.port)"], tls: { ca: "\(authority.ca)" }, retries: 0 } }
            """)
        let with = try curl([vantage.url("/with/echo")])
        #expect(with.status == 200, "\(with.body)\n\(vantage.log.suffix(2000))")
        #expect((try json(with.body)["tls"] as? [String: Any])?["client"] as? String == "vantage-edge")

        let without = try curl([vantage.url("/without/echo")])
        #expect(without.status == 502)
        #expect(vantage.log.contains("the upstream ended the TLS connection without answering"), "\(vantage.log.suffix(3000))")
        #expect(vantage.log.contains("it requires a client certificate"), "\(vantage.log.suffix(3000))")

        // The same address with other TLS settings is another target, labelled apart; the health check passes
        // over mutual TLS.
        let text = try metrics(vantage)
        #expect(text.contains("vantage_upstream_healthy{upstream=\"https://localhost:\(backend.port)\"} 1"), "\(text)")
        #expect(text.contains("upstream=\"https://localhost:\(backend.port)#2\""), "\(text)")
        #expect(!vantage.log.contains("failed its health check"), "\(vantage.log.suffix(3000))")
    }

    @Test func webSocketsTunnelOverTLS() throws {
        let authority = try Authority()
        defer { authority.remove() }
        let python = try BackendProcess.uvicornTLS("pytls", certificate: authority.serverCertificate, key: authority.serverKey)
        let vantage = try Self.start("""
                  - { path: /ws/, proxy: { upstreams: ["https://localhost:\(python.port)"], tls: { ca: "\(authority.ca)" }, strip_prefix: true } }
            """)
        let client = try run([
            BackendProcess.python, BackendProcess.backendsFolder.appendingPathComponent("ws_client.py").path,
            "ws://127.0.0.1:\(vantage.ports["http"]!)/ws/ws", "over", "tls",
        ])
        #expect(client.status == 0, "\(client.stderr)\n\(vantage.log.suffix(2000))")
        #expect(client.stdout == "echo: over\necho: tls\n")
    }

    @Test func tlsSettingsAreCheckedWhenTheConfigurationIsRead() throws {
        let authority = try Authority()
        defer { authority.remove() }
        let file = authority.directory.appendingPathComponent("vantage.yaml")
        for (proxy, words) in [
            ("{ upstreams: [\"127.0.0.1:3000\"], tls: { ca: ca.pem } }", "tls applies to https:// upstreams"),
            ("{ upstreams: [\"https://127.0.0.1:3000\"], tls: { ca: missing.pem } }", "cannot read \(authority.directory.path)/missing.pem"),
            ("{ upstreams: [\"https://127.0.0.1:3000\"], tls: { ca: server.key } }", "expected one or more PEM certificates"),
            ("{ upstreams: [\"https://127.0.0.1:3000\"], tls: { client_certificate: client.pem } }", "client_certificate needs client_key"),
            ("{ upstreams: [\"https://127.0.0.1:3000\"], tls: { client_certificate: client.pem, client_key: server.key } }",
             "the client key does not belong to the client certificate"),
        ] {
            try """
                listen: { http: "127.0.0.1:0" }
                sites:
                  - routes:
                      - { path: /, proxy: \(proxy) }
                """.write(to: file, atomically: true, encoding: .utf8)
            let result = try run([VantageProcess.binary, "validate", "--config", file.path])
            let output = result.stdout + result.stderr
            #expect(result.status != 0)
            #expect(output.contains(words), "\(output)")
            #expect(output.contains("sites[0].routes[0].proxy.tls") || output.contains("line 4"), "\(output)")
        }
        // Relative paths resolve against the configuration's folder; a valid section validates.
        try """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /, proxy: { upstreams: ["https://localhost:8443"], tls: { ca: ca.pem, client_certificate: client.pem, client_key: client.key } } }
            """.write(to: file, atomically: true, encoding: .utf8)
        let valid = try run([VantageProcess.binary, "validate", "--config", file.path])
        #expect(valid.status == 0, "\(valid.stdout)\(valid.stderr)")
    }
}
