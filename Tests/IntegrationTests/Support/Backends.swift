import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real backend process for the proxy tests: Node's http module or an ASGI app under uvicorn.
final class BackendProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    /// `127.0.0.1:port` or `unix:/path`.
    private(set) var address = ""
    private(set) var port = 0
    private let outputPath: String

    static var backendsFolder: URL {
        VantageProcess.packageRoot.appendingPathComponent("Tests/IntegrationTests/Backends")
    }

    /// The Python with uvicorn and websockets installed (`scripts/test.sh` makes `.build/test-venv`).
    static var python: String {
        ProcessInfo.processInfo.environment["VANTAGE_TEST_PYTHON"]
            ?? VantageProcess.packageRoot.appendingPathComponent(".build/test-venv/bin/python").path
    }

    private init(name: String) {
        self.name = name
        outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("backend-\(name)-\(UUID().uuidString).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    }

    /// `node node-backend.js NAME` on a free port.
    /// `environment` may hold TLS_CERT/TLS_KEY (serve HTTPS) and TLS_CLIENT_CA (require client certificates).
    static func node(_ name: String, environment: [String: String] = [:]) throws -> BackendProcess {
        let backend = BackendProcess(name: name)
        try backend.launch(
            "/usr/bin/env", ["node", backendsFolder.appendingPathComponent("node-backend.js").path, name],
            environment: environment)
        try backend.waitUntilReady(seconds: 15, what: "node backend") {
            guard let line = backend.output.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) else { return nil }
            return Int(line.dropFirst("listening ".count)).map { ($0, "127.0.0.1:\($0)") }
        }
        return backend
    }

    /// `uvicorn asgi_app:app` over HTTPS on 127.0.0.1 and a free port.
    static func uvicornTLS(_ name: String, certificate: String, key: String) throws -> BackendProcess {
        let backend = BackendProcess(name: name)
        let port = try freePort()
        try backend.launch(python, [
            "-m", "uvicorn", "asgi_app:app", "--app-dir", backendsFolder.path, "--host", "127.0.0.1", "--port", "\(port)",
            "--ssl-certfile", certificate, "--ssl-keyfile", key, "--log-level", "warning",
        ], environment: ["BACKEND_NAME": name])
        try backend.waitUntilReady(seconds: 20, what: "uvicorn over TLS") {
            guard let socket = try? openConnection(port: port) else { return nil }
            close(socket)
            return (port, "127.0.0.1:\(port)")
        }
        return backend
    }

    /// `uvicorn asgi_app:app` on a unix socket.
    static func uvicorn(_ name: String, socketPath: String) throws -> BackendProcess {
        let backend = BackendProcess(name: name)
        unlink(socketPath)
        try backend.launch(python, [
            "-m", "uvicorn", "asgi_app:app", "--app-dir", backendsFolder.path, "--uds", socketPath, "--log-level", "warning",
        ], environment: ["BACKEND_NAME": name])
        try backend.waitUntilReady(seconds: 20, what: "uvicorn (is \(python) set up? scripts/test.sh makes it)") {
            FileManager.default.fileExists(atPath: socketPath) ? (0, "unix:\(socketPath)") : nil
        }
        return backend
    }

    /// Polls `probe` until it names the backend's port and address; fails with the backend's output when it exits
    /// or the time is up.
    private func waitUntilReady(seconds: TimeInterval, what: String, _ probe: () -> (port: Int, address: String)?) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let (port, address) = probe() {
                self.port = port
                self.address = address
                return
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Failure("\(what) did not start:\n\(output)")
    }

    private func launch(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        try launchLogged(process, executable, arguments, output: outputPath, environment: environment)
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Kills the backend at once (SIGKILL), as a crash would.
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: outputPath)
    }
}

/// Starts `process` running `executable` with stdout and stderr appended to the file at `output` (created if
/// missing), in this environment plus `environment`.
func launchLogged(
    _ process: Process, _ executable: String, _ arguments: [String], output: String, environment: [String: String] = [:]
) throws {
    if !FileManager.default.fileExists(atPath: output) { _ = FileManager.default.createFile(atPath: output, contents: nil) }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
    handle.seekToEndOfFile()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = handle
    process.standardError = handle
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    try process.run()
}

/// Stops a test peer: SIGTERM, and SIGKILL if it is still there after `grace` seconds; returns once it has exited.
func stopPeer(_ process: Process, grace: TimeInterval = 3) {
    guard process.isRunning else { return }
    process.terminate()
    let deadline = Date().addingTimeInterval(grace)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}

/// Peak resident memory of a process in KiB (`VmHWM`).
func peakResidentKiB(of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

/// How many file descriptors a process has open (`/proc/PID/fd`).
func openDescriptors(of pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
}

/// A value of a Prometheus series in the metrics text, e.g. `vantage_upstream_healthy{upstream="127.0.0.1:1"}`.
func metric(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// The JSON object of a response body.
func json(_ body: String) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
        throw Failure("not a JSON object: \(body.prefix(300))")
    }
    return object
}
