import Foundation
import Testing

/// Built-in ACME against a real ACME server (Debian's Pebble, validating HTTP-01 over the network through its own
/// DNS): first certificate, reuse after a restart, renewal under HTTPS load, a CA outage, and a failing challenge.
@Suite(.serialized, .enabled(if: PebbleServer.isInstalled, "needs Debian's pebble"))
struct ACMEIntegrationTests {
    static func config(httpPort: Int, pebble: PebbleServer, hosts: [String] = ["acme.test"], extra: String = "") -> String {
        """
        listen: { http: "127.0.0.1:\(httpPort)", https: "127.0.0.1:0" }
        tls:
          acme:
            email: ops@acme.test
            directory: "\(pebble.directoryURL)"
            ca_root: "\(pebble.apiRootPath)"
            storage: "{{DIR}}/acme"
        \(extra)
        sites:
          - hosts: [\(hosts.joined(separator: ", "))]
            routes:
              - { path: /, respond: "secure hello" }
        access_log: off
        admin: { listen: "127.0.0.1:0" }
        tracking: { enabled: false }
        """
    }

    static func health(_ vantage: VantageProcess) throws -> [[String: Any]] {
        let body = try curl(["-s", vantage.url("/health", kind: "admin")]).body
        return try json(body)["certificates"] as? [[String: Any]] ?? []
    }

    static func waitForCertificate(_ vantage: VantageProcess, name: String = "acme.test", timeout: TimeInterval = 30) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let entry = try health(vantage).first(where: { $0["name"] as? String == name }), entry["state"] as? String == "valid" {
                return entry
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure("no certificate for \(name) in \(timeout) s:\n\(vantage.log)")
    }

    /// curl over HTTPS to `name`, verifying the chain against `root`.
    static func verifiedGet(_ vantage: VantageProcess, name: String = "acme.test", root: String) throws -> CurlAnswer {
        let port = vantage.ports["https"]!
        return try curl(["--resolve", "\(name):\(port):127.0.0.1", "--cacert", root, "https://\(name):\(port)/"])
    }

    @Test func obtainsACertificateAndReusesItAfterARestart() throws {
        let httpPort = try freePort()
        let pebble = try PebbleServer(httpPort: httpPort, requireBinding: true)
        let binding = """
                eab: { kid: \(PebbleServer.bindingKeyID), hmac_key: \(PebbleServer.bindingMACKey) }
            """
        let config = Self.config(httpPort: httpPort, pebble: pebble, extra: binding)
        let started = Date()
        let first = try VantageProcess(config: config, expect: ["http", "https", "admin"])
        first.keepsDirectory = true
        defer { try? FileManager.default.removeItem(at: first.directory) }
        let entry = try Self.waitForCertificate(first)
        let elapsed = Date().timeIntervalSince(started)
        print("ACME figure: from process start to the first certificate against Pebble: \(String(format: "%.2f", elapsed)) s")
        #expect(entry["not_after"] != nil && entry["failures"] as? Int == 0)
        let root = try pebble.issuingRoot()
        let answer = try Self.verifiedGet(first, root: root)
        #expect(answer.status == 200 && answer.body == "secure hello", "the chain verifies against Pebble's root")
        #expect(first.log.contains("obtained a certificate for acme.test"))
        let storage = first.directory.appendingPathComponent("acme").path
        let files = try FileManager.default.subpathsOfDirectory(atPath: storage).filter { $0.hasSuffix(".pem") }
        #expect(files.count >= 3, "account key, certificate key and chain: \(files)")
        for file in files {
            let mode = try FileManager.default.attributesOfItem(atPath: storage + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file) is private")
        }
        let metrics = try curl(["-s", first.url("/metrics", kind: "admin")]).body
        #expect(metric(metrics, "vantage_acme_orders_total{result=\"succeeded\"}") == 1)
        #expect(first.stop() == 0)

        // A restart serves the stored certificate at once and orders nothing.
        let issuedBefore = pebble.log.components(separatedBy: "Issued certificate").count
        let second = try VantageProcess(config: config, expect: ["http", "https", "admin"], reusing: first.directory)
        #expect(try Self.verifiedGet(second, root: root).status == 200, "HTTPS at once, from storage")
        #expect(second.log.contains("served from storage at once"))
        Thread.sleep(forTimeInterval: 1)
        let again = try curl(["-s", second.url("/metrics", kind: "admin")]).body
        #expect(metric(again, "vantage_acme_orders_total{result=\"succeeded\"}") == 0)
        #expect(pebble.log.components(separatedBy: "Issued certificate").count == issuedBefore, "no second order")
        #expect(!second.log.contains("ACME account ready"), "the stored account was reused")
        #expect(second.stop() == 0)
    }

    @Test func aHostAddedByAReloadGetsItsCertificateWithoutARestart() throws {
        let httpPort = try freePort()
        let pebble = try PebbleServer(httpPort: httpPort)
        let vantage = try VantageProcess(config: Self.config(httpPort: httpPort, pebble: pebble), expect: ["http", "https", "admin"])
        _ = try Self.waitForCertificate(vantage)
        try Self.config(httpPort: httpPort, pebble: pebble, hosts: ["acme.test", "added.test"])
            .replacingOccurrences(of: "{{DIR}}", with: vantage.directory.path)
            .write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        vantage.signal(SIGHUP)
        _ = try Self.waitForCertificate(vantage, name: "added.test")
        let root = try pebble.issuingRoot()
        #expect(try Self.verifiedGet(vantage, name: "added.test", root: root).status == 200)
        #expect(try Self.verifiedGet(vantage, name: "acme.test", root: root).status == 200, "the first name still served")
        #expect(vantage.stop() == 0)
    }

    @Test func twoProcessesSharingStorageOrderEachNameOnceAndAnswerEachOthersChallenges() throws {
        let httpPort = try freePort()
        let pebble = try PebbleServer(httpPort: httpPort)
        let storage = FileManager.default.temporaryDirectory.appendingPathComponent("shared-acme-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: storage) }
        func config(port: Int, hosts: [String]) -> String {
            Self.config(httpPort: port, pebble: pebble, hosts: hosts).replacingOccurrences(of: "{{DIR}}/acme", with: storage)
        }
        // The CA validates every name on the first process's port; the second one's own name (b.test) can only
        // pass if the first answers from the shared storage. both.test is wanted by both: one orders, one waits.
        let first = try VantageProcess(config: config(port: httpPort, hosts: ["a.test", "both.test"]), expect: ["http", "https", "admin"])
        let second = try VantageProcess(config: config(port: 0, hosts: ["b.test", "both.test"]), expect: ["http", "https", "admin"])
        _ = try Self.waitForCertificate(first, name: "a.test")
        _ = try Self.waitForCertificate(first, name: "both.test")
        _ = try Self.waitForCertificate(second, name: "b.test")
        _ = try Self.waitForCertificate(second, name: "both.test")
        let root = try pebble.issuingRoot()
        for (vantage, name) in [(first, "a.test"), (first, "both.test"), (second, "b.test"), (second, "both.test")] {
            #expect(try Self.verifiedGet(vantage, name: name, root: root).status == 200, "\(name)")
        }
        #expect(pebble.log.components(separatedBy: "Issued certificate").count - 1 == 3, "one order per name:\n\(pebble.log)")
        // The second waited on the first's order, or (started once it was done) found it in the storage: at start,
        // or when its manager first looked, which can be a moment after the start when the first just stored it.
        #expect(first.log.contains("obtained the certificate for both.test; using it")
            || second.log.contains("obtained the certificate for both.test; using it")
            || second.log.contains("served from storage")
            || second.log.contains("serving the stored certificate for both.test"), "\(second.log)")
        #expect(first.stop() == 0 && second.stop() == 0)
    }

    @Test func aShortLivedCertificateIsRenewedUnderLoadWithoutAFailedRequest() throws {
        let httpPort = try freePort()
        // 30 s certificates: renewal is due with 10 s left, so one comes 20 s after the first.
        let pebble = try PebbleServer(httpPort: httpPort, validity: 30)
        let vantage = try VantageProcess(config: Self.config(httpPort: httpPort, pebble: pebble), expect: ["http", "https", "admin"])
        let first = try Self.waitForCertificate(vantage)
        let firstExpiry = first["not_after"] as? String
        // New TLS handshakes all along (Connection: close), so requests meet the certificate swap.
        let port = vantage.ports["https"]!
        let load = try run(["wrk", "-t1", "-c4", "-d28s", "--timeout", "5s", "-H", "Connection: close", "-H", "Host: acme.test", "https://127.0.0.1:\(port)/"])
        print("ACME figure: renewal under load:\n\(load.stdout)")
        let total = Int(load.stdout.firstMatch(of: /(\d+) requests in/)?.1 ?? "0") ?? 0
        #expect(total > 100, "\(load.stdout)")
        #expect(!load.stdout.contains("Socket errors"), "no failed connection during the renewal: \(load.stdout)")
        #expect(!load.stdout.contains("Non-2xx"), "\(load.stdout)")
        let renewed = try Self.health(vantage).first { $0["name"] as? String == "acme.test" }
        #expect(renewed?["not_after"] as? String != firstExpiry, "a new certificate was installed")
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect((metric(metrics, "vantage_acme_orders_total{result=\"succeeded\"}") ?? 0) >= 2)
        #expect(try Self.verifiedGet(vantage, root: try pebble.issuingRoot()).status == 200, "the new chain verifies")
        #expect(vantage.stop() == 0)
    }

    @Test func withTheCADownTheOldCertificateKeepsServingRetriesWithBackoffAndRecovers() throws {
        let httpPort = try freePort()
        let pebble = try PebbleServer(httpPort: httpPort, validity: 20)
        let retry = """
                retry: { min: 1s, max: 4s }
            """
        let vantage = try VantageProcess(
            config: Self.config(httpPort: httpPort, pebble: pebble, extra: retry), expect: ["http", "https", "admin"])
        _ = try Self.waitForCertificate(vantage)
        pebble.stop()
        // Renewal is due about 13 s after issuance; then attempts fail (each may take the 5 s connect timeout) 1 s,
        // 2 s and 4 s apart.
        let deadline = Date().addingTimeInterval(60)
        var entry: [String: Any]?
        while Date() < deadline {
            entry = try Self.health(vantage).first { $0["name"] as? String == "acme.test" }
            if (entry?["failures"] as? Int ?? 0) >= 3 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect((entry?["failures"] as? Int ?? 0) >= 3, "\(String(describing: entry))\n\(vantage.log)")
        #expect(entry?["state"] as? String == "failing" && entry?["next_attempt"] != nil)
        #expect((entry?["last_error"] as? String)?.isEmpty == false)
        let delays = vantage.log.matches(of: /attempt (\d+), retrying in (\d+) s/).map { Int($0.2)! }
        #expect(Array(delays.prefix(3)) == [1, 2, 4], "growing backoff: \(delays)")
        // Still serving HTTPS with the certificate it has.
        let port = vantage.ports["https"]!
        let answer = try curl(["-k", "--resolve", "acme.test:\(port):127.0.0.1", "https://acme.test:\(port)/"])
        #expect(answer.status == 200)
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect((metric(metrics, "vantage_acme_consecutive_failures{name=\"acme.test\"}") ?? 0) >= 3)
        // The CA comes back as a new instance that has forgotten the account: Vantage registers its key again
        // and renews at the next attempt.
        try pebble.start()
        let recovered = try Self.waitForCertificate(vantage, timeout: 30)
        #expect(recovered["failures"] as? Int == 0)
        #expect(vantage.log.contains("registering the key again"))
        #expect(try Self.verifiedGet(vantage, root: try pebble.issuingRoot()).status == 200)
        #expect(vantage.stop() == 0)
    }

    @Test func aFailingChallengeIsReportedWithWhatTheCASaw() throws {
        let httpPort = try freePort()
        let pebble = try PebbleServer(httpPort: httpPort)
        // Nothing listens on 127.0.0.2: Pebble's validation request for this name cannot connect.
        try pebble.resolve("unreachable.test", to: "127.0.0.2")
        let vantage = try VantageProcess(
            config: Self.config(httpPort: httpPort, pebble: pebble, hosts: ["acme.test", "unreachable.test"]),
            expect: ["http", "https", "admin"])
        _ = try Self.waitForCertificate(vantage)
        let deadline = Date().addingTimeInterval(20)
        var entry: [String: Any]?
        while Date() < deadline {
            entry = try Self.health(vantage).first { $0["name"] as? String == "unreachable.test" }
            if entry?["last_error"] != nil { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let error = entry?["last_error"] as? String ?? ""
        #expect(error.contains("the http-01 challenge for unreachable.test failed") && error.contains("127.0.0.2"), "\(error)")
        #expect(vantage.log.contains("could not obtain a certificate for unreachable.test"))
        #expect(try Self.verifiedGet(vantage, root: try pebble.issuingRoot()).status == 200, "the other name is unaffected")
        #expect(vantage.stop() == 0)
    }

    @Test func onDemandCertificatesAreIssuedAtTheFirstHandshakeForAllowedNamesOnly() throws {
        let httpPort = try freePort()
        let pebble = try PebbleServer(httpPort: httpPort)
        let node = try BackendProcess.node("ask")
        defer { node.kill() }
        let onDemand = """
                on_demand: { allow: ["*.allowed.test"], ask: "http://\(node.address)/ask", rate: 10/m }
            """
        let vantage = try VantageProcess(
            config: Self.config(httpPort: httpPort, pebble: pebble, hosts: ["\"*\""], extra: onDemand),
            expect: ["http", "https", "admin"])
        let root = try pebble.issuingRoot()
        // Allowed by the list, then by the ask URL: the first handshake waits for the certificate.
        for name in ["shop.allowed.test", "blog.ok.test"] {
            let started = Date()
            let answer = try Self.verifiedGet(vantage, name: name, root: root)
            #expect(answer.status == 200 && answer.body == "secure hello", "\(name): \(answer)")
            print("ACME figure: first on-demand handshake for \(name) answered in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        }
        // Refused by both: the handshake goes on with the stand-in certificate, which does not verify.
        let port = vantage.ports["https"]!
        let refused = try run(["curl", "-sS", "--resolve", "evil.test:\(port):127.0.0.1", "--cacert", root, "https://evil.test:\(port)/"])
        #expect(refused.status != 0, "no certificate for a name nobody allowed")
        let health = try Self.health(vantage)
        #expect(Set(health.compactMap { $0["name"] as? String }) == ["shop.allowed.test", "blog.ok.test"])
        let metrics = try curl(["-s", vantage.url("/metrics", kind: "admin")]).body
        #expect(metric(metrics, "vantage_acme_orders_total{result=\"succeeded\"}") == 2)
        #expect((metric(metrics, "vantage_acme_on_demand_refused_total") ?? 0) >= 1)
        #expect(vantage.stop() == 0)
    }
}
