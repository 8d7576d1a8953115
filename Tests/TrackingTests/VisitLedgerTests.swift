import NIOCore
import Testing

@testable import Tracking

/// The shipper's account of open visits: what a batch writes (a new visit's row, or the old row cancelled and the
/// new one), what is committed, and what it lets go.
struct VisitLedgerTests {
    static func record(_ kind: TrackingEvent.Kind, at time: Int64, session: String = "s1", path: String = "/", referrer: String = "",
                       bot: String = "") -> ByteBuffer {
        var event = EventTests.event
        (event.kind, event.timeMilliseconds, event.sessionID, event.target, event.referrerHost, event.botReason) =
            (kind, time, session, path, referrer, bot)
        event.site = "example.com"
        var buffer = ByteBuffer()
        EventRecord.encode(event, into: &buffer)
        return buffer
    }

    func add(_ records: [ByteBuffer], to ledger: VisitLedger) throws -> VisitLedger.Batch {
        var batch = VisitLedger.Batch()
        for record in records { try record.withUnsafeReadableBytes { try ledger.add(record: $0, to: &batch) } }
        return batch
    }

    @Test func aVisitGrowsByCancellingItsOldRow() throws {
        var ledger = VisitLedger()
        let first = try add([Self.record(.pageview, at: 1_000, path: "/landing?x=1", referrer: "google.com")], to: ledger)
        #expect(first.rows == 1)
        ledger.commit(first)
        let key = VisitLedger.Key(site: "example.com", visit: "s1")
        #expect(ledger.visits[key]?.version == 1 && ledger.visits[key]?.entryPage == "/landing")
        #expect(ledger.visits[key]?.landing[1] == "google.com", "the landing's source")

        // A later page, a custom event, and an earlier page that arrived late (another loop's segment).
        let second = try add([
            Self.record(.pageview, at: 5_000, path: "/pricing"), Self.record(.track, at: 6_000),
            Self.record(.pageview, at: 500, path: "/first", referrer: "t.co"),
        ], to: ledger)
        #expect(second.rows == 2, "the old row cancelled, the new one written")
        let body = ledger.encode(second)
        #expect(body.readableBytes > 0)
        ledger.commit(second)
        let visit = try #require(ledger.visits[key])
        #expect((visit.start, visit.end, visit.pageviews, visit.events) == (500, 6_000, 3, 1))
        #expect((visit.entryPage, visit.exitPage) == ("/first", "/pricing"))
        #expect(visit.landing[1] == "t.co", "the earliest event is the landing")
        #expect(visit.version == 2)
    }

    @Test func machinesAndPlainRequestsAreNoVisits() throws {
        let ledger = VisitLedger()
        let batch = try add([
            Self.record(.request, at: 1_000), Self.record(.pageview, at: 1_000, bot: "crawler"), Self.record(.linkClick, at: 1_000),
        ], to: ledger)
        #expect(batch.isEmpty)
    }

    @Test func aBatchThatFailedLeavesTheLedgerAsItWas() throws {
        var ledger = VisitLedger()
        ledger.commit(try add([Self.record(.pageview, at: 1_000)], to: ledger))
        _ = try add([Self.record(.pageview, at: 2_000)], to: ledger)  // built, never acknowledged
        let again = try add([Self.record(.pageview, at: 2_000)], to: ledger)
        ledger.commit(again)
        #expect(ledger.visits[VisitLedger.Key(site: "example.com", visit: "s1")]?.pageviews == 2)
    }

    @Test func idleVisitsAreLetGoAndAFullLedgerEvictsTheOldest() throws {
        var ledger = VisitLedger(capacity: 10, timeoutMilliseconds: 60_000)
        ledger.commit(try add((0..<5).map { Self.record(.pageview, at: 1_000, session: "old\($0)") }, to: ledger))
        ledger.commit(try add([Self.record(.pageview, at: 200_000, session: "new")], to: ledger))
        #expect(ledger.visits.count == 1, "visits idle past the timeout can no longer grow")
        ledger.commit(try add((0..<12).map { Self.record(.pageview, at: 200_000 + Int64($0), session: "v\($0)") }, to: ledger))
        #expect(ledger.visits.count <= 10 && ledger.evictions > 0)
    }

    @Test func openVisitsSurviveARestart() throws {
        var ledger = VisitLedger(timeoutMilliseconds: 60_000)
        ledger.commit(try add([
            Self.record(.pageview, at: 1_000, session: "gone"), Self.record(.pageview, at: 100_000, path: "/a?b", referrer: "t.co"),
        ], to: ledger))
        var restarted = VisitLedger(timeoutMilliseconds: 60_000)
        #expect(restarted.restore(ledger.saved(), now: 120_000) == 1, "the idle one is let go")
        #expect(restarted.visits == ledger.visits.filter { $0.value.id == "s1" })
        #expect(restarted.restore(Array("not a ledger".utf8), now: 0) == 0)
    }

    /// The visits table counts distinct visitors by a hash ClickHouse computes the same way (`sipHash64`) for the
    /// rows written before the table existed.
    @Test func theVisitorHashIsClickHousesSipHash64() {
        var hasher = SipHash24(key0: 0, key1: 0)
        hasher.combine("abc".utf8)
        #expect(hasher.finalize() == 4_596_069_200_710_135_518)
    }
}
