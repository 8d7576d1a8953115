import NIOCore
import RequestTarget

/// The binary form of an event in the spool: compact, cheap to write on the request path, and laid out so that
/// shipping it as ClickHouse `RowBinary` is mostly copying (strings are already length-prefixed the same way).
///
/// Version 1: `u8 version`, `u8 kind`, id as two little-endian `UInt64` halves (high, low), `Int64` LE Unix
/// milliseconds, then LEB128 varints status, bytes in, bytes out, duration µs, upstream µs, then strings (LEB128
/// length + UTF-8): site, host, method, scheme, target, upstream, referrer, user agent, HTTP version, TLS version,
/// request id, client address.
///
/// Version 2 (written since enrichment moved before the spool) appends: a flags byte (bit 0: session start,
/// bit 1: coordinates present), then the coordinates as two `Float64` LE when present, varints consent flags and
/// revenue (`Float64` bits), then strings event name, event type, visitor, session, user, browser, browser version,
/// OS, OS version, device, bot reason, country, region, city, referrer host, source category, the five utm values,
/// click id, currency, properties. In version 2 the client address is already in its stored form; in version 1 it
/// is whole and anonymized when read.
///
/// Version 3 appends the strings channel and session channel. Version 4 appends the strings organization id,
/// organization, experiment id, variant and thread id. Readers keep every version they ever wrote.
public enum EventRecord {
    public static let version: UInt8 = 4
    /// Longer strings are cut (at a UTF-8 boundary): analytics has no use for a 64 KB user agent, and the spool
    /// must stay bounded per record.
    public static let maxStringBytes = 2048
    /// The request target may be longer (long query strings are common), and so may the tracking API's properties.
    public static let maxTargetBytes = 8192
    public static let maxPropertiesBytes = 8192

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) { self.description = description }
    }

    /// The most a record can take: three bytes (version, kind, flags), id and time, coordinates, seven varints, and
    /// 43 length-prefixed strings at their limits (the target and the properties at theirs, 41 at `maxStringBytes`).
    static let maxRecordBytes = 3 + 24 + 16 + 7 * 10 + 43 * 3 + 41 * maxStringBytes + maxTargetBytes + maxPropertiesBytes

    /// Appends the record of `event` to `buffer`: one capacity reservation for the worst case (free on the
    /// appender's reused scratch buffer), then raw stores. This runs for every request, on the event loop.
    /// `target` and `referrer`, when given, are written instead of the event's (their scrubbed forms).
    public static func encode(_ event: TrackingEvent, target: String? = nil, referrer: String? = nil, into buffer: inout ByteBuffer) {
        // The details are read field by field (`event.eventName`, ...): for a plain request each is one nil check of
        // their reference. Taking them whole first copied them, and for a plain request made empty ones to destroy.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maxRecordBytes) { raw in
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
            writer.text(target ?? event.target, limit: maxTargetBytes)
            writer.text(event.upstream, limit: maxStringBytes)
            writer.text(referrer ?? event.referrer, limit: maxStringBytes)
            writer.text(event.userAgent, limit: maxStringBytes)
            writer.text(event.httpVersion, limit: maxStringBytes)
            writer.text(event.tlsVersion, limit: maxStringBytes)
            writer.text(event.requestID, limit: maxStringBytes)
            writer.text(event.clientAddress, limit: maxStringBytes)
            if let latitude = event.latitude, let longitude = event.longitude {
                writer.byte((event.sessionStart ? 1 : 0) | 2)
                writer.fixed(latitude.bitPattern)
                writer.fixed(longitude.bitPattern)
            } else {
                writer.byte(event.sessionStart ? 1 : 0)
            }
            writer.varint(UInt64(bitPattern: event.consentFlags))
            writer.varint(event.revenue.bitPattern)
            writer.text(event.eventName, limit: maxStringBytes)
            writer.text(event.eventType, limit: maxStringBytes)
            writer.text(event.visitorID, limit: maxStringBytes)
            writer.text(event.sessionID, limit: maxStringBytes)
            writer.text(event.userID, limit: maxStringBytes)
            writer.text(event.browser, limit: maxStringBytes)
            writer.text(event.browserVersion, limit: maxStringBytes)
            writer.text(event.os, limit: maxStringBytes)
            writer.text(event.osVersion, limit: maxStringBytes)
            writer.text(event.device, limit: maxStringBytes)
            writer.text(event.botReason, limit: maxStringBytes)
            writer.text(event.country, limit: maxStringBytes)
            writer.text(event.region, limit: maxStringBytes)
            writer.text(event.city, limit: maxStringBytes)
            writer.text(event.referrerHost, limit: maxStringBytes)
            writer.text(event.sourceCategory, limit: maxStringBytes)
            writer.text(event.utmSource, limit: maxStringBytes)
            writer.text(event.utmMedium, limit: maxStringBytes)
            writer.text(event.utmCampaign, limit: maxStringBytes)
            writer.text(event.utmTerm, limit: maxStringBytes)
            writer.text(event.utmContent, limit: maxStringBytes)
            writer.text(event.clickID, limit: maxStringBytes)
            writer.text(event.currency, limit: maxStringBytes)
            writer.text(event.properties, limit: maxPropertiesBytes)
            writer.text(event.channel, limit: maxStringBytes)
            writer.text(event.sessionChannel, limit: maxStringBytes)
            writer.text(event.orgID, limit: maxStringBytes)
            writer.text(event.org, limit: maxStringBytes)
            writer.text(event.experimentID, limit: maxStringBytes)
            writer.text(event.variant, limit: maxStringBytes)
            writer.text(event.threadID, limit: maxStringBytes)
            return writer.count
        }
    }

    /// Decodes a record into an event (export, tools, tests).
    public static func decode(_ record: ByteBuffer) throws -> TrackingEvent {
        try record.withUnsafeReadableBytes { bytes in
            let fields = try Fields(record: bytes)
            func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
            var event = TrackingEvent(
                id: fields.id, timeMilliseconds: fields.timeMilliseconds, site: text(fields.site),
                host: text(fields.host), kind: fields.kind, method: text(fields.method), scheme: text(fields.scheme),
                target: text(fields.target), status: Int(clamping: fields.status), bytesIn: Int(clamping: fields.bytesIn),
                bytesOut: Int(clamping: fields.bytesOut), durationMicroseconds: Int(clamping: fields.durationMicroseconds),
                upstream: text(fields.upstream), upstreamMicroseconds: Int(clamping: fields.upstreamMicroseconds),
                referrer: text(fields.referrer), userAgent: text(fields.userAgent),
                httpVersion: text(fields.httpVersion), tlsVersion: text(fields.tlsVersion),
                requestID: RequestID(text(fields.requestID)),
                clientAddress: fields.version == 1
                    ? IPAnonymizer.anonymize(text(fields.clientAddress)) : text(fields.clientAddress))
            fields.fillReportFields(of: &event)
            event.eventType = text(fields.eventType)
            event.userID = text(fields.userID)
            event.clickID = text(fields.clickID)
            event.properties = text(fields.properties)
            event.latitude = fields.latitude.isNaN ? nil : fields.latitude
            event.longitude = fields.longitude.isNaN ? nil : fields.longitude
            event.consentFlags = fields.consentFlags
            return event
        }
    }

    /// The fields reports read (site, target, status, upstream and its time, visitor and session, device, location,
    /// source, campaign, channel, event name, money), or nil when `keep` refuses the record by its kind and time: a report skips most of a
    /// spool without making a string, and never makes the ones it does not show (agent, addresses, properties).
    public static func decodeForReports(_ record: ByteBuffer, keep: (TrackingEvent.Kind, Int64) -> Bool) throws -> TrackingEvent? {
        try record.withUnsafeReadableBytes { bytes in
            let fields = try Fields(record: bytes)
            guard keep(fields.kind, fields.timeMilliseconds) else { return nil }
            func text(_ bytes: UnsafeRawBufferPointer) -> String { bytes.isEmpty ? "" : String(decoding: bytes, as: UTF8.self) }
            var event = TrackingEvent(
                id: fields.id, timeMilliseconds: fields.timeMilliseconds, site: text(fields.site), host: "", kind: fields.kind,
                method: "", scheme: "", target: text(fields.target), status: Int(clamping: fields.status), bytesIn: 0, bytesOut: 0,
                durationMicroseconds: Int(clamping: fields.durationMicroseconds), upstream: text(fields.upstream),
                upstreamMicroseconds: Int(clamping: fields.upstreamMicroseconds), httpVersion: "", clientAddress: "")
            fields.fillReportFields(of: &event)
            return event
        }
    }

    /// The visitor id of a record, in place (empty for version 1 records and unreadable ones).
    public static func visitorID(of record: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        (try? Fields(record: record))?.visitorID ?? empty
    }

    /// A record's fields read in place, in one bounds-checked pass: the strings point into the record's bytes and
    /// are valid as long as they are. The one reader of the format (decoding and RowBinary shipping both use it).
    struct Fields {
        var version: UInt8
        var kind: TrackingEvent.Kind
        var id: EventID
        var timeMilliseconds: Int64
        var status, bytesIn, bytesOut, durationMicroseconds, upstreamMicroseconds: UInt64
        var site, host, method, scheme, target, upstream, referrer, userAgent: UnsafeRawBufferPointer
        var httpVersion, tlsVersion, requestID, clientAddress: UnsafeRawBufferPointer
        // Version 2; version 1 records read as empty and zero.
        var sessionStart = false
        var latitude = Double.nan
        var longitude = Double.nan
        var consentFlags: Int64 = 0
        var revenue = 0.0
        var eventName = empty, eventType = empty, visitorID = empty, sessionID = empty, userID = empty
        var browser = empty, browserVersion = empty, os = empty, osVersion = empty, device = empty, botReason = empty
        var country = empty, region = empty, city = empty, referrerHost = empty, sourceCategory = empty
        var utmSource = empty, utmMedium = empty, utmCampaign = empty, utmTerm = empty, utmContent = empty
        var clickID = empty, currency = empty, properties = empty
        // Version 3.
        var channel = empty, sessionChannel = empty
        // Version 4.
        var orgID = empty, org = empty, experimentID = empty, variant = empty, threadID = empty

        /// Sets the fields reports read (beyond the request's own): identity, device, location, source, campaign,
        /// channel, event name, money.
        func fillReportFields(of event: inout TrackingEvent) {
            func text(_ bytes: UnsafeRawBufferPointer) -> String { bytes.isEmpty ? "" : String(decoding: bytes, as: UTF8.self) }
            event.eventName = text(eventName)
            event.eventType = text(eventType)
            event.visitorID = text(visitorID)
            event.sessionID = text(sessionID)
            event.browser = text(browser)
            event.browserVersion = text(browserVersion)
            event.os = text(os)
            event.osVersion = text(osVersion)
            event.device = text(device)
            event.botReason = text(botReason)
            event.country = text(country)
            event.region = text(region)
            event.city = text(city)
            event.referrerHost = text(referrerHost)
            event.sourceCategory = text(sourceCategory)
            event.utmSource = text(utmSource)
            event.utmMedium = text(utmMedium)
            event.utmCampaign = text(utmCampaign)
            event.utmTerm = text(utmTerm)
            event.utmContent = text(utmContent)
            event.currency = text(currency)
            event.channel = text(channel)
            event.sessionChannel = text(sessionChannel)
            event.orgID = text(orgID)
            event.org = text(org)
            event.experimentID = text(experimentID)
            event.variant = text(variant)
            event.threadID = text(threadID)
            event.sessionStart = sessionStart
            event.revenue = revenue
        }

        init(record: UnsafeRawBufferPointer) throws {
            var reader = RecordReader(bytes: record)
            version = try reader.byte()
            guard (1...4).contains(version) else {
                throw DecodingError(description: "unknown record version \(version)")
            }
            guard let kind = TrackingEvent.Kind(rawValue: try reader.byte()) else {
                throw DecodingError(description: "unknown event kind")
            }
            self.kind = kind
            id = EventID(high: try reader.fixed(), low: try reader.fixed())
            timeMilliseconds = Int64(bitPattern: try reader.fixed())
            status = try reader.varint()
            bytesIn = try reader.varint()
            bytesOut = try reader.varint()
            durationMicroseconds = try reader.varint()
            upstreamMicroseconds = try reader.varint()
            site = try reader.string()
            host = try reader.string()
            method = try reader.string()
            scheme = try reader.string()
            target = try reader.string()
            upstream = try reader.string()
            referrer = try reader.string()
            userAgent = try reader.string()
            httpVersion = try reader.string()
            tlsVersion = try reader.string()
            requestID = try reader.string()
            clientAddress = try reader.string()
            guard version >= 2 else { return }
            let flags = try reader.byte()
            sessionStart = flags & 1 != 0
            if flags & 2 != 0 {
                latitude = Double(bitPattern: try reader.fixed())
                longitude = Double(bitPattern: try reader.fixed())
            }
            consentFlags = Int64(bitPattern: try reader.varint())
            revenue = Double(bitPattern: try reader.varint())
            eventName = try reader.string()
            eventType = try reader.string()
            visitorID = try reader.string()
            sessionID = try reader.string()
            userID = try reader.string()
            browser = try reader.string()
            browserVersion = try reader.string()
            os = try reader.string()
            osVersion = try reader.string()
            device = try reader.string()
            botReason = try reader.string()
            country = try reader.string()
            region = try reader.string()
            city = try reader.string()
            referrerHost = try reader.string()
            sourceCategory = try reader.string()
            utmSource = try reader.string()
            utmMedium = try reader.string()
            utmCampaign = try reader.string()
            utmTerm = try reader.string()
            utmContent = try reader.string()
            clickID = try reader.string()
            currency = try reader.string()
            properties = try reader.string()
            guard version >= 3 else { return }
            channel = try reader.string()
            sessionChannel = try reader.string()
            guard version >= 4 else { return }
            orgID = try reader.string()
            org = try reader.string()
            experimentID = try reader.string()
            variant = try reader.string()
            threadID = try reader.string()
        }

        /// The target up to `?`, and the query after it.
        var pathAndQuery: (path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer) {
            guard let question = target.firstIndex(of: UInt8(ascii: "?")) else {
                return (target, UnsafeRawBufferPointer(start: nil, count: 0))
            }
            return (UnsafeRawBufferPointer(rebasing: target[..<question]),
                    UnsafeRawBufferPointer(rebasing: target[(question + 1)...]))
        }
    }

    private nonisolated(unsafe) static let empty = UnsafeRawBufferPointer(start: nil, count: 0)

    /// Reads a record front to back, checking every length against the record's end.
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
    @inline(__always)
    mutating func text(_ value: String, limit: Int) {
        // Most of a request event's ~45 strings are empty (API, campaign and location fields): one byte, no call.
        guard !value.isEmpty else {
            byte(0)
            return
        }
        nonEmptyText(value, limit: limit)
    }

    /// A request ID: a made one's digits are written from its two numbers (no string).
    mutating func text(_ value: RequestID, limit: Int) {
        guard !value.isEmpty else {
            byte(0)
            return
        }
        value.withUTF8 { text(utf8: $0.bindMemory(to: UInt8.self), limit: limit) }
    }

    private mutating func nonEmptyText(_ value: String, limit: Int) {
        // Native strings lend their bytes in place; only a bridged one is copied into contiguous form.
        let lent: Void? = value.utf8.withContiguousStorageIfAvailable { text(utf8: $0, limit: limit) }
        guard lent == nil else { return }
        var copy = value
        copy.withUTF8 { text(utf8: $0, limit: limit) }
    }

    private mutating func text(utf8: UnsafeBufferPointer<UInt8>, limit: Int) {
        var end = utf8.count
        if end > limit {
            end = limit
            // Back up over continuation bytes (10xxxxxx) so the cut never splits a character.
            while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
        }
        string(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[0..<end]))
    }
}
