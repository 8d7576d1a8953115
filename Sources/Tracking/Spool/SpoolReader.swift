import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a spool folder from outside the gateway (`vantage events`), while the gateway may be writing it: segments
/// in sequence order, each read from where the last call stopped, in bounded chunks, so following a live spool
/// costs only what was added.
public struct SpoolReader: Sendable {
    public let directory: String
    /// Per segment file: the offset up to which records were returned.
    private var positions: [String: Int] = [:]
    static let chunkSize = 1 << 20

    public init(directory: String) {
        self.directory = directory
    }

    /// Segment files, oldest sequence first.
    public func segmentPaths() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .compactMap { name in Spool.sequence(ofFileNamed: name).map { ($0, directory + "/" + name) } }
            .sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Records added since the last call, segment by segment. Segments that disappeared (shipped) are forgotten.
    public mutating func readNew(_ body: (ByteBuffer) throws -> Void) throws {
        let paths = try segmentPaths()
        positions = positions.filter { paths.contains($0.key) }
        for path in paths {
            guard let cursor = SegmentCursor(path: path, offset: positions[path] ?? 0, chunkSize: Self.chunkSize) else {
                continue  // removed since the listing, or not a segment
            }
            while let records = cursor.nextChunk() {
                for record in records { try body(record) }
            }
            positions[path] = cursor.offset
        }
    }
}

/// One segment file read front to back a chunk at a time (records cut by a chunk's end are read whole with the
/// next), so a reader holds at most a chunk of it.
final class SegmentCursor {
    private let descriptor: Int32
    /// The offset after the last record returned.
    private(set) var offset: Int
    private let chunkSize: Int
    /// The checksum of the segment's records (its magic's).
    private var checksum = SpoolRecordFormat.Checksum.crc32c
    private var finished = false

    /// Opens `path` at `offset` (0: after the magic); nil when it is gone or not a segment.
    init?(path: String, offset: Int = 0, chunkSize: Int) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        self.chunkSize = chunkSize
        self.offset = offset
        guard descriptor >= 0 else { return nil }
        // The magic says how the records are checked (read also when resuming at an offset).
        var magic = [UInt8](repeating: 0, count: SpoolRecordFormat.magic.count)
        guard pread(descriptor, &magic, magic.count, 0) == magic.count, let checksum = SpoolRecordFormat.Checksum(magic: magic) else {
            return nil
        }
        self.checksum = checksum
        if offset == 0 { self.offset = magic.count }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The records of the next chunk (nil at the end of what was written so far).
    func nextChunk() -> [ByteBuffer]? {
        guard !finished else { return nil }
        var chunk = ByteBufferAllocator().buffer(capacity: chunkSize)
        let offset = self.offset, size = chunkSize, descriptor = self.descriptor
        let count = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            max(0, pread(descriptor, bytes.baseAddress, size, off_t(offset)))
        }
        guard count > 0 else {
            finished = true
            return nil
        }
        let scan = SpoolRecordFormat.scanRecords(chunk, from: 0, checksum: checksum)
        self.offset += scan.validEnd
        if scan.records.isEmpty || scan.zeroTail { finished = true }
        guard !scan.records.isEmpty else { return nil }
        return scan.records.map { chunk.getSlice(at: chunk.readerIndex + $0.offset, length: $0.length)! }
    }
}
