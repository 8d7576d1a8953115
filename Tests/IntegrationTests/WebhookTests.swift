import Foundation
import Testing

/// Webhooks in through the real binary: every call an event (method, source, action, the start of the body),
/// GitHub's and Stripe's signatures checked with secrets from the environment, Alcolytics' `/webhook/` layout.
@Suite(.serialized)
struct WebhookTests {
    static let githubSecret = "gh-secret-0123456789"
    static let stripeSecret = "whsec_0123456789abcdef"

    static func start() throws -> VantageProcess {
        try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: off
            sites:
              - hosts: [localhost, 127.0.0.1]
                compat: [alcolytics]
                routes:
                  - path: /hooks/
                    webhook:
                      keep: 1KB
                      sources:
                        github: { secret_env: TEST_GITHUB_SECRET, scheme: github }
                        stripe: { secret_env: TEST_STRIPE_SECRET, scheme: stripe }
                  - { path: /, respond: "site" }
            tracking:
              spool: { dir: "{{DIR}}/spool", sync_interval: 50ms }
            """, expect: ["http", "admin"],
            environment: ["TEST_GITHUB_SECRET": githubSecret, "TEST_STRIPE_SECRET": stripeSecret])
    }

    /// Hex HMAC-SHA256 of `message`, by openssl (an independent implementation of what senders compute).
    static func hmac(_ message: String, key: String) throws -> String {
        let result = try run(["sh", "-c", "printf '%s' \"$MESSAGE\" | openssl dgst -sha256 -hmac \"$KEY\" -r"],
                             environment: ["MESSAGE": message, "KEY": key])
        return String(result.stdout.prefix { $0 != " " })
    }

    func webhooks(_ vantage: VantageProcess, count: Int) throws -> [[String: Any]] {
        var found: [[String: Any]] = []
        try waitUntil(timeout: 10) {
            let export = try run([VantageProcess.binary, "events", "export", "--spool", vantage.directory.appendingPathComponent("spool").path])
            found = try export.stdout.split(separator: "\n").map { try json(String($0)) }.filter { $0["kind"] as? String == "webhook" }
            return found.count >= count
        }
        return found
    }

    @Test func signedSourcesAreCheckedAndEveryCallIsAnEvent() throws {
        let vantage = try Self.start()
        let push = #"{"ref":"refs/heads/main","commits":[{"id":"abc"}],"padding":"\#(String(repeating: "p", count: 3000))"}"#
        let signature = try Self.hmac(push, key: Self.githubSecret)
        let good = try curl([
            "-H", "Content-Type: application/json", "-H", "X-GitHub-Event: push", "-H", "X-GitHub-Delivery: d-1",
            "-H", "X-Hub-Signature-256: sha256=\(signature)", "--data-binary", push, vantage.url("/hooks/github/repo")])
        #expect(good.status == 200 && good.body == #"{"result":"queued"}"#, "\(good.body)")
        let wrong = try curl(["-H", "X-Hub-Signature-256: sha256=\(String(repeating: "0", count: 64))", "--data-binary", push, vantage.url("/hooks/github/repo")])
        #expect(wrong.status == 401 && wrong.body.contains("does not match"), "\(wrong.body)")
        let missing = try curl(["--data-binary", push, vantage.url("/hooks/github/repo")])
        #expect(missing.status == 401 && missing.body.contains("X-Hub-Signature-256 is missing"), "\(missing.body)")

        // Stripe: `t=<time>,v1=<HMAC of "t.body">`, within five minutes.
        let charge = #"{"type":"charge.succeeded","data":{"object":{"amount":1999}}}"#
        let now = Int(Date().timeIntervalSince1970)
        let stripe = try Self.hmac("\(now).\(charge)", key: Self.stripeSecret)
        let paid = try curl(["-H", "Stripe-Signature: t=\(now),v1=\(stripe)", "--data-binary", charge, vantage.url("/hooks/stripe")])
        #expect(paid.status == 200, "\(paid.body)")
        let stale = try Self.hmac("\(now - 3600).\(charge)", key: Self.stripeSecret)
        let replayed = try curl(["-H", "Stripe-Signature: t=\(now - 3600),v1=\(stale)", "--data-binary", charge, vantage.url("/hooks/stripe")])
        #expect(replayed.status == 401 && replayed.body.contains("five minutes"), "\(replayed.body)")

        // A source without a secret is taken as it comes, whatever the method.
        #expect(try curl(["-X", "PUT", "--data-binary", "plain text", vantage.url("/hooks/shop/order/created")]).status == 200)
        #expect(try curl([vantage.url("/hooks/ping")]).status == 200)
        // Alcolytics' layout: /webhook/<project>/<service>/<action>.
        let alco = try curl(["--data-binary", #"{"id":"ch_1"}"#, vantage.url("/webhook/7/stripe/charge")])
        #expect(alco.status == 200 && alco.body == #"{"result":"queued"}"#)

        let events = try webhooks(vantage, count: 5)
        #expect(events.count == 5, "\(events)")
        let github = try #require(events.first { $0["ename"] as? String == "github" })
        let props = github["props"] as? [String: Any] ?? [:]
        #expect(github["etyp"] as? String == "repo")
        #expect(props["method"] as? String == "POST" && props["verified"] as? String == "true")
        #expect(props["x_github_event"] as? String == "push" && props["x_github_delivery"] as? String == "d-1")
        #expect((props["body"] as? String)?.utf8.count == 1024 && props["truncated"] as? String == "body", "\(props)")
        #expect(github["client_ip"] as? String == "", "a service's address is not a visitor's")
        let shop = try #require(events.first { $0["ename"] as? String == "shop" })
        #expect(shop["etyp"] as? String == "order/created" && (shop["props"] as? [String: Any])?["method"] as? String == "PUT")
        let project = try #require(events.first { $0["oid"] as? String == "7" })
        #expect(project["ename"] as? String == "stripe" && project["etyp"] as? String == "charge")
        #expect(((project["props"] as? [String: Any])?["body"] as? String) == #"{"id":"ch_1"}"#)
    }

    @Test func aMissingSecretIsAConfigurationError() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            listen: { http: "127.0.0.1:0" }
            sites:
              - routes:
                  - { path: /hooks/, webhook: { sources: { github: { secret_env: NOT_SET_ANYWHERE, scheme: github } } } }
            """.write(to: file, atomically: true, encoding: .utf8)
        let result = try run([VantageProcess.binary, "validate", "--config", file.path])
        #expect(result.status != 0)
        #expect((result.stdout + result.stderr).contains("NOT_SET_ANYWHERE to hold the webhook secret"), "\(result.stderr)")
        #expect((result.stdout + result.stderr).contains("sites[0].routes[0].webhook.sources.github"), "\(result.stderr)")
    }
}
