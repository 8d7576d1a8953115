import Foundation
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The durable queue between the request path and ClickHouse: append-only segment files in one folder.
///
/// A writer appends batches of records to the active segment (one `write` per batch, `fsync` as the policy says);
/// a full segment is sealed and a new one started. A shipper reads sealed segments and removes each one only after
/// every record in it was acknowledged. Opening the spool recovers it: a torn or corrupt tail is cut off at the last
/// good record (and logged), and every segment still on disk is there to be shipped again, since nothing removes a
/// segment before its acknowledgement.
///
/// Blocking file I/O: use it from a writer or shipper thread, never from an event loop. Thread-safe.
public final class Spool: Sendable {
    /// When appended records are forced to disk.
    public enum SyncPolicy: Sendable, Equatable {
        /// `fsync` after every appended batch: an acknowledged append survives a power cut.
        case everyBatch
        /// Leave it to the kernel (survives a crash of Vantage, not of the machine).
        case never
    }

    /// Spool settings.
    public struct Configuration: Sendable, Equatable {
        public var directory: String
        /// A segment is sealed once it holds this many bytes.
        public var segmentSize: Int
        /// All segments together stay under this; records beyond it are refused (and counted by the caller).
        public var quota: Int
        public var sync: SyncPolicy

        public init(directory: String, segmentSize: Int = 16 << 20, quota: Int = 1 << 30, sync: SyncPolicy = .everyBatch) {
            self.directory = directory
            self.segmentSize = segmentSize
            self.quota = quota
            self.sync = sync
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

    /// The outcome of one append.
    public struct AppendResult: Sendable, Equatable {
        public var written: Int
        /// Records refused because the quota was reached.
        public var refused: Int
    }

    /// A sealed segment, ready to ship.
    public struct Segment: Sendable, Hashable, Comparable {
        public let sequence: UInt64
        public let path: String

        public static func < (lhs: Segment, rhs: Segment) -> Bool { lhs.sequence < rhs.sequence }
    }

    public struct SpoolError: Error, CustomStringConvertible {
        public var description: String
    }

    private struct State {
        var sealed: [Segment] = []
        var sizes: [UInt64: Int] = [:]
        /// The sum of `sizes`, kept as segments come and go.
        var sealedBytes = 0
        var activeSequence: UInt64 = 0
        var activeDescriptor: Int32 = -1
        var activeSize = 0
        var activeRecords = 0
    }

    public let configuration: Configuration
    public let recovery: Recovery
    private let state: Mutex<State>
    private let logger: Logger

    /// Opens (creating if needed) the spool folder and recovers every segment in it.
    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        var recovery = Recovery()
        var state = State()
        let names = try FileManager.default.contentsOfDirectory(atPath: configuration.directory)
        let sequences = names.compactMap(Self.sequence(ofFileNamed:)).sorted()
        for sequence in sequences {
            let path = Self.path(configuration.directory, sequence)
            let data = try Self.readFile(path)
            if data.readableBytes == 0 {
                // Created, then a crash before its first byte.
                unlink(path)
                continue
            }
            let scan = SpoolRecordFormat.scan(data)
            if let problem = scan.problem {
                let cut = data.readableBytes - scan.validEnd
                recovery.truncatedBytes += cut
                recovery.problems.append("\(path): \(problem); \(cut) bytes cut")
                logger.warning("spool: \(path): \(problem); cutting \(cut) bytes after the last good record")
            }
            if scan.records.isEmpty {
                unlink(path)
                continue
            }
            if scan.validEnd < data.readableBytes {
                guard truncate(path, off_t(scan.validEnd)) == 0 else {
                    throw SpoolError(description: "cannot truncate \(path): \(String(cString: strerror(errno)))")
                }
            }
            recovery.segments += 1
            recovery.records += scan.records.count
            state.sealed.append(Segment(sequence: sequence, path: path))
            state.sizes[sequence] = scan.validEnd
            state.sealedBytes += scan.validEnd
        }
        // Appends after a restart go to a new segment; every recovered one is sealed and waits for the shipper.
        state.activeSequence = (sequences.last ?? 0) + 1
        self.recovery = recovery
        self.state = Mutex(state)
    }

    deinit {
        state.withLock { state in
            if state.activeDescriptor >= 0 { close(state.activeDescriptor) }
        }
    }

    /// Bytes on disk, all segments together.
    public var usedBytes: Int {
        state.withLock { state in state.sealedBytes + state.activeSize }
    }

    /// Sealed segments, oldest first.
    public var sealedSegments: [Segment] { state.withLock { $0.sealed } }

    /// Appends a batch of records to the active segment: one write, then `fsync` per the policy. Records that
    /// would pass the quota are refused. A failed write leaves the segment as it was before the batch.
    public func append(_ payloads: [ByteBuffer]) throws -> AppendResult {
        try state.withLock { state in
            var used = state.sealedBytes + state.activeSize
            var batch = ByteBufferAllocator().buffer(capacity: payloads.reduce(0) { $0 + SpoolRecordFormat.framedSize($1.readableBytes) })
            var written = 0
            var refused = 0
            var inBatch = 0
            // A segment about to be created costs its magic too.
            var segmentOpen = state.activeDescriptor >= 0
            for payload in payloads {
                let size = SpoolRecordFormat.framedSize(payload.readableBytes)
                var rolls = false
                if state.activeRecords > 0 && state.activeSize + batch.readableBytes + size > configuration.segmentSize {
                    rolls = true
                }
                let opening = (!segmentOpen || rolls) ? SpoolRecordFormat.magic.count : 0
                if used + size + opening > configuration.quota {
                    refused += 1
                    continue
                }
                if rolls {
                    // The batch so far goes into the current segment, the rest into a new one.
                    try flush(&batch, records: inBatch, state: &state)
                    inBatch = 0
                    try seal(&state)
                }
                SpoolRecordFormat.append(payload, to: &batch)
                used += size + opening
                segmentOpen = true
                written += 1
                inBatch += 1
            }
            try flush(&batch, records: inBatch, state: &state)
            return AppendResult(written: written, refused: refused)
        }
    }

    /// Seals the active segment (if it has records) so the shipper can take it.
    public func sealActive() throws {
        try state.withLock { state in
            if state.activeRecords > 0 { try seal(&state) }
        }
    }

    /// The records of a sealed segment, validated again on the way out.
    public func records(of segment: Segment) throws -> [ByteBuffer] {
        let data = try Self.readFile(segment.path)
        let scan = SpoolRecordFormat.scan(data)
        if let problem = scan.problem {
            logger.warning("spool: \(segment.path): \(problem) while reading; shipping the \(scan.records.count) good records")
        }
        return scan.records.map { data.getSlice(at: data.readerIndex + $0.offset, length: $0.length)! }
    }

    /// Deletes a segment whose every record was acknowledged.
    public func remove(_ segment: Segment) throws {
        try state.withLock { state in
            guard unlink(segment.path) == 0 || errno == ENOENT else {
                throw SpoolError(description: "cannot delete \(segment.path): \(String(cString: strerror(errno)))")
            }
            state.sealed.removeAll { $0 == segment }
            state.sealedBytes -= state.sizes.removeValue(forKey: segment.sequence) ?? 0
        }
    }

    // MARK: - Files

    private func flush(_ batch: inout ByteBuffer, records: Int, state: inout State) throws {
        guard batch.readableBytes > 0 else { return }
        if state.activeDescriptor < 0 { try openActive(&state) }
        let descriptor = state.activeDescriptor
        let before = state.activeSize
        try batch.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    let reason = String(cString: strerror(errno))
                    // Never leave half a batch behind: back to the size before it.
                    _ = ftruncate(descriptor, off_t(before))
                    throw SpoolError(description: "cannot write spool segment: \(reason)")
                }
                offset += count
            }
        }
        if configuration.sync == .everyBatch && fsync(descriptor) != 0 {
            throw SpoolError(description: "cannot fsync spool segment: \(String(cString: strerror(errno)))")
        }
        state.activeSize += batch.readableBytes
        state.activeRecords += records
        batch.clear()
    }

    private func openActive(_ state: inout State) throws {
        let path = Self.path(configuration.directory, state.activeSequence)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw SpoolError(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        let written = SpoolRecordFormat.magic.withUnsafeBytes { write(descriptor, $0.baseAddress!, $0.count) }
        guard written == SpoolRecordFormat.magic.count else {
            close(descriptor)
            unlink(path)
            throw SpoolError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        state.activeDescriptor = descriptor
        state.activeSize = SpoolRecordFormat.magic.count
        state.activeRecords = 0
    }

    private func seal(_ state: inout State) throws {
        guard state.activeDescriptor >= 0 else { return }
        if configuration.sync != .never { _ = fsync(state.activeDescriptor) }
        close(state.activeDescriptor)
        let sequence = state.activeSequence
        state.sealed.append(Segment(sequence: sequence, path: Self.path(configuration.directory, sequence)))
        state.sizes[sequence] = state.activeSize
        state.sealedBytes += state.activeSize
        state.activeDescriptor = -1
        state.activeSize = 0
        state.activeRecords = 0
        state.activeSequence += 1
    }

    static func path(_ directory: String, _ sequence: UInt64) -> String {
        let digits = String(sequence)
        return directory + "/segment-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".vspool"
    }

    static func sequence(ofFileNamed name: String) -> UInt64? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".vspool") else { return nil }
        return UInt64(name.dropFirst("segment-".count).dropLast(".vspool".count))
    }

    static func readFile(_ path: String) throws -> ByteBuffer {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SpoolError(description: "cannot read \(path)")
        }
        return ByteBuffer(bytes: data)
    }
}
