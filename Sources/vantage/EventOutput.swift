import Foundation
import NIOCore
import Tracking

/// How `vantage events` prints events: NDJSON (every field, or the `--fields` chosen), CSV (a header line, then one
/// row an event, RFC 4180 quoting) or a table for people (aligned columns of the chosen fields).
struct EventOutput {
    enum Format: String, CaseIterable {
        case ndjson, csv, table
    }

    /// What a table shows when no `--fields` are given.
    static let tableFields = ["ts", "kind", "site", "method", "path", "status", "vid", "channel", "country", "browser"]

    /// Every field an event can have, in the JSON form's order (CSV's header must name them all at its first row,
    /// whatever fields that first event happens to have).
    static let everyField: [String] = {
        var sample = TrackingEvent(
            id: EventID(high: 0, low: 0), timeMilliseconds: 0, site: "", host: "", kind: .ltv, method: "", scheme: "",
            target: "", status: 0, bytesIn: 0, bytesOut: 0, durationMicroseconds: 0, httpVersion: "", clientAddress: "")
        (sample.latitude, sample.longitude, sample.properties) = (0, 0, "{}")
        var buffer = ByteBuffer()
        sample.writeJSON(into: &buffer)
        return allFields(of: buffer)
    }()

    let format: Format
    /// nil: every field (NDJSON and CSV), ``tableFields`` (table).
    let fields: [String]?
    private var wroteHeader = false
    /// Table rows wait until the end so the columns can be sized.
    private var tableRows: [[String]] = []
    /// The column widths of the first table written; later batches (a followed tail) keep them and no header.
    private var tableWidths: [Int]?

    init(format: Format, fields: [String]?) {
        self.format = format
        self.fields = fields
    }

    /// Adds one event's text to `output`.
    mutating func write(_ event: TrackingEvent, into output: inout ByteBuffer) {
        if format == .ndjson && fields == nil {
            event.writeJSON(into: &output)
            output.writeInteger(UInt8(ascii: "\n"))
            return
        }
        let (names, values) = columns(of: event)
        switch format {
        case .ndjson:
            let object = Dictionary(zip(names, values), uniquingKeysWith: { first, _ in first })
            // Keys in the order asked for (JSONSerialization would sort or scramble them).
            output.writeString("{" + names.compactMap { name in object[name].map { "\(Self.jsonString(name)):\(Self.jsonValue($0))" } }
                .joined(separator: ",") + "}\n")
        case .csv:
            if !wroteHeader {
                output.writeString(names.map(Self.csvField).joined(separator: ",") + "\r\n")
                wroteHeader = true
            }
            output.writeString(values.map { Self.csvField(Self.text($0)) }.joined(separator: ",") + "\r\n")
        case .table:
            if tableRows.isEmpty && tableWidths == nil { tableRows.append(names) }
            tableRows.append(values.map(Self.text))
        }
    }

    /// Writes what waited for the end (a table's rows).
    mutating func finish(into output: inout ByteBuffer) {
        guard format == .table, !tableRows.isEmpty else { return }
        let widths = tableWidths ?? tableRows[0].indices.map { column in min(48, tableRows.map { $0[column].count }.max() ?? 0) }
        tableWidths = widths
        for row in tableRows {
            let cells = row.enumerated().map { column, cell -> String in
                let shown = cell.count > widths[column] ? String(cell.prefix(max(0, widths[column] - 1))) + "…" : cell
                return shown.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            var line = cells.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            output.writeString(line + "\n")
        }
        tableRows.removeAll()
    }

    /// The chosen fields of the event's JSON form, with `ts` as ISO 8601 in tables and CSV.
    private func columns(of event: TrackingEvent) -> ([String], [Any]) {
        var buffer = ByteBuffer()
        event.writeJSON(into: &buffer)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]) ?? [:]
        let names = fields ?? (format == .table ? Self.tableFields : Self.everyField)
        let values = names.map { name -> Any in
            if name == "ts", format != .ndjson, let milliseconds = object["ts"] as? Int {
                return Self.isoTime(milliseconds)
            }
            return object[name] ?? NSNull()
        }
        return (names, values)
    }

    /// Field names in the order the JSON form writes them.
    private static func allFields(of json: ByteBuffer) -> [String] {
        let text = String(buffer: json)
        let pattern = try! NSRegularExpression(pattern: #"[{,]"([a-z_]+)":"#)
        return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        }.reduce(into: [String]()) { names, name in if !names.contains(name) { names.append(name) } }
    }

    static func isoTime(_ milliseconds: Int) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    static func text(_ value: Any) -> String {
        switch value {
        case is NSNull: return ""
        case let string as String: return string
        case let number as NSNumber: return number.stringValue
        default:
            let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
    }

    static func jsonValue(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case let string as String: return jsonString(string)
        default:
            let data = (try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("[null]".utf8)
            return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
        }
    }
}
