import Logging
import NIOCore

/// One event loop's way into the spool: encodes a record into a reused scratch buffer and copies it, framed, into
/// the loop's mapped segment. No lock, no syscall and no allocation per record; the shared quota counter is touched
/// once per reserved chunk. Only ever used on its own loop.
public final class SpoolAppender {
    /// What happened to one record.
    public enum Outcome: Equatable {
        case written
        /// Refused: the spool quota is used up (counted by the caller).
        case droppedQuotaFull
        /// Refused: no segment could be created (disk full, permissions); logged by the appender.
        case droppedNoSegment
        /// Refused: the spool folder's lock was lost (see ``Spool/isOwned``); logged by the spool.
        case droppedFolderLost
    }

    let spool: Spool
    private(set) var segment: MappedSegment?
    private var scratch: ByteBuffer
    /// Quota taken from the spool and not yet used.
    private var reserved = 0
    private let chunk: Int
    private var firstRecordMilliseconds: Int64 = 0
    private var segmentFailureLogged = false

    public init(spool: Spool) {
        self.spool = spool
        scratch = ByteBufferAllocator().buffer(capacity: 1024)
        // Small quotas (tests, tiny disks) get small chunks, so the quota is met closely.
        chunk = max(4096, min(256 << 10, spool.configuration.quota / 64))
    }

    /// Appends one record built by `encode` (which must write at least one byte). `nowMilliseconds` dates the
    /// segment for the oldest-unshipped figure.
    @inline(__always)
    public func append(nowMilliseconds: Int64, _ encode: (inout ByteBuffer) -> Void) -> Outcome {
        scratch.clear()
        encode(&scratch)
        let size = SpoolRecordFormat.framedSize(scratch.readableBytes)
        guard spool.isOwned else { return .droppedFolderLost }
        if let segment, segment.available >= size, reserved >= size {
            segment.append(scratch)
            reserved -= size
            if segment.wantsPrefault { spool.prefaultAhead(segment) }
            return .written
        }
        return appendSlowly(size: size, nowMilliseconds: nowMilliseconds)
    }

    private func appendSlowly(size: Int, nowMilliseconds: Int64) -> Outcome {
        if let segment, segment.available < size { sealSegment() }
        var needed = size
        if segment == nil { needed += SpoolRecordFormat.magic.count }
        if reserved < needed {
            let want = max(chunk, needed - reserved)
            if spool.reserve(want) {
                reserved += want
            } else if spool.reserve(needed - reserved) {
                reserved = needed
            } else {
                return .droppedQuotaFull
            }
        }
        if segment == nil {
            do {
                segment = try spool.takeSegment()
                segmentFailureLogged = false
            } catch {
                if !segmentFailureLogged {
                    spool.logger.error("spool: cannot open a segment, dropping events until one opens: \(error)")
                    segmentFailureLogged = true
                }
                return .droppedNoSegment
            }
            reserved -= SpoolRecordFormat.magic.count
            firstRecordMilliseconds = nowMilliseconds
        }
        segment!.append(scratch)
        reserved -= size
        if segment!.wantsPrefault { spool.prefaultAhead(segment!) }
        return .written
    }

    /// Hands the current segment to the shipper if it holds records (every batch interval, and at shutdown).
    public func sealIfPending() {
        if let segment, segment.records > 0 { sealSegment() }
    }

    private func sealSegment() {
        guard let current = segment else { return }
        segment = nil
        spool.seal(current, firstRecordMilliseconds: firstRecordMilliseconds)
    }

    /// Seals what is pending and gives back the unused quota (shutdown).
    public func close() {
        if let current = segment {
            segment = nil
            spool.seal(current, firstRecordMilliseconds: firstRecordMilliseconds)
        }
        spool.release(reserved)
        reserved = 0
    }
}
