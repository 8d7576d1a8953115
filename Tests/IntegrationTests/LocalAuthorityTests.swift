import Foundation
import Testing

/// `tls: { internal: true }` through the real binary: a local authority made once (its key private to the
/// owner), a certificate for the sites' names and localhost that curl verifies against the root, the same root
/// after a restart, and `validate` that creates nothing.
@Suite(.serialized) struct LocalAuthorityTests {
    static let config = """
        listen: { https: "127.0.0.1:0" }
        admin: { listen: "127.0.0.1:0" }
        tls: { internal: true }
        sites:
          - hosts: [app.test, localhost]
            routes: [{ path: /, respond: "secure" }]
        """

    @Test func aLocalAuthorityIssuesCertificatesCurlTrusts() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-internal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.config.write(to: folder.appendingPathComponent("check.yaml"), atomically: true, encoding: .utf8)
        let validated = try run([VantageProcess.binary, "validate", "--config", folder.appendingPathComponent("check.yaml").path])
        #expect(validated.status == 0, "\(validated.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("data/tls-internal").path), "validate issues nothing")

        let vantage = try VantageProcess(config: Self.config, expect: ["https", "admin"])
        let authority = vantage.directory.appendingPathComponent("data/tls-internal")
        let root = authority.appendingPathComponent("root.pem").path
        #expect(vantage.log.contains("trust it once"), "\(vantage.log.suffix(600))")
        let port = try #require(vantage.ports["https"])
        let verified = try curl(["--cacert", root, "--resolve", "app.test:\(port):127.0.0.1", "https://app.test:\(port)/"])
        #expect(verified.status == 200 && verified.body == "secure", "\(verified)")
        let byLocalhost = try curl(["--cacert", root, "https://localhost:\(port)/"])
        #expect(byLocalhost.status == 200)
        let keyMode = try FileManager.default.attributesOfItem(atPath: authority.appendingPathComponent("root.key").path)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let firstRoot = try String(contentsOfFile: root, encoding: .utf8)
        #expect(vantage.stop() == 0)

        // A restart keeps the authority (and so every trust store that holds its root).
        let again = try VantageProcess(config: Self.config, expect: ["https", "admin"], reusing: vantage.directory)
        defer { try? FileManager.default.removeItem(at: vantage.directory) }
        #expect(try String(contentsOfFile: root, encoding: .utf8) == firstRoot)
        #expect(try curl(["--cacert", root, "https://localhost:\(again.ports["https"]!)/"]).body == "secure")
        #expect(again.stop() == 0)
    }
}
