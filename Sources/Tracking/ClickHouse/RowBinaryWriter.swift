import NIOCore

/// Turns spool records into ClickHouse `RowBinary` rows for an ``EventSchema``: fixed-width little-endian numbers,
/// strings as LEB128 length and bytes (copied straight from the record), UUIDs as two little-endian halves.
public struct RowBinaryWriter: Sendable {
    public let dialect: EventSchema.Dialect

    public init(dialect: EventSchema.Dialect) {
        self.dialect = dialect
    }

    /// Appends the row of one record (any ``EventRecord`` version), working on raw bytes: one bounds-checked pass
    /// over the record, one reservation in the output, no intermediate buffers or reference counting.
    public func writeRow(record: UnsafeRawBufferPointer, into out: inout ByteBuffer) throws {
        writeRow(try EventRecord.Fields(record: record), recordSize: record.count, into: &out)
    }

    /// Appends the row of a record already read (`recordSize`: its length, which bounds the row's).
    func writeRow(_ fields: EventRecord.Fields, recordSize: Int, into out: inout ByteBuffer) {
        let (path, query) = fields.pathAndQuery
        let kindName = fields.kind.name
        let dialect = self.dialect
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 2 * recordSize + 128) { output in
            var writer = RawWriter(base: output.baseAddress!)
            writer.fixed(fields.id.high)
            writer.fixed(fields.id.low)
            switch dialect {
            case .modern:
                writer.fixed(UInt64(bitPattern: fields.timeMilliseconds))
            case .legacy:
                let milliseconds = max(0, fields.timeMilliseconds)
                writer.fixed(UInt32(truncatingIfNeeded: milliseconds / 1000))
                writer.fixed(UInt16(milliseconds % 1000))
            }
            writer.string(fields.site)
            writer.string(fields.host)
            var name = kindName
            name.withUTF8 { writer.string(UnsafeRawBufferPointer($0)) }
            writer.string(fields.method)
            writer.string(fields.scheme)
            writer.string(path)
            writer.string(query)
            writer.fixed(UInt16(clamping: fields.status))
            writer.fixed(fields.bytesIn)
            writer.fixed(fields.bytesOut)
            writer.fixed(fields.durationMicroseconds)
            writer.string(fields.upstream)
            writer.fixed(fields.upstreamMicroseconds)
            writer.string(fields.referrer)
            writer.string(fields.userAgent)
            writer.string(fields.httpVersion)
            writer.string(fields.tlsVersion)
            writer.string(fields.requestID)
            let client = fields.clientAddress
            let isIPv6 = client.contains(UInt8(ascii: ":"))
            if fields.version >= 2 {
                // Version 2 records hold the address in its stored form already (enrichment applied the policy);
                // version 1 records, from before, hold it whole and get the default truncation here.
                writer.string(client)
            } else if !isIPv6, let lastDot = client.lastIndex(of: UInt8(ascii: ".")) {
                // IPv4 a.b.c.d becomes a.b.c.0 without leaving the bytes (the rule of ``IPAnonymizer``).
                writer.varint(UInt64(lastDot + 2))
                writer.bytes(UnsafeRawBufferPointer(rebasing: client[..<lastDot]))
                writer.byte(UInt8(ascii: "."))
                writer.byte(UInt8(ascii: "0"))
            } else if isIPv6 {
                var anonymized = IPAnonymizer.anonymize(String(decoding: client, as: UTF8.self))
                anonymized.withUTF8 { writer.string(UnsafeRawBufferPointer($0)) }
            } else {
                writer.string(client)
            }
            writer.string(fields.eventName)
            writer.string(fields.eventType)
            writer.string(fields.visitorID)
            writer.string(fields.sessionID)
            writer.byte(fields.sessionStart ? 1 : 0)
            writer.string(fields.userID)
            writer.string(fields.browser)
            writer.string(fields.browserVersion)
            writer.string(fields.os)
            writer.string(fields.osVersion)
            writer.string(fields.device)
            writer.string(fields.botReason)
            writer.string(fields.country)
            writer.string(fields.region)
            writer.string(fields.city)
            writer.nullableDouble(fields.latitude)
            writer.nullableDouble(fields.longitude)
            writer.string(fields.referrerHost)
            writer.string(fields.sourceCategory)
            writer.string(fields.utmSource)
            writer.string(fields.utmMedium)
            writer.string(fields.utmCampaign)
            writer.string(fields.utmTerm)
            writer.string(fields.utmContent)
            writer.string(fields.clickID)
            writer.fixed(fields.consentFlags)
            writer.fixed(fields.revenue.bitPattern)
            writer.string(fields.currency)
            writer.string(fields.properties)
            writer.string(fields.channel)
            writer.string(fields.sessionChannel)
            writer.string(fields.orgID)
            writer.string(fields.org)
            writer.string(fields.experimentID)
            writer.string(fields.variant)
            writer.string(fields.threadID)
            return writer.count
        }
    }

    /// Appends the row of one record held in a buffer.
    public func writeRow(record: ByteBuffer, into out: inout ByteBuffer) throws {
        try record.withUnsafeReadableBytes { try writeRow(record: $0, into: &out) }
    }
}

extension RawWriter {
    /// `Nullable(Float64)`: a null marker byte, then the value unless it is null (NaN stands for null).
    mutating func nullableDouble(_ value: Double) {
        if value.isNaN {
            byte(1)
        } else {
            byte(0)
            fixed(value.bitPattern)
        }
    }
}
