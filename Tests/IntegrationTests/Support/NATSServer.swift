import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real NATS server (Debian's `nats-server`) with JetStream on a free loopback port and its own store; it can be
/// killed and started again on the same port and store. Streams are made and read with `nats_tool.py` (nats-py).
final class NATSServer: @unchecked Sendable {
    let directory: URL
    let port: Int
    private var process: Process?

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try freePort()
        try start()
    }

    var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts the server and waits for its port.
    func start() throws {
        let process = Process()
        try launchLogged(process, "/usr/sbin/nats-server", [
            "-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", directory.appendingPathComponent("store").path,
        ], output: directory.appendingPathComponent("server.log").path)
        self.process = process
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let socket = try? openConnection(port: port) {
                close(socket)
                return
            }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Failure("nats-server did not start:\n\((try? String(contentsOf: directory.appendingPathComponent("server.log"), encoding: .utf8)) ?? "")")
    }

    /// Kills the server (SIGKILL: the test runner's threads block SIGTERM, which children inherit).
    func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Runs `nats_tool.py COMMAND ARGUMENTS...` against this server; returns its output.
    func tool(_ arguments: [String]) throws -> String {
        let result = try run([BackendProcess.python, BackendProcess.backendsFolder.appendingPathComponent("nats_tool.py").path, url] + arguments)
        guard result.status == 0 else { throw Failure("nats_tool \(arguments) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}
