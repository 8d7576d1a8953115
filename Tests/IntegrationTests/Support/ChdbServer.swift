import Foundation

/// A current ClickHouse: chdb (ClickHouse embedded, from PyPI) behind `Backends/chdb_server.py`, a small stand-in
/// for ClickHouse's HTTP interface, with its own data folder. Stopped (and its folder removed) when released.
final class ChdbServer: @unchecked Sendable {
    let directory: URL
    let endpoint: String
    private let process: Process

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("chdb-\(UUID().uuidString)")
        process = Process()
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: BackendProcess.python)
        process.arguments = [BackendProcess.backendsFolder.appendingPathComponent("chdb_server.py").path, directory.path]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let first = String(decoding: output.fileHandleForReading.availableDataOrLine(), as: UTF8.self)
        guard let port = Int(first.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("listening ".count)) else {
            stopPeer(process)
            throw Failure("chdb stand-in did not start: \(first)")
        }
        endpoint = "http://127.0.0.1:\(port)"
    }

    /// A query's answer (TSV), trimmed.
    func query(_ sql: String) throws -> String {
        try curl(["-s", "\(endpoint)/", "--data-binary", sql]).body.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        stopPeer(process)
        try? FileManager.default.removeItem(at: directory)
    }
}
