import Foundation
import Logging
import Testing

@testable import Tracking

@Suite struct VisitorTests {
    /// The reference test vectors of the SipHash paper: key 00 01 … 0f, message 00 01 … (n−1).
    @Test func sipHashMatchesTheReferenceVectors() {
        func hash(length: Int) -> UInt64 {
            var hasher = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
            hasher.combine((0..<length).map { UInt8($0) })
            return hasher.finalize()
        }
        #expect(hash(length: 0) == 0x726f_db47_dd0e_0e31)
        #expect(hash(length: 1) == 0x74f8_39c5_93dc_67fd)
        #expect(hash(length: 15) == 0xa129_ca61_49be_45e5)
        // Contiguous bytes go a word at a time, from any starting point: the same digests.
        let message = (0..<64).map { UInt8($0) }
        for length in 0...64 {
            for split in 0...min(length, 9) {
                var hasher = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
                hasher.combine(message[0..<split])
                message[split..<length].withUnsafeBytes { hasher.combine($0) }
                #expect(hasher.finalize() == hash(length: length), "length \(length), split \(split)")
            }
        }
    }

    @Test func aVisitorIsStableWithinADayAndNewTheNext() {
        let keyring = VisitorKeyring()
        let day: Int64 = 20_781
        func id(_ site: String, _ address: String, day: Int64) -> UInt64 {
            VisitorKeyring.visitorHash(key: keyring.keys(day: day).today, site: site, clientAddress: address, userAgent: "UA")
        }
        let first = id("example.com", "203.0.113.7", day: day)
        #expect(id("example.com", "203.0.113.7", day: day) == first)
        #expect(id("example.com", "203.0.113.8", day: day) != first)
        #expect(id("other.com", "203.0.113.7", day: day) != first)
        let today = keyring.keys(day: day).today
        let next = keyring.keys(day: day + 1)
        #expect(next.today != today && next.yesterday == today, "yesterday's key is kept for sessions over midnight")
        #expect(id("example.com", "203.0.113.7", day: day + 1) != first)
        #expect(keyring.keys(day: day + 3).yesterday != next.today, "after a gap both keys are new")
    }

    @Test func sessionsEndAfterInactivityAndSurviveMidnight() {
        let table = SessionTable(visitors: 4096, timeoutSeconds: 1800)
        let start: UInt32 = 1_795_564_000
        let first = table.visit(visitor: 42, now: start, newSession: 1)
        #expect(first == SessionTable.Visit(session: 1, isNew: true))
        #expect(table.visit(visitor: 42, now: start + 1799, newSession: 2) == SessionTable.Visit(session: 1, isNew: false))
        // 30 minutes of silence after the last request: a new session.
        #expect(table.visit(visitor: 42, now: start + 1799 + 1801, newSession: 3) == SessionTable.Visit(session: 3, isNew: true))
        // Midnight: the cookieless id changed (43 under the new key); the session of 42 carries over.
        let carried = table.visit(visitor: 43, now: start + 3700, newSession: 4, carriedFrom: 42)
        #expect(carried == SessionTable.Visit(session: 3, isNew: false))
        #expect(table.visit(visitor: 43, now: start + 3800, newSession: 5) == SessionTable.Visit(session: 3, isNew: false))
        #expect(table.visit(visitor: 42, now: start + 3800, newSession: 6).isNew, "the old id no longer holds it")
    }

    @Test func theSessionTableIsBounded() {
        let table = SessionTable(visitors: 800, timeoutSeconds: 1800)
        #expect(table.capacity == 1024)
        var generator = SystemRandomNumberGenerator()
        for index in 0..<5000 { _ = table.visit(visitor: generator.next(), now: 1000, newSession: UInt64(index)) }
        #expect(table.count <= table.capacity)
        #expect(table.count > table.capacity * 9 / 10, "the probe window fills nearly every slot before evicting")
        #expect(table.evictions >= 5000 - table.capacity)
        // Expired entries are reused before anything live is evicted (a window can still fill up with new
        // visitors by chance, hence the small allowance).
        let before = table.evictions
        for index in 0..<500 { _ = table.visit(visitor: generator.next(), now: 10_000, newSession: UInt64(index)) }
        #expect(table.evictions - before <= 5)
    }

    @Test func shortIDsFitInlineStrings() {
        #expect(ShortID.string(0) == "0000000000000")
        #expect(ShortID.string(.max) == "fzzzzzzzzzzzz")
        #expect(ShortID.string(0x1234_5678_9abc_def0).utf8.count == 13)
    }

    @Test func cookiesAndVisitorIDs() {
        #expect(Enricher.cookieValue("a=1; vid=abc-123; b=2", name: "vid") == "abc-123")
        #expect(Enricher.cookieValue("avid=x;vid=y", name: "vid") == "y")
        #expect(Enricher.cookieValue("a=1", name: "vid") == nil)
        #expect(Enricher.acceptableVisitorID("016f2740-6e8c-11ea-9f0b-5d70c66851be"))
        #expect(!Enricher.acceptableVisitorID("<script>"))
        #expect(!Enricher.acceptableVisitorID(""))
        #expect(!Enricher.acceptableVisitorID(Substring(String(repeating: "a", count: 65))))
    }
}

@Suite struct VisitorStateTests {
    func temporaryFolder() throws -> String {
        let path = "/tmp/vantage-visitor-state-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func keysSurviveARestartWithinTheirDayOnly() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = VisitorStateFiles(directory: folder)
        let keys = VisitorKeyring().keys(day: 20_000)
        try files.saveKeys(keys)
        let attributes = try FileManager.default.attributesOfItem(atPath: files.keysPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "owner-only")
        #expect(files.loadKeys(today: 20_000) == keys)
        // The next day the saved key is yesterday's: sessions over midnight go on, today's key is new.
        let nextDay = VisitorKeyring(restored: files.loadKeys(today: 20_001)).keys(day: 20_001)
        #expect(nextDay.yesterday == keys.today && nextDay.today != keys.today)
        #expect(files.loadKeys(today: 20_002) == nil, "a key older than yesterday is of no use")
        #expect(!FileManager.default.fileExists(atPath: files.keysPath), "and is deleted")
    }

    @Test func rotatedKeysAreHandedOutForSavingOnce() {
        let keyring = VisitorKeyring()
        _ = keyring.keys(day: 5)
        #expect(keyring.takeUnsaved()?.day == 5)
        #expect(keyring.takeUnsaved() == nil)
        _ = keyring.keys(day: 5)
        #expect(keyring.takeUnsaved() == nil, "no rotation, nothing to save")
        _ = keyring.keys(day: 6)
        #expect(keyring.takeUnsaved()?.day == 6)
    }

    @Test func openSessionsAreSavedAndRestored() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let files = VisitorStateFiles(directory: folder)
        let table = SessionTable(visitors: 4096, timeoutSeconds: 1800)
        let now: UInt32 = 1_795_564_000
        _ = table.visit(visitor: 1, now: now - 100, newSession: 11, channel: MarketingChannel.organicSearch.rawValue)
        _ = table.visit(visitor: 2, now: now - 1000, newSession: 22)
        _ = table.visit(visitor: 3, now: now - 4000, newSession: 33)
        try files.saveSessions(table.openSessions(now: now))
        let restored = SessionTable(visitors: 4096, timeoutSeconds: 1800)
        // Restarted 20 minutes later: visitor 2's session timed out meanwhile, 3's long before.
        #expect(restored.restore(files.takeSessions(limit: restored.capacity), now: now + 1200) == 1)
        #expect(!FileManager.default.fileExists(atPath: files.sessionsPath), "read once")
        let visit = restored.visit(visitor: 1, now: now + 1200, newSession: 99)
        #expect(visit == SessionTable.Visit(session: 11, isNew: false, channel: MarketingChannel.organicSearch.rawValue))
        #expect(restored.visit(visitor: 2, now: now + 1200, newSession: 98).isNew)
    }

    @Test func aSessionKeepsItsFirstKnownTouch() {
        let table = SessionTable(visitors: 4096, timeoutSeconds: 1800)
        // A stylesheet finished before its page: no channel yet; the page brings it; a later campaign does not
        // change the session's first touch.
        #expect(table.visit(visitor: 7, now: 1000, newSession: 1).channel == 0)
        #expect(table.visit(visitor: 7, now: 1001, newSession: 2, channel: MarketingChannel.email.rawValue).channel == MarketingChannel.email.rawValue)
        #expect(table.visit(visitor: 7, now: 1002, newSession: 3, channel: MarketingChannel.paidSearch.rawValue).channel == MarketingChannel.email.rawValue)
    }
}

@Suite struct CookieVisitorTests {
    static func context() -> EnrichmentContext {
        var visitors = VisitorConfiguration()
        visitors.cookies = true
        return EnrichmentContext(visitors: visitors, clientAddressPolicy: .truncated, geoIP: GeoIPSource(logger: Logger(label: "test")), logger: Logger(label: "test"))
    }

    func event(_ kind: TrackingEvent.Kind, at milliseconds: Int64, referrer: String = "") -> TrackingEvent {
        TrackingEvent(
            id: EventID(high: 1, low: UInt64(milliseconds)), timeMilliseconds: milliseconds, site: "example.com",
            host: "example.com", kind: kind, method: "GET", scheme: "https", target: "/", status: 200, bytesIn: 0,
            bytesOut: 10, durationMicroseconds: 1, referrer: referrer, httpVersion: "HTTP/1.1", clientAddress: "203.0.113.7")
    }

    /// One browser in cookie mode: its first page has no cookie yet (the answer sets one), its stylesheet neither;
    /// the next page returns the cookie. A browser that never returns cookies: only the cookieless id.
    @Test func aBrowserWithoutTheCookieYetIsStillOneVisitor() {
        let enricher = Enricher(context: Self.context())
        let agent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
        let start: Int64 = 1_795_564_000_000
        let issued = enricher.visitorIDForCookie(site: "example.com", clientAddress: "203.0.113.7", userAgent: agent, timeMilliseconds: start)
        var page = event(.pageview, at: start, referrer: "https://www.google.com/")
        var facts = RequestFacts(clientAddress: "203.0.113.7", userAgent: agent, cookie: nil)
        facts.issuedVisitorID = issued
        enricher.enrich(&page, facts: facts)
        var stylesheet = event(.request, at: start + 50)
        enricher.enrich(&stylesheet, facts: RequestFacts(clientAddress: "203.0.113.7", userAgent: agent, cookie: nil))
        var next = event(.pageview, at: start + 60_000, referrer: "https://example.com/")
        var returning = RequestFacts(clientAddress: "203.0.113.7", userAgent: agent, cookie: "vid=\(issued)")
        returning.siteHosts = ["example.com"]
        enricher.enrich(&next, facts: returning)
        #expect(Set([page.visitorID, stylesheet.visitorID, next.visitorID]) == [issued])
        #expect(Set([page.sessionID, stylesheet.sessionID, next.sessionID]).count == 1)
        #expect(page.sessionStart && !stylesheet.sessionStart && !next.sessionStart)
        #expect(page.channel == "Organic Search" && next.channel == "Organic Search", "internal navigation keeps the session's channel")
        #expect(stylesheet.channel.isEmpty && stylesheet.sessionChannel == "Organic Search")
        // The cookie goes on the next day (the cookieless id would change; the cookie's does not).
        var tomorrow = event(.pageview, at: start + 86_400_000)
        enricher.enrich(&tomorrow, facts: RequestFacts(clientAddress: "198.51.100.1", userAgent: agent, cookie: "vid=\(issued)"))
        #expect(tomorrow.visitorID == issued && tomorrow.sessionStart && tomorrow.channel == "Direct")
    }
}
