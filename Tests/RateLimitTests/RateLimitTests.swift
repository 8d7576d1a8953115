import Testing

@testable import RateLimit

@Suite struct RateLimitTests {
    static let second: UInt64 = 1_000_000_000

    @Test func ratesParse() {
        #expect(Rate(parsing: "10/s") == Rate(count: 10, period: Self.second))
        #expect(Rate(parsing: "100 / m", burst: 5)?.burst == 5)
        #expect(Rate(parsing: "10000/d")?.interval == 86_400 * Self.second / 10_000)
        #expect(Rate(parsing: "10/week") == nil && Rate(parsing: "0/s") == nil && Rate(parsing: "ten/s") == nil)
    }

    @Test func aBurstPassesThenOnePerInterval() {
        let policy = Policy(rates: [Rate(count: 10, period: Self.second, burst: 20)])
        var state = KeyState()
        let start: UInt64 = 1_000 * Self.second
        for index in 0..<20 {
            let decision = policy.check(&state, now: start, day: 0)
            #expect(decision.allowed && decision.remaining == 19 - index, "request \(index)")
        }
        let refused = policy.check(&state, now: start, day: 0)
        #expect(!refused.allowed && refused.retryAfter == Self.second / 10 && refused.retryAfterSeconds == 1)
        #expect(state == { var copy = state; _ = policy.check(&copy, now: start, day: 0); return copy }(), "a refusal charges nothing")
        // 100 ms later exactly one more passes; after 2 s the whole burst is back.
        #expect(policy.check(&state, now: start + Self.second / 10, day: 0).allowed)
        #expect(!policy.check(&state, now: start + Self.second / 10, day: 0).allowed)
        let later = start + 3 * Self.second
        #expect((0..<20).allSatisfy { _ in policy.check(&state, now: later, day: 0).allowed })
        #expect(!policy.check(&state, now: later, day: 0).allowed)
    }

    @Test func theSustainedRateIsExact() {
        let policy = Policy(rates: [Rate(count: 100, period: Self.second, burst: 1)])
        var state = KeyState()
        var allowed = 0
        // A request every millisecond for 10 s: 1000/s offered, 100/s allowed.
        for millisecond in 0..<10_000 where policy.check(&state, now: UInt64(millisecond) * 1_000_000, day: 0).allowed {
            allowed += 1
        }
        #expect(allowed == 1000)
    }

    @Test func combinedLimitsChargeAllOrNothing() {
        let policy = Policy(rates: [Rate(count: 10, period: Self.second, burst: 20), Rate(count: 30, period: 60 * Self.second)])
        var state = KeyState()
        var allowed = 0
        for second in 0..<60 {
            for _ in 0..<10 where policy.check(&state, now: UInt64(second) * Self.second, day: 0).allowed { allowed += 1 }
        }
        // The per-second limit alone would allow 20 + 9 × 59 (10 offered a second); the per-minute one (burst 30,
        // then one every 2 s) caps it at 30 + 29.
        #expect(allowed == 59, "the per-minute limit caps what the per-second one allows")
    }

    @Test func dailyQuotasRollOverAtTheUTCDay() {
        let policy = Policy(rates: [], dailyQuota: 3)
        var state = KeyState()
        #expect((0..<3).allSatisfy { _ in policy.check(&state, now: 0, day: 100).allowed })
        let spent = policy.check(&state, now: 0, day: 100, dayLeft: 3600 * Self.second)
        #expect(!spent.allowed && spent.retryAfterSeconds == 3600)
        #expect(policy.check(&state, now: 0, day: 101).allowed, "a new day, a new quota")
        #expect(state.usedToday == 1)
    }

    @Test func theTableStaysBoundedUnderAFloodAndKeepsActiveKeysLimited() {
        let table = LimiterTable(policy: Policy(rates: [Rate(count: 10, period: Self.second, burst: 10)]), capacity: 4096)
        #expect(table.capacity == 4096)
        // An active key spends its burst.
        for _ in 0..<10 { _ = table.check(key: 42, now: 0, day: 0) }
        #expect(!table.check(key: 42, now: 0, day: 0).allowed)
        // A million new keys, one request each, a millisecond apart: their entries go idle after 100 ms and are
        // reused; the table never grows.
        var generator = SystemRandomNumberGenerator()
        for index in 0..<1_000_000 {
            _ = table.check(key: generator.next(), now: UInt64(index) * 1_000_000, day: 0)
        }
        #expect(table.count <= table.capacity)
        #expect(table.evictions < 1_000_000 / 100, "almost every new key reused an idle slot")
        let end = UInt64(1_000_000) * 1_000_000
        // The active key is back to a full burst (its TAT passed long ago), limited again after it.
        #expect((0..<10).allSatisfy { _ in table.check(key: 42, now: end, day: 0).allowed })
        #expect(!table.check(key: 42, now: end, day: 0).allowed)
    }

    @Test func concurrencyIsCountedPerKeyAndReleased() {
        let table = ConcurrencyTable(capacity: 4096)
        #expect((0..<3).allSatisfy { _ in table.acquire(key: 7, limit: 3) == .admitted })
        #expect(table.acquire(key: 7, limit: 3) == .refused, "a fourth request of the same key")
        #expect(table.acquire(key: 8, limit: 3) == .admitted, "another key is not affected")
        #expect(table.usage.keys == 2 && table.usage.inFlight == 4)
        table.release(key: 7)
        #expect(table.acquire(key: 7, limit: 3) == .admitted, "a released request makes room")
        for _ in 0..<3 { table.release(key: 7) }
        table.release(key: 8)
        #expect(table.usage.keys == 0 && table.usage.inFlight == 0, "a key without requests holds no slot")
        table.release(key: 9)  // never admitted: nothing happens
        #expect(table.usage.keys == 0)
    }

    @Test func aFullConcurrencyWindowLetsRequestsThroughUntracked() {
        // 512 slots: 64 shards of 8, so one shard's window is the whole shard. Nine keys of the same shard.
        let table = ConcurrencyTable(capacity: 512)
        let keys = (1...9).map { UInt64($0) }
        #expect(keys.prefix(8).allSatisfy { table.acquire(key: $0, limit: 1) == .admitted })
        #expect(table.acquire(key: keys[8], limit: 1) == .untracked && table.overflows == 1)
        #expect(table.acquire(key: keys[0], limit: 1) == .refused, "tracked keys stay limited")
        table.release(key: keys[8])  // an untracked request releases nothing
        #expect(table.usage.inFlight == 8)
        table.release(key: keys[3])
        #expect(table.acquire(key: keys[8], limit: 1) == .admitted, "a freed slot is used again")
    }
}
