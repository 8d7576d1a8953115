import Foundation
import Testing

/// Configuration errors, reload on SIGHUP and graceful shutdown of the real binary.
@Suite(.serialized) struct LifecycleTests {
    /// The admin token the configurations below name (an unset `token_env` refuses to start).
    static let token = ["TEST_ADMIN_TOKEN": "s3cret"]

    static func config(body: String) -> String {
        """
        listen: { http: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0", token_env: TEST_ADMIN_TOKEN }
        access_log: off
        sites:
          - routes:
              - { path: /, respond: "\(body)" }
              - { path: /slow/, static: { root: "{{DIR}}", strip_prefix: true } }
        """
    }

    @Test func invalidConfigurationIsReportedBeforeListening() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bad.yaml").path
        try "listen: { http: \"127.0.0.1:0\" }\nsites:\n  - routes:\n      - { path: /, respnd: \"x\" }\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let validate = try run([VantageProcess.binary, "validate", "--config", path])
        #expect(validate.status == 2)
        #expect(validate.stderr.contains("bad.yaml:4:"))
        #expect(validate.stderr.contains("sites[0].routes[0].respnd"))
        #expect(validate.stderr.contains("did you mean \"respond\""))
        let serve = try run([VantageProcess.binary, "run", "--config", path])
        #expect(serve.status == 2)
        #expect(!serve.stderr.contains("listening"))
        let missing = try run([VantageProcess.binary, "validate", "--config", "/nonexistent.yaml"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("does not exist"))
        // An admin token variable that the environment lacks keeps the server from starting (and validate says so).
        let tokenless = directory.appendingPathComponent("tokenless.yaml").path
        try Self.config(body: "x").replacingOccurrences(of: "{{DIR}}", with: directory.path)
            .write(toFile: tokenless, atomically: true, encoding: .utf8)
        for command in ["run", "validate"] {
            let refused = try run([VantageProcess.binary, command, "--config", tokenless])
            #expect(refused.status == 2 && refused.stderr.contains("TEST_ADMIN_TOKEN to hold the admin token"), "\(refused.stderr)")
        }
        let version = try run([VantageProcess.binary, "version"])
        #expect(version.stdout.hasPrefix("vantage "))
    }

    @Test func sighupReloadsAndABrokenReloadKeepsTheOldConfiguration() throws {
        let vantage = try VantageProcess(
            config: Self.config(body: "first"), expect: ["http", "admin"], environment: Self.token)
        #expect(try curl([vantage.url("/")]).body == "first")
        try Self.config(body: "second").replacingOccurrences(of: "{{DIR}}", with: vantage.directory.path)
            .write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        vantage.signal(SIGHUP)
        try waitUntil { try curl([vantage.url("/")]).body == "second" }
        try "listen: [unclosed".write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        vantage.signal(SIGHUP)
        try waitUntil { vantage.log.contains("reload refused") }
        #expect(try curl([vantage.url("/")]).body == "second")
        #expect(vantage.stop() == 0)
        #expect(!vantage.log.contains("ERROR"))
    }

    @Test func noRequestFailsWhileReloading() throws {
        let vantage = try VantageProcess(
            config: Self.config(body: "steady"), expect: ["http", "admin"], environment: Self.token)
        // Two curl processes, each sending 400 requests over one keep-alive connection, while SIGHUP arrives
        // every 50 ms: every answer must be a 200.
        // `-o` applies to one URL at a time, so each URL gets its own.
        let urls = (0..<400).flatMap { _ in ["-o", "/dev/null", vantage.url("/")] }
        let clients = (0..<2).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-w", "%{http_code}\n"] + urls
            let pipe = Pipe()
            process.standardOutput = pipe
            return (process, pipe)
        }
        for (process, _) in clients { try process.run() }
        for _ in 0..<20 {
            vantage.signal(SIGHUP)
            Thread.sleep(forTimeInterval: 0.05)
        }
        var codes: [Substring] = []
        for (process, pipe) in clients {
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            codes += output.split(separator: "\n")
        }
        #expect(codes.count == 800)
        #expect(codes.allSatisfy { $0 == "200" })
        // Signals that arrive while a reload runs may coalesce; several reloads must have happened.
        try waitUntil { vantage.log.components(separatedBy: "configuration reloaded").count > 3 }
    }

    @Test func listensOnIPv6() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "[::1]:0" }
            admin: { listen: off }
            access_log: off
            sites: [{ routes: [{ respond: "over IPv6" }] }]
            """)
        let answer = try curl(["-g", "http://[::1]:\(vantage.ports["http"]!)/"])
        #expect(answer.body == "over IPv6")
    }

    @Test func adminNeedsTheTokenAndReloadsOverHTTP() throws {
        let vantage = try VantageProcess(
            config: Self.config(body: "one"), expect: ["http", "admin"], environment: ["TEST_ADMIN_TOKEN": "s3cret"])
        #expect(try curl([vantage.url("/health", kind: "admin")]).status == 200)
        #expect(try curl([vantage.url("/metrics", kind: "admin")]).status == 401)
        #expect(try curl(["-H", "Authorization: Bearer wrong", vantage.url("/metrics", kind: "admin")]).status == 401)
        let metrics = try curl(["-H", "Authorization: Bearer s3cret", vantage.url("/metrics", kind: "admin")])
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("vantage_open_connections"))
        try Self.config(body: "two").replacingOccurrences(of: "{{DIR}}", with: vantage.directory.path)
            .write(toFile: vantage.configPath, atomically: true, encoding: .utf8)
        let reload = try curl(["-X", "POST", "-H", "Authorization: Bearer s3cret", vantage.url("/reload", kind: "admin")])
        #expect(reload.status == 200)
        #expect(try curl([vantage.url("/")]).body == "two")
    }

    @Test func sigtermLetsARequestInFlightFinish() throws {
        let vantage = try VantageProcess(
            config: Self.config(body: "bye"), expect: ["http", "admin"], environment: Self.token) { directory in
            try Data(repeating: 1, count: 40 << 20).write(to: directory.appendingPathComponent("big.bin"))
        }
        // A rate-limited download is still running when SIGTERM arrives; it must complete.
        let download = Process()
        download.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        download.arguments = ["-s", "--limit-rate", "20M", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              vantage.url("/slow/big.bin")]
        let output = Pipe()
        download.standardOutput = output
        try download.run()
        Thread.sleep(forTimeInterval: 0.5)
        #expect(vantage.stop() == 0)
        download.waitUntilExit()
        let result = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(result == "200 \(40 << 20)")
    }
}

func waitUntil(timeout: TimeInterval = 10, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if (try? condition()) == true { return }
        Thread.sleep(forTimeInterval: 0.1)
    }
    throw Failure("condition not met in \(timeout)s")
}
