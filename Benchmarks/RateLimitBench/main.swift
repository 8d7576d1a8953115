// Nanoseconds and heap allocations per rate-limit check, in process (no network): what a route's limit adds to a
// request. Built in release by Benchmarks/ratelimit.py, which runs it with Benchmarks/alloc_count.c preloaded so
// allocations can be counted; run alone it reports time only.
//
// Each case is what `RouteLimiter.check` does per request: hash the key (SipHash-2-4 of the client address, as the
// edge does) and decide it in the route's table.
import Foundation
import RateLimit
import Tracking

#if canImport(Glibc)
import Glibc
#endif

/// The preloaded allocation counter, if any (`vantage_alloc_count` in alloc_count.c).
let allocationCounter: (@convention(c) () -> UInt64)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "vantage_alloc_count") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) () -> UInt64).self)
}()

func nowNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Runs `body` `iterations` times (after a warm-up) and prints ns and allocations per iteration.
func measure(_ name: String, iterations: Int, _ body: (Int) -> Void) {
    for index in 0..<min(iterations, 100_000) { body(index) }
    let allocationsBefore = allocationCounter?()
    let start = nowNanoseconds()
    for index in 0..<iterations { body(index) }
    let elapsed = nowNanoseconds() - start
    let allocations = allocationCounter.map { Double($0() - allocationsBefore!) / Double(iterations) }
    let perCheck = Double(elapsed) / Double(iterations)
    let label = name.padding(toLength: 52, withPad: " ", startingAt: 0)
    print(label + String(format: "%8.1f ns/check  ", perCheck)
        + (allocations.map { String(format: "%.4f allocations/check", $0) } ?? "allocations not counted"))
}

let iterations = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 5_000_000
let addresses = (0..<4096).map { "203.0.\($0 >> 8).\($0 & 255)" }
var sink: UInt64 = 0
let hashKey: (UInt64, UInt64) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)

func key(_ address: String) -> UInt64 {
    var hasher = SipHash24(key0: hashKey.0, key1: hashKey.1)
    hasher.combineField(address)
    return hasher.finalize()
}

// A limit that never triggers, 4096 known clients: the common case.
let open = LimiterTable(policy: Policy(rates: [Rate(count: 1_000_000, period: 1_000_000_000)]), capacity: 1_000_000)
measure("existing key, 1 rate (hash + check)", iterations: iterations) { index in
    let decision = open.check(key: key(addresses[index & 4095]), now: nowNanoseconds(), day: 1)
    sink &+= UInt64(decision.remaining)
}

let combined = LimiterTable(
    policy: Policy(rates: [Rate(count: 1_000_000, period: 1_000_000_000, burst: 20), Rate(count: 100_000_000, period: 3_600_000_000_000)],
                   dailyQuota: Int(Int32.max)),
    capacity: 1_000_000)
measure("existing key, 2 rates + daily quota (hash + check)", iterations: iterations) { index in
    let decision = combined.check(key: key(addresses[index & 4095]), now: nowNanoseconds(), day: 1)
    sink &+= UInt64(decision.remaining)
}

// Every check refused: the 429 path's decision.
let tight = LimiterTable(policy: Policy(rates: [Rate(count: 1, period: 60_000_000_000)]), capacity: 1_000_000)
measure("existing key over its limit (hash + check)", iterations: iterations) { index in
    let decision = tight.check(key: key(addresses[index & 4095]), now: nowNanoseconds(), day: 1)
    sink &+= decision.retryAfter
}

let inFlight = ConcurrencyTable(capacity: 1_000_000)
measure("concurrency acquire + release (hash once)", iterations: iterations) { index in
    let hashed = key(addresses[index & 4095])
    if inFlight.acquire(key: hashed, limit: 8) == .admitted { inFlight.release(key: hashed) }
}

// A flood: every check a new key in a table a tenth of their number.
/// xorshift64: fresh keys without a system call per key.
var state: UInt64 = 0x9E37_79B9_7F4A_7C15
@MainActor func nextKey() -> UInt64 {
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return state
}
let flooded = LimiterTable(policy: Policy(rates: [Rate(count: 10, period: 1_000_000_000)]), capacity: 100_000)
measure("new key each check, 100k-key table (check only)", iterations: iterations) { _ in
    let decision = flooded.check(key: nextKey(), now: nowNanoseconds(), day: 1)
    sink &+= UInt64(decision.remaining)
}
print("table: \(flooded.count) keys held of \(flooded.capacity), \(flooded.evictions) evicted while active")

measure("hash of the client address alone", iterations: iterations) { index in
    sink &+= key(addresses[index & 4095])
}
// The counter's control: one array per iteration must read as one allocation.
var escaped: [Int] = []
@MainActor @inline(never) func escape(_ array: [Int]) { escaped = array }
measure("control: one array kept (1 allocation expected)", iterations: 100_000) { index in
    escape([index, index])
}
if sink == 42 { print("") }
