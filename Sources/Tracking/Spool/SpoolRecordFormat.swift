import CCRC32C
import CZlib
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How records sit in a spool segment, as pure functions over bytes.
///
/// A segment starts with an 8-byte magic naming its checksum; each record is a little-endian `UInt32` payload length,
/// a little-endian `UInt32` checksum of the payload, then the payload. Segments written now start `VSPOOL2\n` and
/// carry CRC-32C (by the processor's instruction: about 50 ns for an event, where zlib's CRC-32 took 240); segments
/// of earlier versions start `VSPOOL1\n` and carry zlib's CRC-32, and are read as they are (recovery, shipping,
/// erasure and the readers all go by the magic). A record is only ever appended whole, so a crash can leave at most
/// a torn tail, which ``scan(_:)`` finds. Segments are preallocated and written through a
/// memory map, so an unsealed segment ends in zeros: an all-zero record header with nothing but zeros after it is
/// the clean end of the written part, not damage.
public enum SpoolRecordFormat {
    /// The magic of segments written now.
    public static let magic: [UInt8] = Array("VSPOOL2\n".utf8)
    /// The magic of segments written before CRC-32C (still read).
    public static let magicVersion1: [UInt8] = Array("VSPOOL1\n".utf8)

    /// How a segment's records are checked, as its magic says.
    public enum Checksum: Sendable, Equatable {
        /// zlib's CRC-32 (`VSPOOL1`).
        case crc32
        /// CRC-32C (`VSPOOL2`).
        case crc32c

        /// The checksum of `bytes`.
        @inline(__always)
        public func callAsFunction(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
            switch self {
            case .crc32c:
                return vantage_crc32c(0, bytes.baseAddress, bytes.count)
            case .crc32:
                guard let base = bytes.baseAddress, bytes.count > 0 else { return UInt32(CZlib.crc32(0, nil, 0)) }
                return UInt32(CZlib.crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
            }
        }

        /// The checksum `magic` names; nil for bytes that are not a segment's magic.
        public init?<Bytes: Sequence>(magic: Bytes) where Bytes.Element == UInt8 {
            if magic.elementsEqual(SpoolRecordFormat.magic) {
                self = .crc32c
            } else if magic.elementsEqual(SpoolRecordFormat.magicVersion1) {
                self = .crc32
            } else {
                return nil
            }
        }
    }
    public static let recordHeaderSize = 8
    /// Larger payloads are refused (an event is a few hundred bytes; a length this large means corruption).
    public static let maxPayloadSize = 4 << 20

    /// Writes one framed record of a segment written now into raw memory (a mapped segment): the header, then the
    /// payload.
    public static func write(_ payload: ByteBuffer, to destination: UnsafeMutableRawPointer) {
        payload.withUnsafeReadableBytes { bytes in
            destination.storeBytes(of: UInt32(bytes.count).littleEndian, as: UInt32.self)
            destination.storeBytes(of: Checksum.crc32c(bytes).littleEndian, toByteOffset: 4, as: UInt32.self)
            if let base = bytes.baseAddress { (destination + recordHeaderSize).copyMemory(from: base, byteCount: bytes.count) }
        }
    }

    /// Appends one framed record to `buffer`, checked by `checksum` (that of the segment it goes into).
    public static func append(_ payload: ByteBuffer, to buffer: inout ByteBuffer, checksum: Checksum = .crc32c) {
        buffer.writeInteger(UInt32(payload.readableBytes), endianness: .little)
        buffer.writeInteger(payload.withUnsafeReadableBytes { checksum($0) }, endianness: .little)
        buffer.writeImmutableBuffer(payload)
    }

    /// The framed size of a payload of `count` bytes.
    public static func framedSize(_ count: Int) -> Int { recordHeaderSize + count }

    /// What a scan of a segment's bytes found.
    public struct Scan: Sendable, Equatable {
        /// Byte offsets (after the magic) where each valid record starts, with its payload length.
        public var records: [(offset: Int, length: Int)]
        /// Where the valid part ends: everything from here on is torn or corrupt.
        public var validEnd: Int
        /// Why the scan stopped before the end of the bytes, if it did.
        public var problem: String?
        /// The bytes after `validEnd` are the unwritten (zero) rest of a preallocated segment.
        public var zeroTail = false

        public static func == (lhs: Scan, rhs: Scan) -> Bool {
            lhs.validEnd == rhs.validEnd && lhs.problem == rhs.problem && lhs.zeroTail == rhs.zeroTail
                && lhs.records.map(\.offset) == rhs.records.map(\.offset)
                && lhs.records.map(\.length) == rhs.records.map(\.length)
        }
    }

    /// Walks a whole segment and stops at the first record that is incomplete or fails its checksum.
    public static func scan(_ segment: ByteBuffer) -> Scan {
        let total = segment.readableBytes
        guard total >= magic.count else {
            return Scan(records: [], validEnd: 0, problem: total == 0 ? "empty segment" : "segment shorter than its magic")
        }
        guard let checksum = Checksum(magic: segment.readableBytesView.prefix(magic.count)) else {
            return Scan(records: [], validEnd: 0, problem: "not a spool segment (bad magic)")
        }
        return scanRecords(segment, from: magic.count, checksum: checksum)
    }

    /// Whether every byte from `offset` on is zero (the unwritten rest of a preallocated segment, often megabytes,
    /// so compared in blocks by `memcmp`).
    static func isAllZero(_ buffer: ByteBuffer, from offset: Int) -> Bool {
        let zeros = [UInt8](repeating: 0, count: 64 << 10)
        return buffer.withUnsafeReadableBytes { bytes in
            zeros.withUnsafeBytes { zero in
                var position = offset
                while position < bytes.count {
                    let count = min(zero.count, bytes.count - position)
                    if memcmp(bytes.baseAddress! + position, zero.baseAddress!, count) != 0 { return false }
                    position += count
                }
                return true
            }
        }
    }

    /// Walks records from `offset` (a record boundary past the magic) to the first incomplete or damaged one;
    /// `checksum` is the one the segment's magic names.
    public static func scanRecords(_ segment: ByteBuffer, from start: Int, checksum: Checksum) -> Scan {
        var records: [(offset: Int, length: Int)] = []
        let total = segment.readableBytes
        var offset = start
        while offset < total {
            guard total - offset >= recordHeaderSize,
                let length = segment.getInteger(at: segment.readerIndex + offset, endianness: .little, as: UInt32.self),
                let stored = segment.getInteger(at: segment.readerIndex + offset + 4, endianness: .little, as: UInt32.self)
            else {
                return Scan(records: records, validEnd: offset, problem: "torn record header at byte \(offset)")
            }
            if length == 0 && stored == 0 {
                if isAllZero(segment, from: offset) {
                    return Scan(records: records, validEnd: offset, problem: nil, zeroTail: true)
                }
                return Scan(records: records, validEnd: offset, problem: "zero record header followed by data at byte \(offset)")
            }
            let payloadLength = Int(length)
            guard payloadLength <= maxPayloadSize else {
                return Scan(records: records, validEnd: offset, problem: "impossible record length \(payloadLength) at byte \(offset)")
            }
            guard total - offset - recordHeaderSize >= payloadLength else {
                return Scan(records: records, validEnd: offset, problem: "torn record at byte \(offset)")
            }
            let payload = segment.getSlice(at: segment.readerIndex + offset + recordHeaderSize, length: payloadLength)!
            guard payload.withUnsafeReadableBytes({ checksum($0) }) == stored else {
                return Scan(records: records, validEnd: offset, problem: "checksum mismatch at byte \(offset)")
            }
            records.append((offset + recordHeaderSize, payloadLength))
            offset += recordHeaderSize + payloadLength
        }
        return Scan(records: records, validEnd: offset, problem: nil)
    }
}
