import Foundation
import NIOCore
import Tracking

// What the visits table costs the shipper: nanoseconds per shipped page view for the visit ledger (reading the
// record's visit, updating the batch, encoding the rows, committing), over batches like the shipper's.
// Events come 7 ms apart (a busy site: 2 hours for a million), so idle visits leave the ledger as they would.
// Usage: swift run -c release ledger-bench [events] [events per visit] [batch size]
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let total = arguments.first ?? 1_000_000
let perVisit = arguments.count > 1 ? arguments[1] : 3
let batchSize = arguments.count > 2 ? arguments[2] : 50_000

var records: [ByteBuffer] = []
records.reserveCapacity(total)
let start = Int64(Date().timeIntervalSince1970 * 1000)
for index in 0..<total {
    var event = TrackingEvent(
        id: EventID(high: UInt64(index), low: 1), timeMilliseconds: start + Int64(index) * 7, site: "bench.test", host: "bench.test",
        kind: .pageview, method: "GET", scheme: "https", target: "/page\(index % 40).html?x=1", status: 200, bytesIn: 0,
        bytesOut: 1000, durationMicroseconds: 100, httpVersion: "HTTP/1.1", clientAddress: "10.0.0.1")
    event.visitorID = "v\(index / perVisit % 200_000)"
    event.sessionID = "s\(index / perVisit)"
    event.referrerHost = index % 5 == 0 ? "google.com" : ""
    event.country = "FR"
    event.device = "desktop"
    event.browser = "Firefox"
    event.os = "Linux"
    var buffer = ByteBuffer()
    EventRecord.encode(event, into: &buffer)
    records.append(buffer)
}

var ledger = VisitLedger(capacity: 1_000_000)
var rows = 0
var bytes = 0
let clock = ContinuousClock()
let elapsed = try clock.measure {
    for batchStart in stride(from: 0, to: total, by: batchSize) {
        var batch = VisitLedger.Batch()
        for record in records[batchStart..<min(total, batchStart + batchSize)] {
            try record.withUnsafeReadableBytes { try ledger.add(record: $0, to: &batch) }
        }
        bytes += ledger.encode(batch).readableBytes
        rows += batch.rows
        ledger.commit(batch)
    }
}
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(String(format: "%d page views in %d-view visits, batches of %d: %.0f ns a page view, %d visit rows (%.1f MB)",
             total, perVisit, batchSize, seconds * 1e9 / Double(total), rows, Double(bytes) / 1e6))
