/// Reads the binary records Vantage writes (spool events, the link journal): bytes, little-endian 64-bit words,
/// LEB128 varints and length-prefixed strings, every read checked against the end of the record.
///
/// Inlinable: journal replay reads millions of fields at startup from another module.
@frozen
public struct RecordReader {
    public let bytes: UnsafeRawBufferPointer
    public var offset = 0

    @inlinable
    public init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable
    public mutating func byte() throws -> UInt8 {
        guard offset < bytes.count else { throw EventRecord.DecodingError(description: "truncated record") }
        defer { offset += 1 }
        return bytes[offset]
    }

    @inlinable
    public mutating func fixed() throws -> UInt64 {
        guard offset + 8 <= bytes.count else { throw EventRecord.DecodingError(description: "truncated record") }
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable
    public mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            let next = try byte()
            result |= UInt64(next & 0x7F) << shift
            if next < 0x80 { return result }
            shift += 7
        }
        throw EventRecord.DecodingError(description: "bad varint")
    }

    /// A length-prefixed string's bytes, in place.
    @inlinable
    public mutating func string() throws -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(bytes.count - offset) else { throw EventRecord.DecodingError(description: "bad string") }
        defer { offset += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
    }

    /// A length-prefixed string, decoded.
    @inlinable
    public mutating func text() throws -> String {
        String(decoding: try string(), as: UTF8.self)
    }

    /// A list length, refused above `limit` (a corrupt length must not drive a huge loop).
    @inlinable
    public mutating func count(limit: Int) throws -> Int {
        let value = try varint()
        guard value <= UInt64(limit) else { throw EventRecord.DecodingError(description: "bad count") }
        return Int(value)
    }
}
