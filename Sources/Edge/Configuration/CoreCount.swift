import Foundation
import NIOCore

/// The number of CPUs this process may run on: the scheduler affinity mask (so `taskset -c 1 vantage` gets one
/// event loop, not one per core of the machine), bounded by NIO's cgroup-aware count.
func availableCores() -> Int {
    #if os(Linux)
    // Glibc does not export sched_getaffinity to Swift; /proc/self/status carries the same mask as hex words.
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
    {
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
        if count > 0 { return min(count, System.coreCount) }
    }
    #endif
    return System.coreCount
}
