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
public struct SpoolReader {
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
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { continue }  // removed since the listing
            defer { close(descriptor) }
            var offset = positions[path] ?? 0
            if offset == 0 {
                var magic = [UInt8](repeating: 0, count: SpoolRecordFormat.magic.count)
                guard pread(descriptor, &magic, magic.count, 0) == magic.count, magic == SpoolRecordFormat.magic else { continue }
                offset = magic.count
            }
            var chunk = ByteBufferAllocator().buffer(capacity: Self.chunkSize)
            while true {
                chunk.clear()
                let count = chunk.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.chunkSize) { bytes in
                    max(0, pread(descriptor, bytes.baseAddress, Self.chunkSize, off_t(offset)))
                }
                guard count > 0 else { break }
                // A record cut by the chunk's end is read whole by the next round.
                let scan = SpoolRecordFormat.scanRecords(chunk, from: 0)
                for record in scan.records {
                    try body(chunk.getSlice(at: chunk.readerIndex + record.offset, length: record.length)!)
                }
                offset += scan.validEnd
                if scan.records.isEmpty || scan.zeroTail { break }
            }
            positions[path] = offset
        }
    }
}
