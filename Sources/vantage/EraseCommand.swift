import ArgumentParser
import Edge
import Foundation
import Logging
import NIOCore
import NIOPosix
import Tracking

/// `vantage erase --vid ID`: a visitor's right to erasure. Their events leave the spool (directly when Vantage is
/// stopped, through the running gateway's admin API otherwise) and ClickHouse (an `ALTER TABLE ... DELETE`
/// mutation), in that order, so nothing still queued can arrive after the delete.
struct EraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase", abstract: "Delete every event of a visitor from the spool and from ClickHouse.")
    @OptionGroup var options: ConfigOption
    @Option(help: "The visitor id (the vid column).")
    var vid: String
    @Flag(help: "Wait until ClickHouse finished the delete mutation.")
    var wait = false

    func run() async throws {
        guard Enricher.acceptableVisitorID(vid[...]) else {
            printError("expected --vid to be 1 to 64 letters, digits, - or _")
            throw ExitCode(64)
        }
        let configuration = try loadConfiguration(options.config)
        let tracking = configuration.tracking
        let vid = self.vid
        let target = Array(vid.utf8)
        if !FileManager.default.fileExists(atPath: tracking.spool.directory) {
            print("spool: \(tracking.spool.directory) does not exist; nothing to remove")
        } else {
            do {
                let removed = try Spool.eraseRecords(inDirectory: tracking.spool.directory) { record in
                    EventRecord.visitorID(of: record).elementsEqual(target)
                }
                print("spool: \(removed) event(s) removed from \(tracking.spool.directory)")
            } catch let error as Spool.SpoolError where error.inUse {
                try await eraseThroughRunningGateway(configuration)
            }
        }
        guard let clickHouse = tracking.clickHouse else {
            print("clickhouse: not configured")
            return
        }
        let client = ClickHouseClient(configuration: clickHouse, group: MultiThreadedEventLoopGroup.singleton)
        let logger = Logger(label: "vantage.erase")
        let schema = EventSchema(dialect: .legacy, database: clickHouse.database, table: clickHouse.table, cluster: clickHouse.cluster)
        do {
            _ = try await client.query(schema.deleteStatement(where: "vid = '\(vid)'"), logger: logger)
            print("clickhouse: delete mutation submitted on \(schema.qualifiedTable)")
            // The visits table exists from schema version 4 on (a table made by an older build has none yet).
            let visits = try await client.query(
                "SELECT count() FROM system.tables WHERE database = '\(clickHouse.database)' AND name = '\(schema.visitsTable)'",
                logger: logger)
            if visits.trimmingCharacters(in: .whitespacesAndNewlines) != "0" {
                _ = try await client.query(schema.deleteVisitsStatement(visitor: vid), logger: logger)
                print("clickhouse: delete mutation submitted on \(schema.qualifiedVisitsTable)")
            }
            if wait {
                let deadline = Date().addingTimeInterval(600)
                while Date() < deadline {
                    let running = try await client.query(
                        "SELECT count() FROM system.mutations WHERE database = '\(clickHouse.database)' AND is_done = 0",
                        logger: logger)
                    if running.trimmingCharacters(in: .whitespacesAndNewlines) == "0" {
                        print("clickhouse: delete finished")
                        break
                    }
                    try await Task.sleep(nanoseconds: 200_000_000)
                }
            }
        } catch {
            await client.shutdown()
            printError("clickhouse: \(error)")
            throw ExitCode(1)
        }
        await client.shutdown()
    }

    /// The spool belongs to a running Vantage: ask it (admin `POST /erase`), with the admin token when configured.
    private func eraseThroughRunningGateway(_ configuration: GatewayConfiguration) async throws {
        do {
            let admin = try AdminClient(configuration: configuration)
            let (status, body) = try await admin.send(.POST, "/erase?vid=\(vid)")
            guard status == 200 else {
                printError("the running Vantage refused the erasure (\(status)): \(body)")
                throw ExitCode(1)
            }
            print("spool (running Vantage at \(admin.baseURL)): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        } catch let failure as AdminClient.Failure {
            printError("the spool is in use by a running Vantage: \(failure)")
            throw ExitCode(1)
        }
    }
}
