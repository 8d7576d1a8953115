import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `vantage` binary, started on 127.0.0.1 ephemeral ports with a config written for the test.
final class VantageProcess: @unchecked Sendable {
    let directory: URL
    let configPath: String
    let process = Process()
    let outputPath: String
    private(set) var ports: [String: Int] = [:]
    /// Set for restarts and by tests that restart in the same folder: the folder outlives this process.
    var keepsDirectory: Bool

    /// The binary SwiftPM built next to the test bundle.
    static var binary: String {
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [testBundle.appendingPathComponent("vantage").path]
        if let override = ProcessInfo.processInfo.environment["VANTAGE_BINARY"] { candidates.insert(override, at: 0) }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/vantage").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Writes `yaml` (with `{{DIR}}` replaced by the test folder) and starts the binary; waits for the `expect`
    /// listeners (`http`, `https`, `admin`) to be bound.
    /// `reusing` starts in an earlier process's folder (a restart); that folder is then left for the caller.
    /// `arguments` replaces `run --config <the written file>` (a quick start; `{{DIR}}` is the test folder there too).
    init(config yaml: String, expect kinds: [String] = ["http"], environment: [String: String] = [:],
         reusing earlier: URL? = nil, arguments: [String]? = nil, prepare: (URL) throws -> Void = { _ in }) throws
    {
        directory = earlier ?? FileManager.default.temporaryDirectory.appendingPathComponent("vantage-it-\(UUID().uuidString)")
        keepsDirectory = earlier != nil
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try prepare(directory)
        configPath = directory.appendingPathComponent("vantage.yaml").path
        try yaml.replacingOccurrences(of: "{{DIR}}", with: directory.path).write(
            toFile: configPath, atomically: true, encoding: .utf8)
        outputPath = directory.appendingPathComponent("vantage-\(UUID().uuidString.prefix(8)).out").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments?.map { $0.replacingOccurrences(of: "{{DIR}}", with: directory.path) }
            ?? ["run", "--config", configPath]
        process.currentDirectoryURL = directory
        process.standardOutput = output
        process.standardError = output
        // SWIFTNIO_STRICT turns NIO misuse (scheduling on a stopped loop, say) from a log line into a crash.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFTNIO_STRICT": "1"]) { $1 }
            .merging(environment) { $1 }
        try process.run()
        try waitForListeners(kinds)
    }

    private func waitForListeners(_ kinds: [String]) throws {
        let deadline = Date().addingTimeInterval(30)
        let pattern = try NSRegularExpression(pattern: "listening on (http|https|admin)://(?:\\[[^\\]]*\\]|[0-9.]+):(\\d+)")
        while Date() < deadline {
            let text = log
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let kind = String(text[Range(match.range(at: 1), in: text)!])
                ports[kind] = Int(text[Range(match.range(at: 2), in: text)!])
            }
            if kinds.allSatisfy({ ports[$0] != nil }) { return }
            if !process.isRunning { throw Failure("vantage exited early:\n\(text)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Failure("vantage did not start listening in time:\n\(log)")
    }

    /// Everything the process printed so far.
    var log: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    func url(_ path: String, kind: String = "http") -> String {
        let scheme = kind == "https" ? "https" : "http"
        return "\(scheme)://127.0.0.1:\(ports[kind]!)\(path)"
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Sends SIGTERM and waits for the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            signal(SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { signal(SIGKILL) }
        }
        process.waitUntilExit()
        // A crash's backtrace is in the process's output: show it where the failing test is reported (a SIGKILL is
        // a test's own doing).
        if process.terminationReason == .uncaughtSignal && process.terminationStatus != SIGKILL {
            print("vantage ended by signal \(process.terminationStatus); its output ends:\n\(log.suffix(6000))")
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { stop() }
        if keepsDirectory {
            Self.removeWhenTheRunEnds(directory)
        } else {
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Folders that outlived their process (a restart in the same folder): removed when the test run ends, so
    /// runs do not leave `vantage-it-*` folders behind.
    private static let foldersLeft = Mutex<[String]>([])
    private static let cleanupAtExit: Void = {
        atexit { for path in VantageProcess.foldersLeft.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) } }
    }()

    private static func removeWhenTheRunEnds(_ folder: URL) {
        _ = cleanupAtExit
        foldersLeft.withLock { $0.append(folder.path) }
    }
}

extension VantageProcess {
    /// The smallest config with tracking: one route answering "ok", no access log or admin listener, events in the
    /// test folder's spool; `tracking` adds keys to the tracking section (`api: true`), `top` adds top-level lines.
    static func respondingConfig(tracking: String = "", top: String = "") -> String {
        """
        listen: { http: "127.0.0.1:0" }
        \(top)
        sites:
          - routes:
              - { path: /, respond: "ok" }
        access_log: off
        admin: { listen: off }
        tracking:
          spool: { dir: "{{DIR}}/spool" }
          \(tracking)
        """
    }

    /// Waits until the spool holds nothing unshipped (three readings of `vantage_events_queued` in a row, so a
    /// segment between a loop and the spool's thread cannot slip through). `bearer`: the admin token, if any.
    func waitUntilShipped(bearer: String? = nil, timeout: TimeInterval = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let authorization = bearer.map { ["-H", "Authorization: Bearer \($0)"] } ?? []
        var zeros = 0
        var text = ""
        while Date() < deadline {
            text = try curl(["-s"] + authorization + [url("/metrics", kind: "admin")]).body
            zeros = metric(text, "vantage_events_queued") == 0 ? zeros + 1 : 0
            if zeros == 3 { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw Failure("events still queued after \(timeout) s:\n\(text)\n\(log.suffix(3000))")
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The result of running a command.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command to completion (curl, nghttp, openssl) and captures its output.
@discardableResult
func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so a chatty stderr cannot block the child.
    let errData = LockedData()
    let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errData.isSet { Thread.sleep(forTimeInterval: 0.005) }
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: errData.value, as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    func set(_ value: Data) { lock.withLock { data = value } }
    var isSet: Bool { lock.withLock { data != nil } }
    var value: Data { lock.withLock { data ?? Data() } }
}

/// What curl saw: status, HTTP version, the final response's headers (lower-cased names) and body.
struct CurlAnswer {
    var status: Int
    var version: String
    var headers: [String: String]
    var body: String
}

/// `curl -s` with headers dumped; the status code and HTTP version come from `-w`.
func curl(_ arguments: [String]) throws -> CurlAnswer {
    let result = try run(["curl", "-s", "-S", "-D", "-", "-w", "\n@@ %{http_code} %{http_version}"] + arguments)
    guard let marker = result.stdout.range(of: "\n@@ ", options: .backwards) else {
        throw Failure("curl failed (\(result.status)): \(result.stderr)")
    }
    let trailer = result.stdout[marker.upperBound...].split(separator: " ")
    let everything = String(result.stdout[..<marker.lowerBound])
    var headers: [String: String] = [:]
    var body = everything
    if everything.hasPrefix("HTTP/") {
        let blocks = everything.components(separatedBy: "\r\n\r\n")
        var index = 0
        while index + 1 < blocks.count, blocks[index + 1].hasPrefix("HTTP/") { index += 1 }
        for line in blocks[index].split(separator: "\r\n").dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        body = blocks[(index + 1)...].joined(separator: "\r\n\r\n")
    }
    return CurlAnswer(
        status: Int(trailer.first ?? "0") ?? 0, version: trailer.count > 1 ? String(trailer[1]) : "",
        headers: headers, body: body)
}

/// Makes a self-signed P-256 certificate for `names` in `directory`; returns the (cert, key) paths.
func makeCertificate(in directory: URL, name: String, names: [String]) throws -> (String, String) {
    let cert = directory.appendingPathComponent("\(name).pem").path
    let key = directory.appendingPathComponent("\(name).key").path
    let san = names.map { $0.first!.isNumber ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
    let result = try run([
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=\(names[0])", "-addext", "subjectAltName=\(san)", "-keyout", key, "-out", cert,
    ])
    guard result.status == 0 else { throw Failure("openssl failed: \(result.stderr)") }
    return (cert, key)
}

/// A TCP connection to 127.0.0.1:`port` (its socket; close it). `receiveBuffer` sets `SO_RCVBUF` first (a
/// small one makes a slow reader).
func openConnection(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw Failure("socket failed") }
    if var size = receiveBuffer {
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        close(socket)
        throw Failure("connect failed")
    }
    return socket
}

/// A raw TCP exchange: sends the chunks (pausing between them), then reads until the peer closes or `timeout`.
func rawExchange(port: Int, send chunks: [String], pauseBetween: TimeInterval = 0, timeout: Int = 10) throws -> String {
    let socket = try openConnection(port: port)
    defer { close(socket) }
    var seconds = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
    for (index, chunk) in chunks.enumerated() {
        if index > 0 && pauseBetween > 0 { Thread.sleep(forTimeInterval: pauseBetween) }
        let bytes = Array(chunk.utf8)
        _ = bytes.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
    var received = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(socket, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}
