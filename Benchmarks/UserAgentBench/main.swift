// What classifying a user agent the cache has never seen costs the event loop, in process: every agent read from
// standard input (one a line) is classified once, uncached, with the lists Vantage loads at start; prints the mean,
// median, p99 and worst time per agent, and the worst agents. Built in release by Benchmarks/enrichment.py.
//
// Usage: ua-bench [regexes.yaml] [crawler-user-agents.json] < agents.txt
import Foundation
import Tracking

let arguments = CommandLine.arguments
let rules = try UserAgentRules(
    regexesPath: arguments.count > 1 ? arguments[1] : UserAgentRules.defaultRegexesPath,
    crawlersPath: arguments.count > 2 ? arguments[2] : UserAgentRules.defaultCrawlersPath)
let scratch = UserAgentRules.Scratch(for: rules)
print(rules.summary)
var agents: [String] = []
while let line = readLine(strippingNewline: true) { if !line.isEmpty { agents.append(line) } }
guard !agents.isEmpty else {
    FileHandle.standardError.write(Data("no user agents on standard input\n".utf8))
    exit(64)
}
// Warm the code paths once, then time every agent.
for agent in agents.prefix(1000) { _ = UserAgent(parsing: agent, rules: rules, scratch: scratch) }
var timings: [(nanoseconds: UInt64, agent: String)] = []
timings.reserveCapacity(agents.count)
var bots = 0
for agent in agents {
    let start = DispatchTime.now().uptimeNanoseconds
    let parsed = UserAgent(parsing: agent, rules: rules, scratch: scratch)
    timings.append((DispatchTime.now().uptimeNanoseconds - start, agent))
    if parsed.isBot { bots += 1 }
}
var candidates = (browser: 0, os: 0, crawler: 0)
let listsOnly = ProcessInfo.processInfo.environment["VANTAGE_UA_LISTS_ONLY"] != nil
for agent in agents where !listsOnly {
    let counts = rules.candidateCounts(agent, scratch: scratch)
    candidates = (candidates.browser + counts.browser, candidates.os + counts.os, candidates.crawler + counts.crawler)
}
let sorted = timings.map(\.nanoseconds).sorted()
func microseconds(_ value: UInt64) -> String { String(format: "%.1f µs", Double(value) / 1000) }
let mean = sorted.reduce(0, +) / UInt64(sorted.count)
print("user agents: \(agents.count), bots: \(bots)")
print("per agent, uncached: mean \(microseconds(mean)), median \(microseconds(sorted[sorted.count / 2])), "
    + "p99 \(microseconds(sorted[sorted.count * 99 / 100])), worst \(microseconds(sorted.last!))")
print("over 50 µs: \(sorted.filter { $0 > 50_000 }.count)")
print(String(format: "patterns tried per agent after the prefilter: browser %.1f of \(347), OS %.1f, crawler %.2f",
             Double(candidates.browser) / Double(agents.count), Double(candidates.os) / Double(agents.count),
             Double(candidates.crawler) / Double(agents.count)))
// The token rules alone (no lists), for comparison; skipped under a profiler (VANTAGE_UA_LISTS_ONLY).
if !listsOnly {
    let tokenStart = DispatchTime.now().uptimeNanoseconds
    for agent in agents { _ = UserAgent(parsing: agent) }
    print("token rules alone: mean \(microseconds((DispatchTime.now().uptimeNanoseconds - tokenStart) / UInt64(agents.count)))")
}
for slow in timings.sorted(by: { $0.nanoseconds > $1.nanoseconds }).prefix(5) {
    print("  \(microseconds(slow.nanoseconds))  \(slow.agent.prefix(140))")
}
