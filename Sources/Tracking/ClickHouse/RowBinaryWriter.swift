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

    /// Appends the row of one record.
    public func writeRow(record: ByteBuffer, into out: inout ByteBuffer) throws {
        let fields = try EventRecord.fields(of: record)
        // UUID: ClickHouse stores it as two UInt64, high half first, each little-endian.
        out.writeInteger(fields.id.high, endianness: .little)
        out.writeInteger(fields.id.low, endianness: .little)
        switch dialect {
        case .modern:
            out.writeInteger(fields.timeMilliseconds, endianness: .little)
        case .legacy:
            let milliseconds = max(0, fields.timeMilliseconds)
            out.writeInteger(UInt32(truncatingIfNeeded: milliseconds / 1000), endianness: .little)
            out.writeInteger(UInt16(milliseconds % 1000), endianness: .little)
        }
        out.writeRowBinaryString(fields.site)
        out.writeRowBinaryString(fields.host)
        let kind = fields.kind.name
        out.writeVarint(UInt64(kind.utf8.count))
        out.writeString(kind)
        out.writeRowBinaryString(fields.method)
        out.writeRowBinaryString(fields.scheme)
        let (path, query) = fields.pathAndQuery
        out.writeRowBinaryString(path)
        // url = scheme "://" host path
        out.writeVarint(UInt64(fields.scheme.readableBytes + 3 + fields.host.readableBytes + path.readableBytes))
        out.writeImmutableBuffer(fields.scheme)
        out.writeStaticString("://")
        out.writeImmutableBuffer(fields.host)
        out.writeImmutableBuffer(path)
        out.writeRowBinaryString(query)
        out.writeInteger(UInt16(clamping: fields.status), endianness: .little)
        out.writeInteger(fields.bytesIn, endianness: .little)
        out.writeInteger(fields.bytesOut, endianness: .little)
        out.writeInteger(fields.durationMicroseconds, endianness: .little)
        out.writeRowBinaryString(fields.upstream)
        out.writeInteger(fields.upstreamMicroseconds, endianness: .little)
        out.writeRowBinaryString(fields.referrer)
        out.writeRowBinaryString(fields.userAgent)
        out.writeRowBinaryString(fields.httpVersion)
        out.writeRowBinaryString(fields.tlsVersion)
        out.writeRowBinaryString(fields.requestID)
        if storeFullIP {
            out.writeRowBinaryString(fields.clientAddress)
        } else {
            writeAnonymized(fields.clientAddress, into: &out)
        }
    }

    /// IPv4 `a.b.c.d` becomes `a.b.c.0` without leaving bytes; IPv6 goes through ``IPAnonymizer``.
    private func writeAnonymized(_ address: ByteBuffer, into out: inout ByteBuffer) {
        let view = address.readableBytesView
        if !view.contains(UInt8(ascii: ":")), let lastDot = view.lastIndex(of: UInt8(ascii: ".")) {
            let prefix = address.getSlice(at: address.readerIndex, length: lastDot - address.readerIndex)!
            out.writeVarint(UInt64(prefix.readableBytes + 2))
            out.writeImmutableBuffer(prefix)
            out.writeStaticString(".0")
            return
        }
        let anonymized = IPAnonymizer.anonymize(String(buffer: address))
        out.writeVarint(UInt64(anonymized.utf8.count))
        out.writeString(anonymized)
    }
}

extension ByteBuffer {
    @inlinable
    mutating func writeRowBinaryString(_ bytes: ByteBuffer) {
        writeVarint(UInt64(bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }
}
