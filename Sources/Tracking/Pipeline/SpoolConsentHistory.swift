import Logging
import NIOCore
import NIOPosix

/// A visitor's consent events for `GET ppi/agree`: those still in the spool (read off the loops, on the blocking
/// pool) and, with a ClickHouse sink, those already shipped. Times come from the UUIDv7 event ids, which carry the
/// millisecond, so the answer does not depend on the table's time layout.
final class SpoolConsentHistory: ConsentHistory {
    private let spoolDirectory: String
    private let pool: NIOThreadPool
    private let logger: Logger
    /// Runs a query against the events table where events are shipped now (`{table}` stands for it); nil without
    /// ClickHouse.
    private let shipped: @Sendable (String) async throws -> String?

    init(spoolDirectory: String, pool: NIOThreadPool, logger: Logger, shipped: @escaping @Sendable (String) async throws -> String?) {
        self.spoolDirectory = spoolDirectory
        self.pool = pool
        self.logger = logger
        self.shipped = shipped
    }

    func agreements(visitorID: String) async throws -> [TrackingEvent] {
        let directory = spoolDirectory
        var found: [EventID: TrackingEvent] = [:]
        let spooled = try await pool.runIfActive { () -> [TrackingEvent] in
            var reader = SpoolReader(directory: directory)
            var matches: [TrackingEvent] = []
            try reader.readNew { record in
                // The kind is the record's second byte: skip everything else without decoding it.
                guard record.readableBytes > 2, record.getInteger(at: record.readerIndex + 1, as: UInt8.self)
                    == TrackingEvent.Kind.consent.rawValue,
                    let event = try? EventRecord.decode(record), event.visitorID == visitorID
                else { return }
                matches.append(event)
            }
            return matches
        }
        for event in spooled { found[event.id] = event }
        // visitorID passed `Enricher.acceptableVisitorID` (letters, digits, - and _): safe inside quotes.
        if let answer = try await shipped(
            "SELECT toString(id), cflags FROM {table} WHERE kind = 'consent' AND vid = '\(visitorID)' FORMAT TabSeparated")
        {
            for line in answer.split(separator: "\n") {
                let columns = line.split(separator: "\t")
                guard columns.count == 2, let id = EventID(String(columns[0])), let flags = Int64(columns[1]) else { continue }
                var event = TrackingEvent(
                    id: id, timeMilliseconds: Int64(id.unixMilliseconds), site: "", host: "", kind: .consent, method: "",
                    scheme: "", target: "", status: 0, bytesIn: 0, bytesOut: 0, durationMicroseconds: 0, httpVersion: "",
                    clientAddress: "")
                event.visitorID = visitorID
                event.consentFlags = flags
                found[id] = found[id] ?? event
            }
        }
        return found.values.sorted { $0.timeMilliseconds < $1.timeMilliseconds }
    }
}
