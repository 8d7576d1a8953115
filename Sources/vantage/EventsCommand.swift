import ArgumentParser
import Config
import Edge
import Foundation
import HeapModule
import NIOCore
import NIOPosix
import Tracking

/// `vantage events`: read the local spool (what the embedded default keeps, or what waits for ClickHouse).
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Read tracked events from the local spool.",
        subcommands: [Tail.self, Export.self])

    struct Source: ParsableArguments {
        /// The configuration whose `tracking.spool.dir` is read.
        @OptionGroup var options: ConfigOption
        @Option(help: "The spool folder (instead of reading it from the configuration).")
        var spool: String?

        /// Says where the events are when the spool holds none: with ClickHouse configured, shipped events leave
        /// the spool (an empty answer would look like nothing was tracked).
        func explainEmptySpool() {
            guard spool == nil, let configuration = try? GatewayConfiguration.load(path: options.config),
                let clickHouse = configuration.tracking.clickHouse
            else { return }
            printError("""
                no events waiting in the spool: with tracking.clickhouse set, shipped events leave it; they are in \
                \(clickHouse.database).\(clickHouse.table) at \(clickHouse.endpoints.joined(separator: ", "))
                """)
        }

        func directory() throws -> String {
            // Only the spool's folder is read: the gateway's secrets need not be in this shell's environment.
            let directory = try spool ?? loadConfiguration(options.config, secretsOptional: true).tracking.spool.directory
            guard FileManager.default.fileExists(atPath: directory) else {
                printError("no spool folder at \(directory) (tracking.spool.dir): Vantage has not run with this configuration yet")
                throw ExitCode(1)
            }
            return directory
        }
    }

    /// `--format` and `--fields`, shared by tail and export.
    struct Presentation: ParsableArguments {
        @Option(help: "Output format: ndjson (one JSON object per line), csv (a header, then a row an event) or table.")
        var format = "ndjson"
        @Option(help: "Only these fields, comma-separated (ts,kind,path,status,channel,...); a table shows a few by default.")
        var fields: String?

        func writer() throws -> EventOutput {
            guard let chosen = EventOutput.Format(rawValue: format) else {
                printError("unknown format \(format); expected ndjson, csv or table")
                throw ExitCode(64)
            }
            return EventOutput(
                format: chosen,
                fields: fields.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
        }
    }

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the last events in time order, then follow new ones (Ctrl-C stops); or follow a gateway's NATS subject from anywhere.")
        @OptionGroup var source: Source
        @OptionGroup var presentation: Presentation
        @Option(name: [.customShort("n"), .long], help: "How many earlier events to print first.")
        var lines = 10
        @Flag(help: "Print the last events and exit instead of following.")
        var noFollow = false
        @Option(help: "Follow the events a gateway publishes to NATS (tracking.nats) instead of a local spool: nats://host:4222.")
        var nats: String?
        @Option(help: "The NATS subject (with --nats).")
        var subject = "vantage.events"

        func run() async throws {
            if let nats {
                try await follow(nats)
                return
            }
            var writer = try presentation.writer()
            var reader = SpoolReader(directory: try source.directory())
            // The latest `lines` events by time, across every loop's segments.
            var latest = Heap<TimeOrderedEvents.Entry>()
            try reader.readNew { record in
                guard lines > 0, let event = try? EventRecord.decode(record) else { return }
                latest.insert(TimeOrderedEvents.Entry(event: event, segment: 0))
                if latest.count > lines { _ = latest.popMin() }
            }
            var first: [TrackingEvent] = []
            while let entry = latest.popMin() { first.append(entry.event) }
            print(first, with: &writer)
            if first.isEmpty { source.explainEmptySpool() }
            guard !noFollow else { return }
            while true {
                usleep(250_000)
                var fresh: [TrackingEvent] = []
                try reader.readNew { record in
                    if let event = try? EventRecord.decode(record) { fresh.append(event) }
                }
                // What the loops wrote since the last look, in time order.
                print(fresh.sorted { ($0.timeMilliseconds, $0.id.high, $0.id.low) < ($1.timeMilliseconds, $1.id.high, $1.id.low) }, with: &writer)
            }
        }

        /// Subscribes to the subject and prints each event as it comes (NDJSON, as the sink publishes it).
        private func follow(_ url: String) async throws {
            guard presentation.format == "ndjson", presentation.fields == nil else {
                printError("--nats prints the events as published: NDJSON, every field")
                throw ExitCode(64)
            }
            let connection: NATSConnection
            do {
                connection = try await NATSConnection.connect(try NATSConnection.Options(url: url), group: MultiThreadedEventLoopGroup.singleton)
            } catch {
                printError("vantage events: cannot follow \(url): \(error)")
                throw ExitCode(1)
            }
            try await connection.subscribe(subject) { payload in
                var line = payload
                line.writeStaticString("\n")
                FileHandle.standardOutput.write(Data(line.readableBytesView))
            }
            printError("following \(subject) on \(url) (Ctrl-C stops)")
            try? await connection.closed.get()
            printError("vantage events: the NATS connection closed")
            throw ExitCode(1)
        }

        func print(_ events: [TrackingEvent], with writer: inout EventOutput) {
            guard !events.isEmpty else { return }
            var buffer = ByteBuffer()
            for event in events { writer.write(event, into: &buffer) }
            writer.finish(into: &buffer)
            FileHandle.standardOutput.write(Data(buffer.readableBytesView))
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write every event in the spool to standard output, in time order across loops.")
        @OptionGroup var source: Source
        @OptionGroup var presentation: Presentation
        @Option(help: "Only events at or after this time: ISO 8601 (2026-11-25T10:00:00Z, 2026-11-25) or an age (90m, 2h, 7d).")
        var since: String?

        func run() throws {
            var writer = try presentation.writer()
            var exported = 0
            let threshold = try since.map { text -> Int64 in
                guard let value = Self.parseSince(text, now: Date()) else {
                    printError("cannot read --since \(text): expected 2026-11-25T10:00:00Z, 2026-11-25 or an age such as 2h")
                    throw ExitCode(64)
                }
                return value
            }
            var output = ByteBuffer()
            try TimeOrderedEvents(directory: try source.directory()).forEach { event in
                if let threshold, event.timeMilliseconds < threshold { return }
                writer.write(event, into: &output)
                exported += 1
                if output.readableBytes > 1 << 16 { flush(&output) }
            }
            writer.finish(into: &output)
            flush(&output)
            if exported == 0 { source.explainEmptySpool() }
        }

        func flush(_ output: inout ByteBuffer) {
            FileHandle.standardOutput.write(Data(output.readableBytesView))
            output.clear()
        }

        /// Unix milliseconds for an ISO 8601 time or date, or an age before `now`.
        static func parseSince(_ text: String, now: Date) -> Int64? {
            let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
            if let unit = text.last, let scale = units[unit], let amount = Double(text.dropLast()) {
                return Int64((now.timeIntervalSince1970 - amount * scale) * 1000)
            }
            let formatter = ISO8601DateFormatter()
            if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
            formatter.formatOptions = [.withFullDate]
            if let date = formatter.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
            return nil
        }
    }
}
