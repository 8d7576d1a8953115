import NIOCore

/// Turns spool records into ClickHouse `RowBinary` rows for an ``EventSchema``: fixed-width little-endian numbers,
/// strings as LEB128 length and bytes (copied straight from the record), UUIDs as two little-endian halves.
public struct RowBinaryWriter: Sendable {
    public let dialect: EventSchema.Dialect
    /// Keep whole client addresses instead of the anonymized /24 or /48.
    public let storeFullIP: Bool

    public init(dialect: EventSchema.Dialect, storeFullIP: Bool = false) {
        self.dialect = dialect
        self.storeFullIP = storeFullIP
    }

    /// Appends the row of one record (``EventRecord`` version 1), working on raw bytes: one bounds-checked pass
    /// over the record, one reservation in the output, no intermediate buffers or reference counting.
    public func writeRow(record: UnsafeRawBufferPointer, into out: inout ByteBuffer) throws {
        var reader = RecordReader(bytes: record)
        guard try reader.byte() == EventRecord.version else {
            throw EventRecord.DecodingError(description: "unknown record version \(record.first ?? 0)")
        }
        guard let kind = TrackingEvent.Kind(rawValue: try reader.byte()) else {
            throw EventRecord.DecodingError(description: "unknown event kind")
        }
        let high = try reader.fixed(UInt64.self), low = try reader.fixed(UInt64.self)
        let time = Int64(bitPattern: try reader.fixed(UInt64.self))
        let status = try reader.varint(), bytesIn = try reader.varint(), bytesOut = try reader.varint()
        let duration = try reader.varint(), upstreamTime = try reader.varint()
        let site = try reader.string(), host = try reader.string(), method = try reader.string()
        let scheme = try reader.string(), target = try reader.string(), upstream = try reader.string()
        let referrer = try reader.string(), agent = try reader.string(), httpVersion = try reader.string()
        let tlsVersion = try reader.string(), requestID = try reader.string(), client = try reader.string()
        let question = target.firstIndex(of: UInt8(ascii: "?"))
        let path = question.map { UnsafeRawBufferPointer(rebasing: target[..<$0]) } ?? target
        let query = question.map { UnsafeRawBufferPointer(rebasing: target[($0 + 1)...]) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let kindName = kind.name
        let storeFullIP = self.storeFullIP
        let dialect = self.dialect
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 2 * record.count + 128) { output in
            var writer = RawWriter(base: output.baseAddress!)
            writer.fixed(high)
            writer.fixed(low)
            switch dialect {
            case .modern:
                writer.fixed(UInt64(bitPattern: time))
            case .legacy:
                let milliseconds = max(0, time)
                writer.fixed(UInt32(truncatingIfNeeded: milliseconds / 1000))
                writer.fixed(UInt16(milliseconds % 1000))
            }
            writer.string(site)
            writer.string(host)
            var name = kindName
            name.withUTF8 { writer.string(UnsafeRawBufferPointer($0)) }
            writer.string(method)
            writer.string(scheme)
            writer.string(path)
            writer.string(query)
            writer.fixed(UInt16(clamping: status))
            writer.fixed(bytesIn)
            writer.fixed(bytesOut)
            writer.fixed(duration)
            writer.string(upstream)
            writer.fixed(upstreamTime)
            writer.string(referrer)
            writer.string(agent)
            writer.string(httpVersion)
            writer.string(tlsVersion)
            writer.string(requestID)
            if storeFullIP || client.contains(UInt8(ascii: ":")) {
                if storeFullIP {
                    writer.string(client)
                } else {
                    var anonymized = IPAnonymizer.anonymize(String(decoding: client, as: UTF8.self))
                    anonymized.withUTF8 { writer.string(UnsafeRawBufferPointer($0)) }
                }
            } else if let lastDot = client.lastIndex(of: UInt8(ascii: ".")) {
                // IPv4 a.b.c.d becomes a.b.c.0.
                writer.varint(UInt64(lastDot + 2))
                writer.bytes(UnsafeRawBufferPointer(rebasing: client[..<lastDot]))
                writer.byte(UInt8(ascii: "."))
                writer.byte(UInt8(ascii: "0"))
            } else {
                writer.string(client)
            }
            return writer.count
        }
    }

    /// Appends the row of one record held in a buffer.
    public func writeRow(record: ByteBuffer, into out: inout ByteBuffer) throws {
        try record.withUnsafeReadableBytes { try writeRow(record: $0, into: &out) }
    }
}

/// Reads an ``EventRecord`` front to back, checking every length against the record's end.
private struct RecordReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    mutating func byte() throws -> UInt8 {
        guard offset < bytes.count else { throw EventRecord.DecodingError(description: "truncated record") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func fixed(_ type: UInt64.Type) throws -> UInt64 {
        guard offset + 8 <= bytes.count else { throw EventRecord.DecodingError(description: "truncated record") }
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    mutating func varint() throws -> UInt64 {
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

    mutating func string() throws -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(bytes.count - offset) else { throw EventRecord.DecodingError(description: "bad string") }
        defer { offset += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
    }
}
