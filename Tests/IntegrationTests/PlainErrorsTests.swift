import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a person reads when something is wrong: every configuration problem at once, a port in use and a refused
/// upstream in plain words, and the version with its commit.
@Suite(.serialized) struct PlainErrorsTests {
    @Test func validateReportsEveryProblemOfTheFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-problems-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try """
            listen: { http: "127.0.0.1:0" }
            acces_log: stdout
            sites:
              - hosts: [a.example]
                routes:
                  - { path: /, respond: ok }
                  - { path: nope, respond: ok }
                  - { path: /x, static: { root: /does/not/exist } }
              - hosts: [b.example]
                headers: { set: { Content-Length: "1" } }
                routes:
                  - { path: /, proxy: { upstreams: ["127.0.0.1:3000"], retries: many } }
            """.write(to: file, atomically: true, encoding: .utf8)
        let result = try run([VantageProcess.binary, "validate", "--config", file.path])
        #expect(result.status == 2)
        let text = result.stderr
        for expected in [
            "acces_log", "did you mean \"access_log\"", "sites[0].routes[1].path", "sites[0].routes[2].static.root",
            "sites[1].headers.set.Content-Length", "sites[1].routes[0].proxy.retries",
        ] {
            #expect(text.contains(expected), "\(expected) in:\n\(text)")
        }
        #expect(text.contains("(5 problems)") || text.contains("(6 problems)"), "\(text)")
    }

    @Test func aPortInUseIsSaidSo() throws {
        // Hold a port, then ask Vantage for it.
        let (holder, port) = holdPort()
        defer { close(holder) }
        let result = try runVantage { file in
            """
            listen: { http: "127.0.0.1:\(port)" }
            admin: { listen: "127.0.0.1:0" }
            tracking: { spool: { dir: "\(file).spool" } }
            sites: [{ routes: [{ path: /, respond: ok }] }]
            """
        }
        #expect(result.status == 1)
        #expect(result.stderr.contains("port \(port) is already in use by another process"), "\(result.stderr)")
        #expect(!result.stderr.contains("bind(descriptor"), "\(result.stderr)")
    }

    /// The admin listener is bound after the HTTP one: a taken admin port must end the start before anything is
    /// announced as listening (a script or test waiting for "listening on" would otherwise take a dying process for
    /// a ready one).
    @Test func aTakenAdminPortEndsTheStartBeforeAnyListenerIsAnnounced() throws {
        let (holder, port) = holdPort()
        defer { close(holder) }
        let result = try runVantage { _ in
            """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:\(port)" }
            tracking: { enabled: false }
            sites: [{ routes: [{ path: /, respond: ok }] }]
            """
        }
        #expect(result.status == 1)
        #expect(result.stderr.contains("port \(port) is already in use by another process"), "\(result.stderr)")
        #expect(!(result.stdout + result.stderr).contains("listening on"), "\(result.stdout)\n\(result.stderr)")
    }

    /// `vantage run` on a configuration written to a temporary file (`config` is given the file's path), removed
    /// afterwards with the spool a configuration may put beside it.
    private func runVantage(_ config: (String) -> String) throws -> CommandResult {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-\(UUID().uuidString).yaml")
        defer {
            try? FileManager.default.removeItem(at: file)
            try? FileManager.default.removeItem(atPath: file.path + ".spool")
        }
        try config(file.path).write(to: file, atomically: true, encoding: .utf8)
        return try run([VantageProcess.binary, "run", "--config", file.path])
    }

    /// A listening socket on an ephemeral port of 127.0.0.1, and the port.
    private func holdPort() -> (socket: Int32, port: Int) {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) } }
        _ = listen(holder, 1)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) } }
        return (holder, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aRefusedUpstreamIsNamed() throws {
        let closed = try freePort()
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            sites: [{ routes: [{ path: /, proxy: { upstreams: ["127.0.0.1:\(closed)"], retries: 0 } }] }]
            """)
        #expect(try curl([vantage.url("/")]).status == 502)
        #expect(vantage.stop() == 0)
        #expect(vantage.log.contains("connection refused by 127.0.0.1:\(closed)"), "\(vantage.log.suffix(800))")
        #expect(!vantage.log.contains("errno"), "\(vantage.log.suffix(800))")
    }

    @Test func theVersionNamesItsCommit() throws {
        let flag = try run([VantageProcess.binary, "--version"])
        #expect(flag.status == 0)
        #expect(flag.stdout.firstMatch(of: /^vantage \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}(-dirty)?\)/) != nil, "\(flag.stdout)")
        #expect(try run([VantageProcess.binary, "version"]).stdout == flag.stdout)
    }
}
