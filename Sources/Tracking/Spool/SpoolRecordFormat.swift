import CZlib
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How records sit in a spool segment, as pure functions over bytes.
///
/// A segment starts with an 8-byte magic (`VSPOOL1\n`); each record is a little-endian `UInt32` payload length, a
/// little-endian `UInt32` CRC-32 (zlib's) of the payload, then the payload. A record is only ever appended whole, so
/// a crash can leave at most a torn tail, which ``scan(_:)`` finds. Segments are preallocated and written through a
/// memory map, so an unsealed segment ends in zeros: an all-zero record header with nothing but zeros after it is
/// the clean end of the written part, not damage.
public enum SpoolRecordFormat {
    public static let magic: [UInt8] = Array("VSPOOL1\n".utf8)
    public static let recordHeaderSize = 8
    /// Larger payloads are refused (an event is a few hundred bytes; a length this large means corruption).
    public static let maxPayloadSize = 4 << 20

    /// Writes one framed record into raw memory (a mapped segment): the header, then the payload.
    public static func write(_ payload: ByteBuffer, to destination: UnsafeMutableRawPointer) {
        payload.withUnsafeReadableBytes { bytes in
            destination.storeBytes(of: UInt32(bytes.count).littleEndian, as: UInt32.self)
            destination.storeBytes(of: checksum(bytes).littleEndian, toByteOffset: 4, as: UInt32.self)
            if let base = bytes.baseAddress { (destination + recordHeaderSize).copyMemory(from: base, byteCount: bytes.count) }
        }
    }

    /// Appends one framed record to `buffer`.
    public static func append(_ payload: ByteBuffer, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(payload.readableBytes), endianness: .little)
        buffer.writeInteger(checksum(payload), endianness: .little)
        buffer.writeImmutableBuffer(payload)
    }

    /// The framed size of a payload of `count` bytes.
    public static func framedSize(_ count: Int) -> Int { recordHeaderSize + count }

    /// CRC-32 of a payload.
    public static func checksum(_ payload: ByteBuffer) -> UInt32 {
        payload.withUnsafeReadableBytes { checksum($0) }
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return UInt32(crc32(0, nil, 0)) }
        return UInt32(crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(bytes.count)))
    }

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
        guard segment.getBytes(at: segment.readerIndex, length: magic.count) == magic else {
            return Scan(records: [], validEnd: 0, problem: "not a spool segment (bad magic)")
        }
        return scanRecords(segment, from: magic.count)
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

    /// Walks records from `offset` (a record boundary past the magic) to the first incomplete or damaged one.
    public static func scanRecords(_ segment: ByteBuffer, from start: Int) -> Scan {
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
            guard checksum(payload) == stored else {
                return Scan(records: records, validEnd: offset, problem: "checksum mismatch at byte \(offset)")
            }
            records.append((offset + recordHeaderSize, payloadLength))
            offset += recordHeaderSize + payloadLength
        }
        return Scan(records: records, validEnd: offset, problem: nil)
    }
}
