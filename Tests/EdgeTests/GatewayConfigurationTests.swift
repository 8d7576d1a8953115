import Config
import Foundation
import Testing

@testable import Edge

func parseConfiguration(_ yaml: String, environment: [String: String] = [:]) throws -> GatewayConfiguration {
    try GatewayConfiguration(from: ConfigDocument(yaml: yaml, file: "vantage.yaml", environment: environment).root)
}

@Suite struct GatewayConfigurationTests {
    let tmp = FileManager.default.temporaryDirectory.path

    @Test func minimalConfiguration() throws {
        let configuration = try parseConfiguration("""
            listen: { http: ":8080" }
            sites:
              - routes:
                  - { path: /, respond: "hi" }
            """)
        #expect(configuration.httpListeners.map(\.description) == ["0.0.0.0:8080"])
        #expect(configuration.sites[0].isDefault)
        #expect(configuration.admin.listen?.description == "127.0.0.1:9901")
    }

    @Test func unknownRouteKeyIsLocatedAndCorrected() throws {
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites:
                  - hosts: [example.com]
                    routes:
                      - path: /
                        statc: { root: /tmp }
                """)
        }
        #expect(error?.line == 6)
        #expect(error?.keyPath == "sites[0].routes[0].statc")
        #expect(error?.message.contains("did you mean \"static\"") == true)
    }

    @Test func everyRouteNeedsExactlyOneHandler() {
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites:
                  - routes:
                      - { path: /, respond: "a", redirect: "https://example.com/" }
                """)
        }
        #expect(error?.message == "expected one handler, found respond and redirect")
    }

    @Test func webhookRoutesNeedTracking() {
        // Without tracking a webhook's deliveries have nowhere to go: refused before anything listens, not left
        // unanswered at run time.
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                tracking: { enabled: false }
                sites:
                  - routes:
                      - { path: /hooks/, webhook: true }
                """)
        }
        #expect(error?.message.contains("the webhook route /hooks/ needs tracking") == true)
        #expect(error?.line == 4)
    }

    @Test func listenAddressesAreChecked() {
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: "localhost:http" }
                sites: [{ routes: [{ respond: "x" }] }]
                """)
        }
        #expect(error?.keyPath == "listen.http")
        #expect(error?.line == 1)
    }

    @Test func staticRootMustExist() {
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites: [{ routes: [{ static: { root: /does/not/exist } }] }]
                """)
        }
        #expect(error?.keyPath == "sites[0].routes[0].static.root")
    }

    @Test func userAgentListsMustBeReadable() {
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites: [{ routes: [{ respond: "hi" }] }]
                tracking:
                  user_agents: { regexes: /nowhere/regexes.yaml }
                """)
        }
        #expect(error?.keyPath == "tracking.user_agents.regexes")
        #expect(error?.line == 4)
        #expect(error.map { "\($0)" }?.contains("apt install uap-core") == true)
    }

    @Test func httpsNeedsCertificates() {
        #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { https: ":8443" }
                sites: [{ routes: [{ respond: "x" }] }]
                """)
        }
    }

    @Test func duplicateHostsAndDefaults() {
        #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites:
                  - { hosts: [a.example], routes: [{ respond: "1" }] }
                  - { hosts: [A.example], routes: [{ respond: "2" }] }
                """)
        }
        #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites:
                  - { routes: [{ respond: "1" }] }
                  - { hosts: "*", routes: [{ respond: "2" }] }
                """)
        }
    }

    @Test func redirectTargetsMustBeSafe() {
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites: [{ routes: [{ redirect: "//evil.example/" }] }]
                """)
        }
        #expect(error?.message.contains("single /") == true)
    }

    @Test func secretsComeFromTheEnvironment() throws {
        let configuration = try parseConfiguration("""
            listen: { http: ":8080" }
            admin: { listen: "127.0.0.1:0", token_env: ADMIN_TOKEN }
            sites: [{ routes: [{ respond: "${GREETING:-hello}" }] }]
            """, environment: ["ADMIN_TOKEN": "t0ken"])
        #expect(configuration.admin.token == "t0ken")
        guard case .respond(let respond) = configuration.sites[0].routes[0].handler else { return }
        #expect(respond.body == "hello")
        // A token variable that is unset or empty refuses the configuration instead of leaving the admin API open.
        for environment in [[:], ["ADMIN_TOKEN": ""]] {
            let configuration = try parseConfiguration("""
                listen: { http: ":8080" }
                admin: { listen: "127.0.0.1:0", token_env: ADMIN_TOKEN }
                sites: [{ routes: [{ respond: "1" }] }]
                """, environment: environment)
            let error = #expect(throws: ConfigError.self) { try configuration.checkServingSecrets() }
            #expect(error?.message.contains("ADMIN_TOKEN to hold the admin token; it is unset or empty") == true)
        }
    }

    @Test func hstsForms() throws {
        let configuration = try parseConfiguration("""
            listen: { http: ":8080" }
            sites:
              - { hosts: a.example, hsts: true, routes: [{ respond: "1" }] }
              - { hosts: b.example, hsts: { max_age: 1d, include_subdomains: true }, routes: [{ respond: "1" }] }
            """)
        #expect(configuration.sites[0].hsts == "max-age=31536000")
        #expect(configuration.sites[1].hsts == "max-age=86400; includeSubDomains")
        let preload = try parseConfiguration("""
            listen: { http: ":8080" }
            sites: [{ hsts: { max_age: 730d, include_subdomains: true, preload: true }, routes: [{ respond: "1" }] }]
            """)
        #expect(preload.sites[0].hsts == "max-age=63072000; includeSubDomains; preload")
        let error = #expect(throws: ConfigError.self) {
            try parseConfiguration("""
                listen: { http: ":8080" }
                sites: [{ hsts: { max_age: 1d, preload: true }, routes: [{ respond: "1" }] }]
                """)
        }
        #expect(error?.message.contains("preload needs max_age of at least 365d") == true)
    }

    @Test func shippedConfigurationIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let previous = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(root.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let configuration = try GatewayConfiguration.load(path: "conf/vantage.yaml", environment: [:])
        #expect(configuration.httpListeners.first?.port == 8080)
    }
}

@Suite struct CIDRTests {
    @Test func matching() throws {
        let network = try #require(CIDR("10.0.0.0/8"))
        #expect(network.contains(parseIPAddress("10.1.2.3")!))
        #expect(!network.contains(parseIPAddress("11.1.2.3")!))
        #expect(network.contains(parseIPAddress("::ffff:10.9.9.9")!))
        let v6 = try #require(CIDR("2001:db8::/32"))
        #expect(v6.contains(parseIPAddress("2001:db8:1::1")!))
        #expect(!v6.contains(parseIPAddress("2001:db9::1")!))
        #expect(CIDR("127.0.0.1")?.contains(parseIPAddress("127.0.0.1")!) == true)
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("nonsense") == nil)
        // Prefixes that end inside a byte, mapped addresses that are not IPv4-mapped, the whole space.
        let odd = try #require(CIDR("192.168.4.0/22"))
        #expect(odd.contains(parseIPAddress("192.168.7.255")!) && !odd.contains(parseIPAddress("192.168.8.0")!))
        #expect(!network.contains(parseIPAddress("::1:a09:909")!), "not ::ffff:")
        #expect(CIDR("0.0.0.0/0")?.contains(parseIPAddress("203.0.113.9")!) == true)
        #expect(CIDR("::/0")?.contains(parseIPAddress("10.1.2.3")!) == false, "families do not mix")
        #expect(CIDR.any([odd, v6], contains: "2001:db8::7") && CIDR.any([odd, v6], contains: "192.168.5.1"))
        #expect(!CIDR.any([odd, v6], contains: "192.168.9.1") && !CIDR.any([odd], contains: "not an address"))
        #expect(!CIDR.any([], contains: "192.168.5.1"))
    }
}
