import Foundation
import Testing

/// `vantage proxy` and `vantage file-server` started as a user would, without a configuration file: they serve,
/// record events in their state folder, and leave a configuration there that `vantage run` accepts.
@Suite(.serialized) struct QuickStartTests {
    @Test func proxyAnAppWithOneCommand() throws {
        let node = try BackendProcess.node("n1")
        defer { node.kill() }
        let port = try freePort()
        let vantage = try VantageProcess(
            config: "", expect: ["http", "admin"],
            arguments: ["proxy", "--from", "127.0.0.1:\(port)", "--to", node.address, "--state", "{{DIR}}/state", "--admin", "127.0.0.1:0"])
        let answer = try curl([vantage.url("/echo?x=1")])
        #expect(answer.status == 200 && answer.headers["x-backend"] == "n1", "\(vantage.log.suffix(800))")
        #expect(vantage.ports["http"] == port)
        #expect(vantage.stop() == 0)
        let state = vantage.directory.appendingPathComponent("state")
        let events = try run([VantageProcess.binary, "events", "export", "--spool", state.appendingPathComponent("spool").path])
        #expect(events.stdout.contains("\"path\":\"/echo\""), "\(events.stdout.prefix(300))")
        let written = try run([VantageProcess.binary, "validate", "--config", state.appendingPathComponent("vantage.yaml").path])
        #expect(written.status == 0, "\(written.stderr)")
    }

    @Test func serveAFolderWithOneCommand() throws {
        let port = try freePort()
        let vantage = try VantageProcess(
            config: "", expect: ["http"],
            arguments: ["file-server", "--root", "{{DIR}}/site", "--listen", "127.0.0.1:\(port)", "--state", "{{DIR}}/state",
                        "--admin", "off", "--browse"]
        ) { directory in
            let site = directory.appendingPathComponent("site/notes")
            try FileManager.default.createDirectory(at: site, withIntermediateDirectories: true)
            try "hello".write(to: site.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        }
        #expect(try curl([vantage.url("/notes/a.txt")]).body == "hello")
        #expect(try curl([vantage.url("/notes/")]).body.contains("a.txt"), "a folder listing with --browse")
        #expect(vantage.stop() == 0)
    }

    @Test func aProxyWithoutAnAppSaysWhatIsMissing() throws {
        let result = try run([VantageProcess.binary, "proxy", "--from", "127.0.0.1:0"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("give the app's address with --to"), "\(result.stderr)")
    }
}
