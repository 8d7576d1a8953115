import Config
import NIOCore
import RequestTarget
import Tracking

/// How access log lines are written: `json` (one object a line; fields selectable) or `combined` (the NCSA combined
/// format of nginx and Apache, which goaccess, fail2ban and most log shippers read as it is).
public struct AccessLogFormat: Sendable, Equatable {
    public enum Style: String, Sendable {
        case json
        case combined
    }

    /// The JSON fields, in the order they are written. Int-backed, so a field's bit in ``fieldBits`` costs nothing
    /// to find: the line is written for every request.
    public enum Field: Int, Sendable, CaseIterable {
        case time, client, method, host, uri, proto, status, bytesSent, bytesReceived, durationMilliseconds
        case durationMicroseconds, site, route, tls, requestID, eventID, upstream, upstreamMicroseconds, userAgent, referer

        /// The field's key in the line and in `fields:`.
        public var name: String {
            switch self {
            case .bytesSent: "bytes_sent"
            case .bytesReceived: "bytes_received"
            case .durationMilliseconds: "duration_ms"
            case .durationMicroseconds: "duration_us"
            case .requestID: "request_id"
            case .eventID: "event_id"
            case .upstreamMicroseconds: "upstream_us"
            case .userAgent: "user_agent"
            default: "\(self)"
            }
        }

        @inline(__always)
        var bit: UInt32 { 1 << UInt32(rawValue) }
    }

    public var style: Style = .json
    /// The JSON fields written (a bit per ``Field``); by default every one but `event_id` (formatting an event's
    /// ID costs on every request: named in `fields` when a log is joined with the events).
    var fieldBits: UInt32 = UInt32.max & ~Field.eventID.bit

    public init() {}

    /// Reads `format` and `fields` of `access_log:`.
    init(format: ConfigNode?, fields: ConfigNode?) throws {
        if let format { style = Style(rawValue: try format.oneOf(["json", "combined"]))! }
        if let fields {
            if style == .combined { throw fields.error("fields apply to the json format; combined has nginx's fixed fields") }
            let items = try fields.list()
            fieldBits = 0
            for (index, name) in try fields.stringList().enumerated() {
                guard let field = Field.allCases.first(where: { $0.name == name }) else {
                    throw items[index].error(
                        "unknown field \"\(name)\"; known: " + Field.allCases.map(\.name).joined(separator: ", "))
                }
                fieldBits |= field.bit
            }
        }
    }

    @inline(__always)
    func writes(_ field: Field) -> Bool { fieldBits & field.bit != 0 }
}

/// One exchange as the access log tells it, gathered by the request handler once the answer is complete.
struct AccessLogEntry {
    var milliseconds: Int
    var client: String
    var method: String
    var host: String?
    /// The target as sent, less personal query parameters.
    var uri: String
    var proto: String
    var status: Int
    var bytesSent: Int
    var bytesReceived: Int
    var elapsedNanoseconds: UInt64
    var site: String
    var route: String
    var tls: String?
    var requestID: RequestID?
    var eventID: String?
    var upstream: String?
    var upstreamMicroseconds: Int?
    var userAgent: String?
    var referer: String?

    /// Writes the line, newline excluded. `isoSecond` and `commonLogSecond` are the loop's clock, formatted once a
    /// second.
    func write(into buffer: inout ByteBuffer, format: AccessLogFormat, isoSecond: String, commonLogSecond: String) {
        switch format.style {
        case .json: writeJSON(into: &buffer, format: format, isoSecond: isoSecond)
        case .combined: writeCombined(into: &buffer, commonLogSecond: commonLogSecond)
        }
    }

    private func writeJSON(into buffer: inout ByteBuffer, format: AccessLogFormat, isoSecond: String) {
        var textBytes = client.utf8.count + method.utf8.count + uri.utf8.count + site.utf8.count + route.utf8.count
        textBytes += (host?.utf8.count ?? 0) + (tls?.utf8.count ?? 0) + (requestID?.utf8Count ?? 0)
        textBytes += (eventID?.utf8.count ?? 0) + (upstream?.utf8.count ?? 0) + (userAgent?.utf8.count ?? 0)
        textBytes += referer?.utf8.count ?? 0
        // Twelve strings, each quoted and at worst every byte escaped; eight numbers; the keys and constants.
        let bound = Self.jsonKeysBound + isoSecond.utf8.count + 8 * AccessLogLineWriter.decimalBound
            + AccessLogLineWriter.jsonStringBound(textBytes) + 2 * 12
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { memory in
            var line = AccessLogLineWriter(base: memory.baseAddress!)
            var first = true
            func key(_ name: StaticString) {
                if !first { line.byte(UInt8(ascii: ",")) }
                first = false
                line.bytes(name)
            }
            func string(_ field: AccessLogFormat.Field, _ name: StaticString, _ value: String?) {
                guard let value, format.writes(field) else { return }
                key(name)
                line.jsonString(value)
            }
            func number(_ field: AccessLogFormat.Field, _ name: StaticString, _ value: Int?) {
                guard let value, format.writes(field) else { return }
                key(name)
                line.decimal(value)
            }
            line.byte(UInt8(ascii: "{"))
            if format.writes(.time) {
                key("\"time\":\"")
                line.raw(isoSecond)
                line.byte(UInt8(ascii: "."))
                if milliseconds < 100 { line.byte(UInt8(ascii: "0")) }
                if milliseconds < 10 { line.byte(UInt8(ascii: "0")) }
                line.decimal(milliseconds)
                line.bytes("Z\"")
            }
            string(.client, "\"client\":", client)
            string(.method, "\"method\":", method)
            string(.host, "\"host\":", host ?? "")
            string(.uri, "\"uri\":", uri)
            if format.writes(.proto) {
                key("\"proto\":\"")
                line.raw(proto)
                line.byte(UInt8(ascii: "\""))
            }
            number(.status, "\"status\":", status)
            number(.bytesSent, "\"bytes_sent\":", bytesSent)
            number(.bytesReceived, "\"bytes_received\":", bytesReceived)
            number(.durationMilliseconds, "\"duration_ms\":", Int(elapsedNanoseconds / 1_000_000))
            number(.durationMicroseconds, "\"duration_us\":", Int(elapsedNanoseconds / 1000))
            string(.site, "\"site\":", site)
            string(.route, "\"route\":", route)
            string(.tls, "\"tls\":", tls)
            if let requestID, format.writes(.requestID) {
                key("\"request_id\":")
                requestID.withUTF8 { line.jsonString(utf8: $0) }
            }
            string(.eventID, "\"event_id\":", eventID)
            string(.upstream, "\"upstream\":", upstream)
            number(.upstreamMicroseconds, "\"upstream_us\":", upstreamMicroseconds)
            string(.userAgent, "\"user_agent\":", userAgent)
            string(.referer, "\"referer\":", referer)
            line.byte(UInt8(ascii: "}"))
            return line.count
        }
    }

    /// Every key, separator and constant of a JSON line, with room to spare (the protocol name included).
    private static let jsonKeysBound = 512

    /// `client - - [05/Dec/2026:06:27:11 +0000] "GET /uri HTTP/1.1" 200 612 "referer" "agent"`, with nginx's
    /// escaping of quoted fields (`"`, `\`, control and non-ASCII bytes as `\xHH`).
    private func writeCombined(into buffer: inout ByteBuffer, commonLogSecond: String) {
        buffer.writeString(client)
        buffer.writeStaticString(" - - [")
        buffer.writeString(commonLogSecond)
        buffer.writeStaticString("] \"")
        Self.writeEscaped(method, into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        Self.writeEscaped(uri, into: &buffer)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(proto)
        buffer.writeStaticString("\" ")
        buffer.writeDecimal(status)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeDecimal(bytesSent)
        buffer.writeStaticString(" \"")
        Self.writeEscaped(referer ?? "-", into: &buffer)
        buffer.writeStaticString("\" \"")
        Self.writeEscaped(userAgent ?? "-", into: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    static func writeEscaped(_ text: String, into buffer: inout ByteBuffer) {
        let hex: StaticString = "0123456789ABCDEF"
        for byte in text.utf8 {
            if byte < 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                buffer.writeStaticString("\\x")
                buffer.writeInteger(hex.utf8Start[Int(byte >> 4)])
                buffer.writeInteger(hex.utf8Start[Int(byte & 0x0F)])
            } else {
                buffer.writeInteger(byte)
            }
        }
    }
}
