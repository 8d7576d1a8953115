import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The durable queue between the request path and ClickHouse: append-only segment files in one folder.
///
/// Each event loop appends through its own ``SpoolAppender`` into a preallocated, memory-mapped segment: a record is
/// in the kernel's page cache the moment it is written, before the response it describes is flushed, so killing
/// Vantage loses nothing that was answered; `fdatasync` at each batch interval and at sealing covers power loss as
/// the policy says. Full or old segments are sealed (trimmed to their records) and wait for the shipper, which
/// removes each only after every record in it was acknowledged. Opening the spool recovers it: a torn or corrupt
/// tail is cut at the last good record (and logged), and everything still on disk is shipped again.
///
/// The spool's file work (sealing, syncing, preparing the next segment) runs on its own thread; an event loop only
/// copies bytes into a mapping and, once per segment, swaps in a segment prepared ahead.
public final class Spool: Sendable {
    /// When written records are forced to disk.
    public enum SyncPolicy: String, Sendable, Equatable {
        /// `fdatasync` every batch interval and when a segment is sealed: a power cut loses at most one interval.
        case batch
        /// Leave it to the kernel (survives a crash of Vantage, not of the machine).
        case never
    }

    /// Spool settings.
    public struct Configuration: Sendable, Equatable {
        public var directory: String
        /// A segment is sealed once it would pass this size.
        public var segmentSize: Int
        /// All segments together stay under this; records beyond it are refused and counted.
        public var quota: Int
        public var sync: SyncPolicy
        /// How often active segments are synced (policy `batch`) and sealed once they hold records.
        public var batchInterval: TimeAmount

        public init(
            directory: String, segmentSize: Int = 16 << 20, quota: Int = 1 << 30, sync: SyncPolicy = .batch,
            batchInterval: TimeAmount = .milliseconds(200)
        ) {
            self.directory = directory
            self.segmentSize = segmentSize
            self.quota = quota
            self.sync = sync
            self.batchInterval = batchInterval
        }
    }

    /// What opening the spool found.
    public struct Recovery: Sendable, Equatable {
        public var segments = 0
        public var records = 0
        /// Bytes cut from torn or corrupt tails.
        public var truncatedBytes = 0
        public var problems: [String] = []
    }

    /// A sealed segment, ready to ship.
    public struct Segment: Sendable, Hashable, Comparable {
        public let sequence: UInt64
        public let path: String
        public let bytes: Int
        public let records: Int
        /// Wall-clock milliseconds of the segment's first record (for recovered segments: of the file's last change).
        public let firstRecordMilliseconds: Int64

        public static func < (lhs: Segment, rhs: Segment) -> Bool { lhs.sequence < rhs.sequence }
        /// A segment is its file: a rewritten segment (an erasure) is the same one with fewer records.
        public static func == (lhs: Segment, rhs: Segment) -> Bool { lhs.sequence == rhs.sequence }
        public func hash(into hasher: inout Hasher) { hasher.combine(sequence) }
    }

    public struct SpoolError: Error, CustomStringConvertible {
        public var description: String
        /// Another process (a running Vantage) holds the folder.
        public var inUse = false
    }

    private struct State {
        var sealed: [Segment] = []
        var nextSequence: UInt64 = 1
        /// Segments prepared ahead for appenders.
        var spares: [MappedSegment] = []
        /// Segments appenders are writing, for the periodic sync.
        var active: [ObjectIdentifier: MappedSegment] = [:]
        var sealedRecords = 0
        var closed = false
    }

    public let configuration: Configuration
    public let recovery: Recovery
    private let state: Mutex<State>
    /// Bytes of every segment plus what appenders reserved and have not used yet. Appenders reserve in chunks, so
    /// the hot path touches this shared counter once per chunk, not per record.
    private let reservedBytes = Atomic<Int>(0)
    private let folderLock: FolderLock
    /// Set when the folder's lock file was removed or replaced while running: nothing more is written here.
    private let lockLost = Atomic<Bool>(false)
    private let worker: NIOThreadPool
    let logger: Logger
    /// Spares kept ready: one per appender is enough when sealing keeps up.
    private let spareTarget: Int

    /// Opens (creating if needed) the spool folder, takes its lock, and recovers every segment in it.
    public init(configuration: Configuration, appenders: Int = 1, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        spareTarget = max(1, appenders)
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        folderLock = try Self.lock(directory: configuration.directory)
        var recovery = Recovery()
        var recoveredBytes = 0
        var state = State()
        do {
            let names = try FileManager.default.contentsOfDirectory(atPath: configuration.directory)
            // An erasure interrupted before its rename leaves its temporary copy; the original is whole.
            for name in names where name.hasSuffix(".erasing") { unlink(configuration.directory + "/" + name) }
            let sequences = names.compactMap(Self.sequence(ofFileNamed:)).sorted()
            for sequence in sequences {
                let path = Self.path(configuration.directory, sequence)
                guard let segment = try Self.recover(path: path, sequence: sequence, into: &recovery, logger: logger) else {
                    unlink(path)
                    continue
                }
                state.sealed.append(segment)
                recoveredBytes += segment.bytes
                state.sealedRecords += segment.records
            }
            state.nextSequence = (sequences.last ?? 0) + 1
        } catch {
            folderLock.release()
            throw error
        }
        self.recovery = recovery
        reservedBytes.store(recoveredBytes, ordering: .relaxed)
        self.state = Mutex(state)
        worker = NIOThreadPool(numberOfThreads: 1)
        worker.start()
    }

    /// Finishes pending seals, stops the spool's thread and releases the folder lock. Appenders must be closed
    /// first; call once, from outside the spool's thread.
    public func close() {
        drain()
        try? worker.syncShutdownGracefully()
        folderLock.release()
    }

    /// One Vantage per spool folder: a second one would recover (and cut) segments the first is writing.
    private static func lock(directory: String) throws -> FolderLock {
        do {
            return try FolderLock(directory: directory, fileName: "spool.lock", mode: 0o640)
        } catch .busy {
            throw SpoolError(description: "the spool folder \(directory) is in use by another Vantage process", inUse: true)
        } catch .cannotOpen(let reason) {
            throw SpoolError(description: reason)
        }
    }

    /// Whether the folder is still this process's: false once its lock file was removed or replaced (then appenders
    /// drop events instead of writing segments another process may be recovering, cutting or shipping).
    public var isOwned: Bool { !lockLost.load(ordering: .relaxed) }

    /// The error `/health` shows while the folder is not this process's any more.
    public var ownershipProblem: String? {
        isOwned ? nil : "the lock file \(folderLock.path) was removed or replaced while running; no events are written to \(configuration.directory) until Vantage restarts"
    }

    /// Checks the folder lock on the spool's thread (the owner calls it every sync interval); logs once when it is lost.
    public func checkOwnership() {
        worker.submit { [self] _ in
            guard isOwned, !folderLock.isIntact() else { return }
            lockLost.store(true, ordering: .relaxed)
            logger.error("spool: \(ownershipProblem ?? ""); another process may be using the folder (vantage_events_dropped_total{reason=\"spool_lost\"})")
        }
    }

    /// Scans one segment left by an earlier run: cuts a damaged tail, trims the unwritten rest of a preallocated
    /// segment, and returns it sealed (nil when nothing in it is worth keeping).
    private static func recover(path: String, sequence: UInt64, into recovery: inout Recovery, logger: Logger) throws -> Segment? {
        let data = try readFile(path)
        if data.readableBytes == 0 { return nil }  // created, then a crash before its magic
        let scan = SpoolRecordFormat.scan(data)
        if let problem = scan.problem {
            let cut = data.readableBytes - scan.validEnd
            recovery.truncatedBytes += cut
            recovery.problems.append("\(path): \(problem); \(cut) bytes cut")
            logger.warning("spool: \(path): \(problem); cutting \(cut) bytes after the last good record")
        }
        if scan.records.isEmpty { return nil }
        if scan.validEnd < data.readableBytes {
            guard truncate(path, off_t(scan.validEnd)) == 0 else {
                throw SpoolError(description: "cannot truncate \(path): \(String(cString: strerror(errno)))")
            }
        }
        recovery.segments += 1
        recovery.records += scan.records.count
        var info = stat()
        stat(path, &info)
        return Segment(
            sequence: sequence, path: path, bytes: scan.validEnd, records: scan.records.count,
            firstRecordMilliseconds: Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec / 1_000_000))
    }

    // MARK: - Figures

    /// Bytes on disk and reserved by appenders, all segments together.
    public var usedBytes: Int { reservedBytes.load(ordering: .relaxed) }

    /// Sealed segments in the order they were sealed (recovered ones first).
    public var sealedSegments: [Segment] { state.withLock { $0.sealed } }

    /// How many sealed segments wait for the shipper.
    public var sealedSegmentCount: Int { state.withLock { $0.sealed.count } }

    /// Records in sealed segments.
    public var sealedRecords: Int { state.withLock { $0.sealedRecords } }

    /// Wall-clock milliseconds of the oldest record not yet shipped (sealed segments only), if any.
    public var oldestSealedMilliseconds: Int64? { state.withLock { $0.sealed.map(\.firstRecordMilliseconds).min() } }

    // MARK: - Appender support

    /// Takes up to `amount` bytes of quota, all or nothing.
    func reserve(_ amount: Int) -> Bool {
        var current = reservedBytes.load(ordering: .relaxed)
        while true {
            if current + amount > configuration.quota { return false }
            let (exchanged, original) = reservedBytes.compareExchange(
                expected: current, desired: current + amount, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Gives back quota (an appender's unused reservation, a removed segment).
    func release(_ amount: Int) {
        reservedBytes.subtract(amount, ordering: .relaxed)
    }

    /// Asks the spool's thread to fault in the next window of `segment` ahead of its appender (see
    /// ``MappedSegment/prefaultWindow``). Called on the appender's loop; the request is queued before any later
    /// seal of the segment on the same serial thread, so the mapping is still there when it runs.
    func prefaultAhead(_ segment: MappedSegment) {
        guard let range = segment.claimPrefault() else { return }
        worker.submit { _ in segment.prefault(range) }
    }

    /// A fresh mapped segment: a spare prepared on the spool's thread when there is one, else made right here.
    func takeSegment() throws -> MappedSegment {
        let spare = state.withLock { state -> MappedSegment? in state.spares.popLast() }
        let segment = try spare ?? makeSegment()
        state.withLock { $0.active[ObjectIdentifier(segment)] = segment }
        worker.submit { [self] _ in refillSpares() }
        return segment
    }

    /// Hands a segment an appender filled (or aged) to the spool's thread, which trims, syncs and lists it.
    func seal(_ segment: MappedSegment, firstRecordMilliseconds: Int64) {
        worker.submit { [self] _ in
            state.withLock { _ = $0.active.removeValue(forKey: ObjectIdentifier(segment)) }
            segment.seal(sync: configuration.sync == .batch, logger: logger)
            guard segment.records > 0 else {
                unlink(segment.path)
                release(segment.length)
                return
            }
            let entry = Segment(
                sequence: segment.sequence, path: segment.path, bytes: segment.length, records: segment.records,
                firstRecordMilliseconds: firstRecordMilliseconds)
            state.withLock { state in
                // Listed in sealing order: one appender's segments stay in the order they were written.
                state.sealed.append(entry)
                state.sealedRecords += entry.records
            }
        }
    }

    private func makeSegment() throws -> MappedSegment {
        let sequence = state.withLock { state -> UInt64 in
            defer { state.nextSequence += 1 }
            return state.nextSequence
        }
        return try MappedSegment(path: Self.path(configuration.directory, sequence), sequence: sequence, capacity: configuration.segmentSize)
    }

    private func refillSpares() {
        while state.withLock({ !$0.closed && $0.spares.count < spareTarget }) {
            do {
                let segment = try makeSegment()
                // Its first windows are faulted in here, off the loop that will write them.
                if let range = segment.claimPrefault() { segment.prefault(range) }
                let kept = state.withLock { state -> Bool in
                    guard !state.closed else { return false }
                    state.spares.append(segment)
                    return true
                }
                if !kept { segment.discard() }
            } catch {
                logger.error("spool: cannot prepare a segment: \(error)")
                return
            }
        }
    }

    /// Syncs what appenders wrote since the last sync (policy `batch`); the owner calls it every batch interval.
    public func syncActive() {
        guard configuration.sync == .batch else { return }
        worker.submit { [self] _ in
            let active = state.withLock { Array($0.active.values) }
            for segment in active { segment.sync() }
        }
    }

    /// Waits until every seal handed over so far is done, then drops the spares (shutdown, after appenders closed).
    public func drain() {
        let done = DispatchSemaphore(value: 0)
        worker.submit { [self] _ in
            let spares = state.withLock { state -> [MappedSegment] in
                state.closed = true
                defer { state.spares = [] }
                return state.spares
            }
            for spare in spares { spare.discard() }
            done.signal()
        }
        done.wait()
    }

    // MARK: - Shipping

    /// Calls `body` with each record of a sealed segment, in place. Checksums are not computed again: a sealed
    /// segment was either written by this process or verified record by record when the spool was opened.
    public func forEachRecord(of segment: Segment, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let data = try Self.readFile(segment.path)
        try data.withUnsafeReadableBytes { bytes in
            var offset = SpoolRecordFormat.magic.count
            while offset + SpoolRecordFormat.recordHeaderSize <= bytes.count {
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let start = offset + SpoolRecordFormat.recordHeaderSize
                guard length > 0, start + length <= bytes.count else { break }  // the zero rest, or a short file
                try body(UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]))
                offset = start + length
            }
        }
    }

    /// Deletes a segment whose every record was acknowledged.
    public func remove(_ segment: Segment) throws {
        guard unlink(segment.path) == 0 || errno == ENOENT else {
            throw SpoolError(description: "cannot delete \(segment.path): \(String(cString: strerror(errno)))")
        }
        let removed = state.withLock { state -> Segment? in
            guard let index = state.sealed.firstIndex(of: segment) else { return nil }
            state.sealedRecords -= state.sealed[index].records
            return state.sealed.remove(at: index)
        }
        if let removed { release(removed.bytes) }
    }

    // MARK: - Erasure

    /// Rewrites every sealed segment without the records `drop` selects (a visitor's erasure), each through a
    /// temporary file, fsync and rename, so a crash leaves either version whole. Returns how many records went.
    /// Open segments must be sealed first (``EventRecorder/sealNow()`` on each loop, then ``drain()``-like
    /// ordering through the spool's thread, which ``TrackingPipeline/erase(visitorID:)`` does).
    public func eraseRecords(where drop: (UnsafeRawBufferPointer) -> Bool) throws -> Int {
        var dropped = 0
        for segment in sealedSegments {
            guard let rewritten = try Self.rewrite(path: segment.path, dropping: drop) else { continue }
            dropped += rewritten.dropped
            let shrunk = state.withLock { state -> Int in
                guard let index = state.sealed.firstIndex(of: segment) else { return 0 }
                let old = state.sealed[index]
                state.sealed[index] = Segment(
                    sequence: old.sequence, path: old.path, bytes: rewritten.bytes, records: old.records - rewritten.dropped,
                    firstRecordMilliseconds: old.firstRecordMilliseconds)
                state.sealedRecords -= rewritten.dropped
                return old.bytes - rewritten.bytes
            }
            release(shrunk)
        }
        return dropped
    }

    /// Erasure in a folder no process holds (`vantage erase` while Vantage is stopped): takes the folder lock for
    /// the duration and rewrites every segment file. Throws when a running Vantage holds the lock.
    public static func eraseRecords(inDirectory directory: String, where drop: (UnsafeRawBufferPointer) -> Bool) throws -> Int {
        let folderLock = try lock(directory: directory)
        defer { folderLock.release() }
        var dropped = 0
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        for sequence in names.compactMap(Self.sequence(ofFileNamed:)).sorted() {
            dropped += try rewrite(path: path(directory, sequence), dropping: drop)?.dropped ?? 0
        }
        return dropped
    }

    /// Copies the good records of a segment file that `drop` does not select into a new file in its place; nil
    /// when nothing was dropped (the file is left alone).
    static func rewrite(path: String, dropping drop: (UnsafeRawBufferPointer) -> Bool) throws -> (bytes: Int, dropped: Int)? {
        let data = try readFile(path)
        var kept = ByteBufferAllocator().buffer(capacity: data.readableBytes)
        // Records are copied with their checksums: the copy keeps the original's magic (its version's checksum).
        kept.writeBytes(data.readableBytesView.prefix(SpoolRecordFormat.magic.count))
        var dropped = 0
        data.withUnsafeReadableBytes { bytes in
            var offset = SpoolRecordFormat.magic.count
            while offset + SpoolRecordFormat.recordHeaderSize <= bytes.count {
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let start = offset + SpoolRecordFormat.recordHeaderSize
                guard length > 0, start + length <= bytes.count else { break }
                let record = UnsafeRawBufferPointer(rebasing: bytes[start..<start + length])
                if drop(record) {
                    dropped += 1
                } else {
                    kept.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<start + length]))
                }
                offset = start + length
            }
        }
        guard dropped > 0 else { return nil }
        do {
            try FileReplacement.replace(path, with: Array(kept.readableBytesView), temporarySuffix: ".erasing")
        } catch {
            throw SpoolError(description: error.description)
        }
        return (kept.readableBytes, dropped)
    }

    /// Runs `body` on the spool's thread after every seal handed over before this call (erasure ordering).
    func afterPendingSeals<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            worker.submit { _ in continuation.resume(with: Result { try body() }) }
        }
    }

    // MARK: - Files

    static func path(_ directory: String, _ sequence: UInt64) -> String {
        let digits = String(sequence)
        return directory + "/segment-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".vspool"
    }

    /// The sequence number in a segment's file name.
    public static func sequence(ofFileNamed name: String) -> UInt64? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".vspool") else { return nil }
        return UInt64(name.dropFirst("segment-".count).dropLast(".vspool".count))
    }

    /// A whole file in one buffer, read with one `pread` loop (no intermediate `Data`).
    static func readFile(_ path: String) throws -> ByteBuffer {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SpoolError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw SpoolError(description: "cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        var failure: Int32 = 0
        while buffer.readableBytes < size {
            let done = buffer.readableBytes
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { bytes -> Int in
                let count = pread(descriptor, bytes.baseAddress, min(bytes.count, size - done), off_t(done))
                if count < 0 { failure = errno }
                return max(0, count)
            }
            if count == 0 {
                if failure == EINTR { continue }
                if failure != 0 { throw SpoolError(description: "cannot read \(path): \(String(cString: strerror(failure)))") }
                break  // the file got shorter (trimmed at sealing)
            }
        }
        return buffer
    }
}

/// One segment file, preallocated to its capacity and mapped shared, so stores into it land in the page cache.
///
/// Written by one appender on one event loop; synced by the spool's thread, which only reads the descriptor. The
/// mapping and descriptor live as long as the object.
final class MappedSegment: @unchecked Sendable {
    let path: String
    let sequence: UInt64
    let capacity: Int
    private let descriptor: Int32
    private var base: UnsafeMutableRawPointer?
    /// Bytes written so far (the magic included). Written on the appender's loop; read by the spool's thread only
    /// after the hand-off in ``Spool/seal(_:firstRecordMilliseconds:)``.
    var length: Int
    var records = 0
    /// End of the part already faulted in or asked for (appender's loop only, until the hand-off for sealing).
    private var prefaultedUpTo = 0
    /// ``length`` as the appender last published it, for the spool's thread's syncs (relaxed: a sync covers what
    /// was appended before it read this; what comes after is the next sync's).
    private let publishedLength: Atomic<Int>
    /// What the last sync covered, and the end of what the spool's thread faulted in (spool's thread only).
    private var syncedLength = 0
    private var faultedInUpTo = 0

    /// Pages are faulted in on the spool's thread this many bytes at a time. A first store into a page of a fresh
    /// shared file mapping is a page fault (page-cache page, zeroing, the filesystem's `page_mkwrite`): done on
    /// the loop, it cost about 0.3 µs a request, and a stall now and then at the tail.
    static let prefaultWindow = 128 << 10
    /// How far ahead of the appender pages are kept faulted in: two windows, so the spool's thread stays at least
    /// a window ahead of the loop. Small on purpose: the periodic `fdatasync` writes faulted-in pages back as
    /// zeros, and a page written back before the loop reaches it faults again (cheaply) on the loop's first store.
    static let prefaultLead = 2 * prefaultWindow

    init(path: String, sequence: UInt64, capacity: Int) throws {
        self.path = path
        self.sequence = sequence
        self.capacity = capacity
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw Spool.SpoolError(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        // Blocks are allocated now (not on a page fault on the event loop), so a full disk shows up here.
        let allocated = posix_fallocate(descriptor, 0, off_t(capacity))
        if allocated != 0 && ftruncate(descriptor, off_t(capacity)) != 0 {
            Glibc.close(descriptor)
            unlink(path)
            throw Spool.SpoolError(description: "cannot size \(path): \(String(cString: strerror(allocated)))")
        }
        let mapped = mmap(nil, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            Glibc.close(descriptor)
            unlink(path)
            throw Spool.SpoolError(description: "cannot map \(path): \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
        base = mapped
        // No readahead on faults: the first write to a fresh mapping would otherwise fill the device's whole
        // readahead window (8 MB here) with zeroed page cache in one go, tens of milliseconds of kernel time that
        // the event loop sharing the core waits out (its p99 rose from 3 to 45 ms). Page by page, each fault is a
        // few microseconds.
        _ = madvise(mapped, capacity, MADV_RANDOM)
        SpoolRecordFormat.magic.withUnsafeBytes { mapped.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        length = SpoolRecordFormat.magic.count
        publishedLength = Atomic(length)
    }

    deinit {
        if let base { munmap(base, capacity) }
        close(descriptor)
    }

    /// Room left for framed records.
    var available: Int { capacity - length }

    /// Whether the appender came within ``prefaultLead`` of what is faulted in (and the segment has more).
    @inline(__always)
    var wantsPrefault: Bool { length &+ Self.prefaultLead > prefaultedUpTo && prefaultedUpTo < capacity }

    /// What to fault in next (whole windows up to ``prefaultLead`` past what was written), marked as asked for;
    /// nil when that is done already or the segment ends.
    func claimPrefault() -> Range<Int>? {
        let target = min(capacity, (length + Self.prefaultLead + Self.prefaultWindow - 1) / Self.prefaultWindow * Self.prefaultWindow)
        guard prefaultedUpTo < target else { return nil }
        defer { prefaultedUpTo = target }
        return prefaultedUpTo..<target
    }

    /// How many bytes of the pages `range` touches are in the page cache (`mincore`), for tests of the prefaulting.
    func residentBytes(in range: Range<Int>) -> Int {
        guard let base else { return 0 }
        let page = Self.pageSize
        let start = range.lowerBound / page * page
        var flags = [UInt8](repeating: 0, count: (range.upperBound - start + page - 1) / page)
        guard mincore(base + start, range.upperBound - start, &flags) == 0 else { return 0 }
        return flags.reduce(0) { $0 + ($1 & 1 == 1 ? page : 0) }
    }

    /// Faults `range` in as if written, without changing its bytes (`MADV_POPULATE_WRITE`, Linux 5.14). On an
    /// older kernel the call fails and the loop's own stores fault the pages in, as before. On the spool's thread
    /// (or a test's).
    ///
    /// The window's pages are first brought into the page cache with `POSIX_FADV_WILLNEED`, which reads exactly
    /// that range several pages at a time, where faulting them in through the appender's mapping (no readahead,
    /// see `init`) takes them one 4 KB page at a time: about 2.9 against 3.5 µs of kernel time a page here. A
    /// read-only second mapping did the batching before (`MADV_POPULATE_READ`, 1.4 µs a page), but a fault there
    /// reads around the device's whole readahead window (8 MB on this machine's disk): 1.4 to 14 ms of zeroing in
    /// one window, which the event loop sharing the core waited out; a window now takes 0.1 to 0.2 ms.
    func prefault(_ range: Range<Int>) {
        #if os(Linux)
        guard let base else { return }
        _ = posix_fadvise(descriptor, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_WILLNEED)
        _ = madvise(base + range.lowerBound, range.count, MADV_POPULATE_WRITE)
        faultedInUpTo = max(faultedInUpTo, range.upperBound)
        #endif
    }

    /// Copies one framed record in. The caller checked ``available``.
    @inline(__always)
    func append(_ payload: ByteBuffer) {
        SpoolRecordFormat.write(payload, to: base! + length)
        length += SpoolRecordFormat.framedSize(payload.readableBytes)
        records += 1
        publishedLength.store(length, ordering: .relaxed)
    }

    /// Forces what was appended to disk (nothing to do when nothing was), on the spool's thread.
    ///
    /// Writing pages back write-protects them, the zero pages faulted in ahead of the appender included, so the
    /// appender's next store into each would fault again on its event loop (ext4's `page_mkwrite`: about 0.4 µs a
    /// request under load, and a journal wait at the tail now and then). They are faulted back in here, as far
    /// ahead as the appender went since the last sync (twice that, and at most what was faulted in before): a busy
    /// loop finds its lead writable, and a quiet one does not have zero pages rewritten at every interval.
    func sync() {
        let written = publishedLength.load(ordering: .relaxed)
        guard written != syncedLength else { return }
        _ = fdatasync(descriptor)
        let page = MappedSegment.pageSize
        let start = written / page * page
        let end = min(faultedInUpTo, written + 2 * (written - syncedLength) + page)
        syncedLength = written
        if end > start { prefault(start..<end) }
    }

    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Unmaps, trims the file to what was written and syncs it (per the policy).
    func seal(sync: Bool, logger: Logger) {
        if let base { munmap(base, capacity) }
        base = nil
        if ftruncate(descriptor, off_t(length)) != 0 {
            // The zero tail stays; a reader treats it as the end of the records, so nothing is lost.
            logger.warning("spool: cannot trim \(path): \(String(cString: strerror(errno)))")
        }
        if sync { _ = fdatasync(descriptor) }
    }

    /// Deletes a spare that was never used.
    func discard() {
        unlink(path)
    }
}
