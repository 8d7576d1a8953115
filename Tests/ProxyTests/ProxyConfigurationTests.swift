import Config
import Testing

@testable import Proxy

@Suite struct ProxyConfigurationTests {
    func parse(_ yaml: String) throws -> ProxyConfiguration {
        let document = try ConfigDocument(yaml: "proxy: " + yaml, file: "test.yaml")
        return try ProxyConfiguration(from: try document.root.mapping(keys: ["proxy"]).required("proxy", expected: "proxy"))
    }

    func error(_ yaml: String) -> String {
        do {
            _ = try parse(yaml)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func shortFormsAndDefaults() throws {
        let single = try parse("\"127.0.0.1:3000\"")
        #expect(single.servers.map(\.address.description) == ["127.0.0.1:3000"])
        #expect(single.balance == .roundRobin)
        #expect(single.retries.tries == 3)
        let list = try parse("[\"http://127.0.0.1:3000/\", \"[::1]:3001\", \"unix:/run/app.sock\"]")
        #expect(list.servers.map(\.address.description) == ["127.0.0.1:3000", "[::1]:3001", "unix:/run/app.sock"])
    }

    @Test func httpsUpstreams() throws {
        let configuration = try parse("[\"https://localhost\", \"https://127.0.0.1:8443/\", \"127.0.0.1:3000\"]")
        #expect(configuration.servers.map(\.address.description)
            == ["https://localhost:443", "https://127.0.0.1:8443", "127.0.0.1:3000"])
        #expect(configuration.servers.map(\.address.authority) == ["localhost", "127.0.0.1:8443", "127.0.0.1:3000"])
        #expect(configuration.servers.map { $0.tls != nil } == [true, true, false])
        // SNI is the host name, never an address; server_name replaces both.
        let name = try #require(configuration.servers[0].tls).serverName(for: configuration.servers[0].address)
        let address = try #require(configuration.servers[1].tls).serverName(for: configuration.servers[1].address)
        #expect(name == "localhost" && address == nil)
        let named = try parse("{ upstreams: [\"https://127.0.0.1\"], tls: { server_name: api.internal, verify: false } }")
        let tls = try #require(named.servers[0].tls)
        #expect(tls.serverName(for: named.servers[0].address) == "api.internal" && !tls.verify)
        // Same settings, same target key: a reload keeps the pool; other settings make another target.
        #expect(named.servers[0].tls == (try parse("{ upstreams: [\"https://127.0.0.1\"], tls: { server_name: api.internal, verify: false } }")).servers[0].tls)
        #expect(named.servers[0].tls != configuration.servers[1].tls)
    }

    @Test func fullForm() throws {
        let configuration = try parse("""
            { upstreams: [{ address: "127.0.0.1:3000", weight: 3 }, "localhost:3001"], balance: header,
              hash_header: X-User, rewrite_prefix: /v2/, host: upstream,
              timeouts: { connect: 1s, response_header: 30s }, pool: { max_connections: 10, idle_timeout: 2s },
              retries: 0, passive_health: { max_fails: 5, cooldown: 1m },
              health_check: { path: /healthz, interval: 2s, expect_status: 2xx } }
            """)
        #expect(configuration.servers.map(\.weight) == [3, 1])
        #expect(configuration.balance == .headerHash("x-user"))
        #expect(configuration.rewritePrefix == "/v2/")
        #expect(configuration.host == .upstream)
        #expect(configuration.timeouts.connect == .seconds(1))
        #expect(configuration.pool.maxConnections == 10)
        #expect(configuration.retries.tries == 1)
        #expect(configuration.passiveHealth.maxFails == 5)
        #expect(configuration.healthCheck?.expectStatus == 200...299)
    }

    @Test func mistakesAreNamedWithTheirPlace() {
        #expect(error("{ upstreams: [] }").contains("expected at least one upstream"))
        #expect(error("{ upstreams: [\"127.0.0.1:99999\"] }").contains("port from 1 to 65535"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\"], tls: { verify: false } }").contains("https:// upstreams"))
        #expect(error("{ upstreams: [\"https://127.0.0.1\"], tls: { server_name: \"a/b\" } }").contains("host name"))
        #expect(error("{ upstreams: [\"https://127.0.0.1\"], tls: { client_key: k.pem } }").contains("client_certificate"))
        #expect(error("{ upstreams: [\"127.0.0.1:1/api\"] }").contains("without a path"))
        #expect(error("{ upstreams: [\"a.invalid.:80\"] }").contains("cannot resolve"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\", \"127.0.0.1:1\"] }").contains("listed twice"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\"], balance: random }").contains("round_robin"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\"], hash_header: X }").contains("balance: header"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\"], timeouts: { connect: 0s } }").contains("above zero"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\"], health_check: { expect_status: 2x } }").contains("2xx"))
        #expect(error("{ upstreams: [\"127.0.0.1:1\"], strip_prefix: true, rewrite_prefix: /a/ }").contains("not both"))
        #expect(error("{ upstream: [\"127.0.0.1:1\"] }").contains("test.yaml:1"))
    }

    @Test func prefixRewriting() throws {
        let strip = ProxyRoute(configuration: try parse("{ upstreams: [\"127.0.0.1:1\"], strip_prefix: true }"),
                               pathPrefix: "/api/", targets: [])
        #expect(strip.upstreamTarget(for: "/api/users?x=1") == "/users?x=1")
        #expect(strip.upstreamTarget(for: "/api/") == "/")
        let rewrite = ProxyRoute(configuration: try parse("{ upstreams: [\"127.0.0.1:1\"], rewrite_prefix: /v2/ }"),
                                 pathPrefix: "/api/", targets: [])
        #expect(rewrite.upstreamTarget(for: "/api/users") == "/v2/users")
        let keep = ProxyRoute(configuration: try parse("[\"127.0.0.1:1\"]"), pathPrefix: "/api/", targets: [])
        #expect(keep.upstreamTarget(for: "/api/users") == "/api/users")
    }
}
