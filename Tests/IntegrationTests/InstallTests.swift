import Foundation
import Testing

/// `scripts/install.sh` staged into a folder: the unit systemd itself verifies (with a hardening score), the
/// logrotate file logrotate reads, completions and a configuration the installed binary accepts; and the access
/// log's reopen on reload that log rotation relies on.
@Suite(.serialized) struct InstallTests {
    @Test func theServiceFilesAreWhatSystemdAndLogrotateExpect() throws {
        let stage = FileManager.default.temporaryDirectory.appendingPathComponent("vantage-stage-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: stage) }
        let script = VantageProcess.packageRoot.appendingPathComponent("scripts/install.sh").path
        let install = try run([script, "--root", stage.path, "--binary", VantageProcess.binary, "--no-manual"])
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        let staged = { (path: String) in stage.appendingPathComponent(path).path }
        for path in ["usr/local/bin/vantage", "etc/vantage/vantage.yaml", "etc/systemd/system/vantage.service", "etc/logrotate.d/vantage",
                     "usr/share/bash-completion/completions/vantage", "usr/share/zsh/vendor-completions/_vantage", "srv/www/vantage/index.html"] {
            #expect(FileManager.default.fileExists(atPath: staged(path)), "\(path)")
        }
        let config = try String(contentsOfFile: staged("etc/vantage/vantage.yaml"), encoding: .utf8)
        #expect(config.contains("root: /srv/www/vantage") && config.contains("dir: /var/lib/vantage/spool"))
        #expect(config.contains("access_log: /var/log/vantage/access.log"))

        // systemd reads the unit as it would install it (the binary and configuration at their staged paths).
        let unit = try String(contentsOfFile: staged("etc/systemd/system/vantage.service"), encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/local/bin/vantage run --config /etc/vantage/vantage.yaml"))
        #expect(unit.contains("ProtectSystem=strict") && unit.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE"))
        let checked = stage.appendingPathComponent("vantage.service").path
        try unit.replacingOccurrences(of: "/usr/local/bin/vantage", with: staged("usr/local/bin/vantage"))
            .replacingOccurrences(of: "/etc/vantage/vantage.yaml", with: staged("etc/vantage/vantage.yaml"))
            .write(toFile: checked, atomically: true, encoding: .utf8)
        let verify = try run(["systemd-analyze", "verify", "--man=no", checked])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let security = try run(["systemd-analyze", "security", "--offline=true", "--threshold=40", checked])
        #expect(security.status == 0, "exposure above 4.0: \(security.stdout.suffix(300))")

        // logrotate reads the file (as root: the test machine has no vantage user).
        let rotation = stage.appendingPathComponent("logrotate").path
        try String(contentsOfFile: staged("etc/logrotate.d/vantage"), encoding: .utf8)
            .replacingOccurrences(of: "create 0640 vantage vantage", with: "create 0640 root root")
            .write(toFile: rotation, atomically: true, encoding: .utf8)
        let logrotate = try run(["logrotate", "--debug", "--state", stage.appendingPathComponent("state").path, rotation])
        #expect(logrotate.status == 0 && !logrotate.stderr.contains("error:") && !logrotate.stdout.contains("error:"),
                "\(logrotate.stdout)\(logrotate.stderr)")
    }

    @Test func aReloadReopensTheRotatedAccessLog() throws {
        let vantage = try VantageProcess(config: """
            listen: { http: "127.0.0.1:0" }
            admin: { listen: "127.0.0.1:0" }
            access_log: access.log
            sites: [{ routes: [{ path: /, respond: ok }] }]
            """)
        let log = vantage.directory.appendingPathComponent("access.log").path
        _ = try curl([vantage.url("/before")])
        try waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/before") }
        // What logrotate does: move the file away, then `systemctl reload` (SIGHUP).
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        vantage.signal(SIGHUP)
        try waitUntil { FileManager.default.fileExists(atPath: log) }
        _ = try curl([vantage.url("/after")])
        try waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/after") }
        #expect(try String(contentsOfFile: log + ".1", encoding: .utf8).contains("/before"))
        #expect(!(try String(contentsOfFile: log + ".1", encoding: .utf8)).contains("/after"))
        #expect(vantage.stop() == 0)
    }
}
