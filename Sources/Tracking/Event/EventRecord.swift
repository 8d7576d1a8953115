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

    /// Appends the record of `event` to `buffer`: one capacity reservation, then raw stores (this runs for every
    /// request, on the event loop).
    public static func encode(_ event: TrackingEvent, into buffer: inout ByteBuffer) {
        var bound = 2 + 24 + 5 * 10
        func room(_ text: String, _ limit: Int) { bound += 3 + min(text.utf8.count, limit) }
        room(event.site, maxStringBytes)
        room(event.host, maxStringBytes)
        room(event.method, maxStringBytes)
        room(event.scheme, maxStringBytes)
        room(event.target, maxTargetBytes)
        room(event.upstream, maxStringBytes)
        room(event.referrer, maxStringBytes)
        room(event.userAgent, maxStringBytes)
        room(event.httpVersion, maxStringBytes)
        room(event.tlsVersion, maxStringBytes)
        room(event.requestID, maxStringBytes)
        room(event.clientAddress, maxStringBytes)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { raw in
            var writer = RawWriter(base: raw.baseAddress!)
            writer.byte(version)
            writer.byte(event.kind.rawValue)
            writer.fixed(event.id.high)
            writer.fixed(event.id.low)
            writer.fixed(event.timeMilliseconds)
            writer.varint(UInt64(clamping: event.status))
            writer.varint(UInt64(clamping: event.bytesIn))
            writer.varint(UInt64(clamping: event.bytesOut))
            writer.varint(UInt64(clamping: event.durationMicroseconds))
            writer.varint(UInt64(clamping: event.upstreamMicroseconds))
            writer.text(event.site, limit: maxStringBytes)
            writer.text(event.host, limit: maxStringBytes)
            writer.text(event.method, limit: maxStringBytes)
            writer.text(event.scheme, limit: maxStringBytes)
            writer.text(event.target, limit: maxTargetBytes)
            writer.text(event.upstream, limit: maxStringBytes)
            writer.text(event.referrer, limit: maxStringBytes)
            writer.text(event.userAgent, limit: maxStringBytes)
            writer.text(event.httpVersion, limit: maxStringBytes)
            writer.text(event.tlsVersion, limit: maxStringBytes)
            writer.text(event.requestID, limit: maxStringBytes)
            writer.text(event.clientAddress, limit: maxStringBytes)
            return writer.count
        }
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
}

/// Writes fixed-width little-endian integers, LEB128 varints and length-prefixed bytes into memory the caller
/// reserved: event records on the request path, RowBinary rows in the shipper.
struct RawWriter {
    let base: UnsafeMutableRawPointer
    var count = 0

    mutating func byte(_ value: UInt8) {
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func fixed<Value: FixedWidthInteger>(_ value: Value) {
        (base + count).storeBytes(of: value.littleEndian, as: Value.self)
        count += MemoryLayout<Value>.size
    }

    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            byte(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        byte(UInt8(value))
    }

    mutating func bytes(_ value: UnsafeRawBufferPointer) {
        guard let source = value.baseAddress, value.count > 0 else { return }
        (base + count).copyMemory(from: source, byteCount: value.count)
        count += value.count
    }

    mutating func string(_ value: UnsafeRawBufferPointer) {
        varint(UInt64(value.count))
        bytes(value)
    }

    /// A string's UTF-8 bytes, length-prefixed, cut to at most `limit` bytes at a character boundary.
    mutating func text(_ value: String, limit: Int) {
        var value = value
        value.withUTF8 { utf8 in
            var end = utf8.count
            if end > limit {
                end = limit
                // Back up over continuation bytes (10xxxxxx) so the cut never splits a character.
                while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
            }
            string(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[0..<end]))
        }
    }
}
