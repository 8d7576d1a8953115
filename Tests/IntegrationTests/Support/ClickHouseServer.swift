import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real ClickHouse server (Debian's `clickhouse-server`) on a free loopback HTTP port, with its own data folder;
/// it can be stopped and started again on the same port and data.
final class ClickHouseServer: @unchecked Sendable {
    let directory: URL
    let port: Int
    private var process: Process?

    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/clickhouse-server") }

    /// `password` protects the `default` user (HTTP basic authentication).
    init(password: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("clickhouse-\(UUID().uuidString)")
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        port = try freePort()
        self.password = password
        let root = directory.path
        // No tcp_port: only the HTTP interface listens, so parallel servers cannot collide on 9000.
        try """
            <?xml version="1.0"?>
            <yandex>
                <logger><level>warning</level><log>\(root)/log/server.log</log><errorlog>\(root)/log/error.log</errorlog><console>0</console></logger>
                <listen_host>127.0.0.1</listen_host>
                <http_port>\(port)</http_port>
                <path>\(root)/data/</path>
                <tmp_path>\(root)/tmp/</tmp_path>
                <user_files_path>\(root)/user_files/</user_files_path>
                <format_schema_path>\(root)/format_schemas/</format_schema_path>
                <users_config>\(root)/users.xml</users_config>
                <default_profile>default</default_profile>
                <default_database>default</default_database>
                <timezone>UTC</timezone>
                <mark_cache_size>268435456</mark_cache_size>
                <max_concurrent_queries>100</max_concurrent_queries>
            </yandex>
            """.write(toFile: root + "/config.xml", atomically: true, encoding: .utf8)
        try """
            <?xml version="1.0"?>
            <yandex>
                <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
                <users><default><password>\(password)</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
                    <profile>default</profile><quota>default</quota></default></users>
                <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
                    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
            </yandex>
            """.write(toFile: root + "/users.xml", atomically: true, encoding: .utf8)
        try start()
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Starts the server and waits for `/ping`.
    ///
    /// Through a small Python parent, for two reasons: the server closes every inherited descriptor at start, which
    /// Foundation's `Process` takes for the child's exit (and then blocks in `wait4` on it); and the test runner's
    /// threads block SIGTERM and SIGCHLD, a mask children inherit, so the server would never see its stop signal.
    /// The parent clears the mask, starts the server, writes its pid and waits for it.
    func start() throws {
        let process = Process()
        let pidFile = directory.path + "/server.pid"
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [
            "-c",
            """
            import signal, subprocess, sys
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            server = subprocess.Popen(["/usr/sbin/clickhouse-server", "--config-file=" + sys.argv[1] + "/config.xml"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            open(sys.argv[2], "w").write(str(server.pid))
            sys.exit(server.wait())
            """,
            directory.path, pidFile,
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if (try? run(["curl", "-s", "--max-time", "1", "\(endpoint)/ping"]))?.stdout == "Ok.\n" {
                serverPID = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap {
                    Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                return
            }
            if !process.isRunning { throw Failure("clickhouse-server exited:\n\(errorLog)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Failure("clickhouse-server did not answer /ping in time:\n\(errorLog)")
    }

    private var serverPID: Int32?

    /// SIGTERM, then waits for the exit.
    func stop() {
        guard let process, process.isRunning else { return }
        if let serverPID {
            kill(serverPID, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(serverPID, SIGKILL) }
        }
        process.waitUntilExit()
        self.process = nil
        serverPID = nil
    }

    var errorLog: String { (try? String(contentsOfFile: directory.path + "/log/error.log", encoding: .utf8)) ?? "" }

    /// Credentials for queries the test itself makes.
    var password = ""

    /// Runs a query and returns its text answer; throws on an error answer.
    @discardableResult
    func query(_ sql: String) throws -> String {
        let result = try run([
            "curl", "-sS", "--fail-with-body", "--max-time", "60", "-u", "default:\(password)", "\(endpoint)/",
            "--data-binary", sql,
        ])
        guard result.status == 0 else { throw Failure("query failed: \(sql)\n\(result.stdout)\(result.stderr)") }
        return result.stdout
    }

    /// A single number answer.
    func count(_ sql: String) throws -> Int {
        let text = try query(sql).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let value = Int(text) else { throw Failure("expected a number from \(sql), got \(text)") }
        return value
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A TCP port nothing listens on right now, for a peer (or a config) that must be told its port before it binds.
/// Chosen below the kernel's ephemeral range (`ip_local_port_range`): outgoing connections and `:0` listeners take
/// their ports from that range, so one of them could take a port from it between this check and the bind (CI saw
/// "port already in use" that way).
func freePort() throws -> Int {
    let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
    let candidates = 10_000..<max(10_001, ephemeralStart)
    for _ in 0..<100 {
        let port = Int.random(in: candidates)
        if canBind(port: port) { return port }
    }
    throw Failure("cannot find a free port below \(ephemeralStart)")
}

private func canBind(port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
