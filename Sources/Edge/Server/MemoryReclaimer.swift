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
/// - every 10 s, off the event loops, when the resident size grew more than 16 MB since the last look, one
///   `malloc_trim(0)` returns the free pages inside the arenas. Under a steady load the resident size is live memory
///   and does not keep growing, so this runs rarely; after a burst it runs once.
final class MemoryReclaimer: Sendable {
    /// Growth of the resident size, since the last trim, that is worth a trim.
    static let growthWorthTrimming = 16 << 20

    private let lastResident = Atomic<Int>(0)
    private let trims = Counter(label: "vantage_memory_trims_total")
    private let reclaimed = Counter(label: "vantage_memory_reclaimed_bytes_total")
    private let logger: Logger

    init(logger: Logger) {
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

    /// Starts the periodic check on `loop`; the trim itself runs on `pool`.
    func start(on loop: any EventLoop, pool: NIOThreadPool) -> RepeatedTask {
        lastResident.store(Self.residentBytes() ?? 0, ordering: .relaxed)
        return loop.scheduleRepeatedTask(initialDelay: .seconds(10), delay: .seconds(10)) { [self] _ in
            pool.submit { _ in self.check() }
        }
    }

    /// One look: trims when the resident size grew enough since the last trim.
    func check() {
        guard let resident = Self.residentBytes() else { return }
        let last = lastResident.load(ordering: .relaxed)
        guard resident > last + Self.growthWorthTrimming else {
            // Shrinking on its own (connections closed, big blocks unmapped) moves the reference down.
            if resident < last { lastResident.store(resident, ordering: .relaxed) }
            return
        }
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
        let after = Self.residentBytes() ?? resident
        lastResident.store(after, ordering: .relaxed)
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
