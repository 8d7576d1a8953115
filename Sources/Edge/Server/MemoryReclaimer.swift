import Logging
import Metrics
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc

/// glibc's `mallopt` and `malloc_trim`, which the Glibc module does not export.
@_silgen_name("mallopt") private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
@_silgen_name("malloc_trim") private func malloc_trim(_ pad: Int) -> Int32
#endif

/// Gives memory that a burst freed back to the system.
///
/// What stays resident after a flood of connections (measured with `Benchmarks/abuse.py`) is not held by Vantage:
/// `malloc_trim` alone brought a process from 66 MB back to its 40 MB start. glibc keeps what is freed in its
/// per-thread arenas, and its adaptive `mmap` threshold rises after the first large buffer is freed, after which
/// every 128 KB file chunk comes from an arena too (a zero-window attack then left 700 MB resident). So:
/// - at start, fixed thresholds: blocks of 128 KB and more are mapped and unmapped on their own, and a free top of
///   an arena over 128 KB is returned at once;
/// - every 10 s, off the event loops, one `malloc_trim(0)` returns the free pages inside the arenas when the
///   resident size is 8 MB over its floor (the size after start or after the last trim) and either it grew 8 MB
///   since the last trim or a burst is over: open connections fell below half of their peak since then, or the
///   resident size came down 8 MB from its peak by itself (connections of a flood come and go too fast for the
///   count). Under a steady load none of these holds for long, so trims are rare; after a burst, one runs.
final class MemoryReclaimer: Sendable {
    /// Resident size over the floor that is worth a trim.
    static let worthTrimming = 8 << 20

    private struct State {
        /// Resident size after start or after the last trim.
        var floor = 0
        /// Resident size right after the last trim.
        var lastAfter = 0
        /// Most open connections, and the largest resident size, seen since the last trim.
        var peakConnections = 0
        var peakResident = 0
        var ticks = 0
    }

    private let state = Mutex(State())
    private let openConnections: @Sendable () -> Int
    private let trims = Counter(label: "vantage_memory_trims_total")
    private let reclaimed = Counter(label: "vantage_memory_reclaimed_bytes_total")
    private let logger: Logger

    init(openConnections: @escaping @Sendable () -> Int, logger: Logger) {
        self.openConnections = openConnections
        self.logger = logger
    }

    /// Sets the allocator thresholds; call once, before the event loops allocate much.
    static func configureAllocator() {
        #if canImport(Glibc)
        let trimThreshold: Int32 = -1  // M_TRIM_THRESHOLD
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD
        _ = mallopt(mmapThreshold, 128 << 10)
        _ = mallopt(trimThreshold, 128 << 10)
        #endif
    }

    /// Samples the connection count every second on `loop`, and the resident size on `pool`; every tenth second the
    /// decision (and a trim) runs there too.
    func start(on loop: any EventLoop, pool: NIOThreadPool) -> RepeatedTask {
        let resident = Self.residentBytes() ?? 0
        state.withLock {
            $0.floor = resident
            $0.lastAfter = resident
        }
        return loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
            let connections = openConnections()
            let due = state.withLock { state -> Bool in
                state.peakConnections = max(state.peakConnections, connections)
                state.ticks += 1
                return state.ticks % 10 == 0
            }
            pool.submit { _ in
                guard let resident = Self.residentBytes() else { return }
                self.state.withLock { $0.peakResident = max($0.peakResident, resident) }
                if due { self.check(resident: resident, connections: connections) }
            }
        }
    }

    /// One decision: trims when the resident size is well over its floor and grew or a burst ended.
    func check(resident: Int, connections: Int) {
        let worth = state.withLock { state -> Bool in
            if resident < state.floor { state.floor = resident }
            guard resident > state.floor + Self.worthTrimming else { return false }
            let grew = resident > state.lastAfter + Self.worthTrimming
            let burstOver = connections * 2 < state.peakConnections
                || resident + Self.worthTrimming < state.peakResident
            return grew || burstOver
        }
        guard worth else { return }
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
        let after = Self.residentBytes() ?? resident
        state.withLock { state in
            state.lastAfter = after
            state.floor = min(state.floor, after)
            state.peakConnections = connections
            state.peakResident = after
        }
        trims.increment()
        if resident > after { reclaimed.increment(by: resident - after) }
        logger.debug("memory: trimmed the allocator, resident \(resident >> 20) MB -> \(after >> 20) MB")
    }

    /// The process's resident size from `/proc/self/statm` (one read; nil where there is no such file).
    static func residentBytes() -> Int? {
        #if canImport(Glibc)
        let descriptor = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        // "size resident shared ..." in pages.
        let fields = buffer[..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return nil
        #endif
    }
}
