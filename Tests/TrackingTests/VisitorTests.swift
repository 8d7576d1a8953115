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
