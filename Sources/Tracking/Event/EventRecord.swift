import NIOCore

/// The binary form of an event in the spool: compact, cheap to write on the request path, and laid out so that
/// shipping it as ClickHouse `RowBinary` is mostly copying (strings are already length-prefixed the same way).
///
/// Version 1: `u8 version`, `u8 kind`, id as two little-endian `UInt64` halves (high, low), `Int64` LE Unix
/// milliseconds, then LEB128 varints status, bytes in, bytes out, duration µs, upstream µs, then strings (LEB128
/// length + UTF-8): site, host, method, scheme, target, upstream, referrer, user agent, HTTP version, TLS version,
/// request id, client address. A later version appends fields; readers keep every version they ever wrote.
public enum EventRecord {
    public static let version: UInt8 = 1
    /// Longer strings are cut (at a UTF-8 boundary): analytics has no use for a 64 KB user agent, and the spool
    /// must stay bounded per record.
    public static let maxStringBytes = 2048
    /// The request target may be longer (long query strings are common).
    public static let maxTargetBytes = 8192

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Appends the record of `event` to `buffer`.
    public static func encode(_ event: TrackingEvent, into buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        buffer.writeInteger(event.kind.rawValue)
        buffer.writeInteger(event.id.high, endianness: .little)
        buffer.writeInteger(event.id.low, endianness: .little)
        buffer.writeInteger(event.timeMilliseconds, endianness: .little)
        buffer.writeVarint(UInt64(clamping: event.status))
        buffer.writeVarint(UInt64(clamping: event.bytesIn))
        buffer.writeVarint(UInt64(clamping: event.bytesOut))
        buffer.writeVarint(UInt64(clamping: event.durationMicroseconds))
        buffer.writeVarint(UInt64(clamping: event.upstreamMicroseconds))
        buffer.writeLengthPrefixed(event.site, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.host, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.method, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.scheme, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.target, limit: maxTargetBytes)
        buffer.writeLengthPrefixed(event.upstream, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.referrer, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.userAgent, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.httpVersion, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.tlsVersion, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.requestID, limit: maxStringBytes)
        buffer.writeLengthPrefixed(event.clientAddress, limit: maxStringBytes)
    }

    /// The fields of a record, read in order without copying: strings are slices of the record.
    public struct Fields {
        public var kind: TrackingEvent.Kind
        public var id: EventID
        public var timeMilliseconds: Int64
        public var status: UInt64
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        public var durationMicroseconds: UInt64
        public var upstreamMicroseconds: UInt64
        public var site: ByteBuffer
        public var host: ByteBuffer
        public var method: ByteBuffer
        public var scheme: ByteBuffer
        public var target: ByteBuffer
        public var upstream: ByteBuffer
        public var referrer: ByteBuffer
        public var userAgent: ByteBuffer
        public var httpVersion: ByteBuffer
        public var tlsVersion: ByteBuffer
        public var requestID: ByteBuffer
        public var clientAddress: ByteBuffer

        /// The target up to `?`, and the query after it.
        public var pathAndQuery: (path: ByteBuffer, query: ByteBuffer) {
            let question = target.readableBytesView.firstIndex(of: UInt8(ascii: "?"))
            guard let question else { return (target, ByteBuffer()) }
            let pathLength = question - target.readerIndex
            return (
                target.getSlice(at: target.readerIndex, length: pathLength)!,
                target.getSlice(at: question + 1, length: target.readableBytes - pathLength - 1)!
            )
        }
    }

    /// Reads a record's fields.
    public static func fields(of record: ByteBuffer) throws -> Fields {
        var record = record
        guard let version = record.readInteger(as: UInt8.self) else { throw DecodingError(description: "empty record") }
        guard version == 1 else { throw DecodingError(description: "unknown record version \(version)") }
        guard let kindByte = record.readInteger(as: UInt8.self), let kind = TrackingEvent.Kind(rawValue: kindByte),
            let high = record.readInteger(endianness: .little, as: UInt64.self),
            let low = record.readInteger(endianness: .little, as: UInt64.self),
            let time = record.readInteger(endianness: .little, as: Int64.self)
        else { throw DecodingError(description: "truncated record header") }
        func varint() throws -> UInt64 {
            guard let value = record.readVarint() else { throw DecodingError(description: "bad varint") }
            return value
        }
        func string() throws -> ByteBuffer {
            guard let length = record.readVarint(), length <= UInt64(record.readableBytes),
                let slice = record.readSlice(length: Int(length))
            else { throw DecodingError(description: "bad string") }
            return slice
        }
        return Fields(
            kind: kind, id: EventID(high: high, low: low), timeMilliseconds: time, status: try varint(),
            bytesIn: try varint(), bytesOut: try varint(), durationMicroseconds: try varint(),
            upstreamMicroseconds: try varint(), site: try string(), host: try string(), method: try string(),
            scheme: try string(), target: try string(), upstream: try string(), referrer: try string(),
            userAgent: try string(), httpVersion: try string(), tlsVersion: try string(), requestID: try string(),
            clientAddress: try string())
    }

    /// Decodes a record into an event (export, tools, tests).
    public static func decode(_ record: ByteBuffer) throws -> TrackingEvent {
        let fields = try fields(of: record)
        func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }
        return TrackingEvent(
            id: fields.id, timeMilliseconds: fields.timeMilliseconds, site: text(fields.site), host: text(fields.host),
            kind: fields.kind, method: text(fields.method), scheme: text(fields.scheme), target: text(fields.target),
            status: Int(clamping: fields.status), bytesIn: Int(clamping: fields.bytesIn),
            bytesOut: Int(clamping: fields.bytesOut), durationMicroseconds: Int(clamping: fields.durationMicroseconds),
            upstream: text(fields.upstream), upstreamMicroseconds: Int(clamping: fields.upstreamMicroseconds),
            referrer: text(fields.referrer), userAgent: text(fields.userAgent), httpVersion: text(fields.httpVersion),
            tlsVersion: text(fields.tlsVersion), requestID: text(fields.requestID),
            clientAddress: text(fields.clientAddress))
    }
}

extension ByteBuffer {
    /// Unsigned LEB128, as ClickHouse's RowBinary uses for lengths.
    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        writeInteger(UInt8(value))
    }

    @inlinable
    public mutating func readVarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while shift < 64 {
            guard let byte = readInteger(as: UInt8.self) else { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }

    /// Writes `value` as a LEB128 length and its UTF-8 bytes, cut to at most `limit` bytes at a character boundary.
    @inlinable
    public mutating func writeLengthPrefixed(_ value: String, limit: Int) {
        var value = value
        let count = value.utf8.count
        if count <= limit {
            writeVarint(UInt64(count))
            writeString(value)
            return
        }
        value.withUTF8 { bytes in
            var end = limit
            // Back up over continuation bytes (10xxxxxx) so the cut never splits a character.
            while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
            writeVarint(UInt64(end))
            writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[0..<end]))
        }
    }
}
