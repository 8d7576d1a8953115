import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real ACME server: Debian's Pebble, with pebble-challtestsrv as its DNS (every name resolves to 127.0.0.1 unless
/// told otherwise), so HTTP-01 validation really fetches the token from Vantage's HTTP listener on `httpPort`.
///
/// Debian ships no certificate for Pebble's own HTTPS API, so one is made here with openssl (a throwaway CA,
/// `apiRootPath`); the issuing root, new on every start, comes from the management API (`issuingRoot()`).
final class PebbleServer: @unchecked Sendable {
    let directory: URL
    let port: Int
    let managementPort: Int
    let dnsPort: Int
    let challengeManagementPort: Int
    /// Where Pebble sends HTTP-01 validation requests: Vantage's HTTP listener.
    let httpPort: Int
    private var pebble: Process?
    private var challengeServer: Process?
    /// External account binding credentials Pebble accepts (and, with `requireBinding`, requires).
    static let bindingKeyID = "vantage-test"
    static let bindingMACKey = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"

    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/pebble") }

    /// `validity`: lifetime of issued certificates in seconds (Pebble's default is five years).
    init(httpPort: Int, validity: Int? = nil, requireBinding: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pebble-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.httpPort = httpPort
        port = try freePort()
        managementPort = try freePort()
        dnsPort = try freePort()
        challengeManagementPort = try freePort()
        let root = directory.path
        let script = """
            set -e
            cd '\(root)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 30 \
              -subj "/CN=Pebble API test CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout api.key -out api.csr -subj "/CN=localhost"
            printf "subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\nbasicConstraints=CA:FALSE\\n" > api.ext
            openssl x509 -req -in api.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out api.pem -days 30 -extfile api.ext
            """
        let made = try run(["bash", "-c", script])
        guard made.status == 0 else { throw Failure("openssl could not make Pebble's API certificate:\n\(made.stderr)") }
        var settings: [String: Any] = [
            "listenAddress": "127.0.0.1:\(port)", "managementListenAddress": "127.0.0.1:\(managementPort)",
            "certificate": root + "/api.pem", "privateKey": root + "/api.key", "httpPort": httpPort, "tlsPort": try freePort(),
            "ocspResponderURL": "", "externalAccountBindingRequired": requireBinding,
            "externalAccountMACKeys": [Self.bindingKeyID: Self.bindingMACKey],
        ]
        if let validity { settings["certificateValidityPeriod"] = validity }
        try JSONSerialization.data(withJSONObject: ["pebble": settings]).write(to: directory.appendingPathComponent("pebble.json"))
        try start()
    }

    var directoryURL: String { "https://127.0.0.1:\(port)/dir" }
    /// The CA that signed Pebble's API certificate (Vantage's `tls.acme.ca_root`).
    var apiRootPath: String { directory.path + "/ca.pem" }
    var log: String { (try? String(contentsOfFile: directory.path + "/pebble.log", encoding: .utf8)) ?? "" }

    /// Starts challtestsrv (if not running) and Pebble, and waits for the directory.
    func start() throws {
        if challengeServer == nil {
            challengeServer = try launch("/usr/bin/pebble-challtestsrv", [
                "-management", "127.0.0.1:\(challengeManagementPort)", "-dns01", "127.0.0.1:\(dnsPort)", "-http01", "",
                "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            ], log: "challtestsrv.log")
        }
        // NOSLEEP: validate at once instead of after a random pause of up to 15 s. Pebble still refuses 5% of good
        // nonces, which the client must retry.
        pebble = try launch("/usr/bin/pebble", [
            "-config", directory.path + "/pebble.json", "-strict", "-dnsserver", "127.0.0.1:\(dnsPort)",
        ], log: "pebble.log", environment: ["PEBBLE_VA_NOSLEEP": "1"])
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let answer = try? curl(["--cacert", apiRootPath, directoryURL]), answer.status == 200 { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Failure("pebble did not start:\n\(log)")
    }

    /// Stops Pebble (its DNS helper stays), as a CA outage would.
    func stop() {
        if let pebble, pebble.isRunning {
            kill(pebble.processIdentifier, SIGKILL)
            pebble.waitUntilExit()
        }
        pebble = nil
    }

    /// The root that issued Vantage's certificates, as a PEM file (Pebble makes a new one on every start).
    func issuingRoot() throws -> String {
        let path = directory.path + "/issuing-root-\(UUID().uuidString.prefix(6)).pem"
        let answer = try run(["curl", "-sS", "--cacert", apiRootPath, "-o", path, "https://127.0.0.1:\(managementPort)/roots/0"])
        guard answer.status == 0 else { throw Failure("cannot fetch Pebble's root: \(answer.stderr)") }
        return path
    }

    /// Makes challtestsrv answer `host` with `address` (a name whose validation must fail, say).
    func resolve(_ host: String, to address: String) throws {
        let answer = try run(["curl", "-sS", "-X", "POST", "-d", "{\"host\":\"\(host)\",\"addresses\":[\"\(address)\"]}",
                              "http://127.0.0.1:\(challengeManagementPort)/add-a"])
        guard answer.status == 0 else { throw Failure("challtestsrv refused add-a: \(answer.stderr)") }
    }

    private func launch(_ executable: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        try launchLogged(process, executable, arguments, output: directory.path + "/" + log, environment: environment)
        return process
    }

    deinit {
        stop()
        if let challengeServer, challengeServer.isRunning {
            kill(challengeServer.processIdentifier, SIGKILL)
            challengeServer.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
