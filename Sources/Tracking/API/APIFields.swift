import Foundation
import NIOCore

/// The fields one tracking API call carries, merged from its sources in the older tracker's order (later ones win):
/// cookies, `/key/value` path tuples, the query string, then the JSON body (with its `params` object folded in).
///
/// Keys are lower-cased; values keep their case (the older tracker lower-cased them, which broke ids, slugs and
/// currencies). Numbers and booleans are accepted where strings are expected and kept as their text, so clients
/// that send `"page": 1` or `"rel": 1` work. Bounded: a value longer than the limit is cut at a character boundary
/// and its name kept in ``truncated`` (a browser beacon with one bulky field is not lost whole); more fields than
/// the limit or an over-long name refuse the call with a 400 that names the field.
public struct APIFields: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        public var maxFields = 256
        public var maxKeyBytes = 64
        public var maxValueBytes = 2048
        public init() {}
    }

    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// A value as received: text (strings, and numbers or booleans as written), or JSON for nested values.
    public enum Value: Sendable, Equatable {
        case text(String)
        case number(String)
        case bool(Bool)
        /// An object or array, as compact JSON.
        case json(String)

        /// The text form (numbers and booleans coerced).
        public var text: String {
            switch self {
            case .text(let value), .number(let value), .json(let value): value
            case .bool(let value): value ? "true" : "false"
            }
        }
    }

    /// In arrival order, one entry per key.
    public private(set) var entries: [(key: String, value: Value)] = []
    /// Fields whose value was cut to the value limit, in the order they came.
    public private(set) var truncated: [String] = []
    private var index: [String: Int] = [:]
    let limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public static func == (lhs: APIFields, rhs: APIFields) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public subscript(key: String) -> Value? { index[key].map { entries[$0].value } }

    /// The text of `key`, when present and not empty.
    public func text(_ key: String) -> String? {
        guard let value = self[key]?.text, !value.isEmpty else { return nil }
        return value
    }

    public var count: Int { entries.count }

    /// Sets `key` (lower-cased), replacing an earlier value; `overwrite: false` keeps an earlier one.
    public mutating func set(_ rawKey: some StringProtocol, _ value: Value, overwrite: Bool = true) throws {
        let key = rawKey.lowercased()
        guard !key.isEmpty else { return }
        guard key.utf8.count <= limits.maxKeyBytes else {
            throw Refusal(description: "field name \"\(key.prefix(32))…\" is longer than \(limits.maxKeyBytes) bytes")
        }
        var value = value
        if value.text.utf8.count > limits.maxValueBytes {
            // Cut JSON is no longer JSON: it is kept as the text it is.
            value = .text(Self.prefix(of: value.text, maxBytes: limits.maxValueBytes))
            if !truncated.contains(key) { truncated.append(key) }
        }
        if let existing = index[key] {
            if overwrite { entries[existing].value = value }
            return
        }
        guard entries.count < limits.maxFields else {
            throw Refusal(description: "more than \(limits.maxFields) fields")
        }
        index[key] = entries.count
        entries.append((key, value))
    }

    /// The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that ends on a character boundary.
    static func prefix(of text: String, maxBytes: Int) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.count > maxBytes else { return text }
        var end = maxBytes
        // Back up over continuation bytes (10xxxxxx) so the cut never splits a character.
        while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: utf8[..<end], as: UTF8.self)
    }

    /// Sets a value the caller bounded itself (a webhook's body, up to its own `keep`), past the value limit.
    mutating func setUnbounded(_ key: String, _ text: String) {
        if let existing = index[key] {
            entries[existing].value = .text(text)
            return
        }
        index[key] = entries.count
        entries.append((key, .text(text)))
    }

    /// Names `key` among the cut values (a caller that cut it itself, as a webhook's body is cut before decoding).
    public mutating func markTruncated(_ key: String) {
        if !truncated.contains(key) { truncated.append(key) }
    }

    /// Moves the value of `from` to `to` (replacing what `to` had), as a profile maps an older system's names.
    public mutating func rename(_ from: String, to: String) {
        guard let value = self[from] else { return }
        remove(from)
        try? set(to, value)
    }

    public mutating func remove(_ key: String) {
        guard let position = index.removeValue(forKey: key) else { return }
        entries.remove(at: position)
        for (name, slot) in index where slot > position { index[name] = slot - 1 }
    }

    /// `/k1/v1/k2/v2` (already split off the endpoint): pairs of percent-decoded segments; a trailing key without
    /// a value is kept with an empty value.
    public mutating func addPathTuples(_ path: Substring) throws {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        var position = 0
        while position < segments.count {
            let key = Self.percentDecode(segments[position], plusIsSpace: false)
            let value = position + 1 < segments.count ? Self.percentDecode(segments[position + 1], plusIsSpace: false) : ""
            try set(key, .text(value))
            position += 2
        }
    }

    /// `a=1&b=2` (`+` is a space).
    public mutating func addQuery(_ query: Substring) throws {
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.percentDecode(parts[0], plusIsSpace: true)
            let value = parts.count == 2 ? Self.percentDecode(parts[1], plusIsSpace: true) : ""
            try set(key, .text(value))
        }
    }

    /// A JSON object body. Its `params` object's members are added too, without replacing top-level fields.
    public mutating func addJSONBody(_ body: ByteBuffer) throws {
        guard body.readableBytes > 0 else { return }
        try addJSONObject(try Self.jsonObject(body))
    }

    /// The members of a JSON object, in name order; `foldingIn` names a nested object whose members are added too,
    /// without replacing top-level fields (the tracker's `params`).
    public mutating func addJSONObject(_ object: [String: Any], foldingIn nestedName: String? = "params", overwrite: Bool = true) throws {
        var nested: [String: Any]?
        for key in object.keys.sorted() {
            let raw = object[key]!
            if let nestedName, key.lowercased() == nestedName, let members = raw as? [String: Any] {
                nested = members
                continue
            }
            if let value = try Self.value(raw) { try set(key, value, overwrite: overwrite) }
        }
        for key in (nested ?? [:]).keys.sorted() {
            if let value = try Self.value(nested![key]!) { try set(key, value, overwrite: false) }
        }
    }

    /// A body that must be a JSON object.
    static func jsonObject(_ body: ByteBuffer) throws -> [String: Any] {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(body.readableBytesView), options: [.fragmentsAllowed])
        } catch {
            throw Refusal(description: "the body is not valid JSON")
        }
        guard let object = parsed as? [String: Any] else { throw Refusal(description: "expected a JSON object body") }
        return object
    }

    /// A JSON value as a field value (nil for null).
    static func value(_ raw: Any) throws -> Value? {
        switch raw {
        case is NSNull:
            return nil
        case let text as String:
            return .text(text)
        case let number as NSNumber:
            // JSONSerialization gives booleans as NSNumbers of type "c" (on Linux and Darwin alike).
            let type = String(cString: number.objCType)
            if type == "c" { return .bool(number.boolValue) }
            if type != "d" { return .number(String(number.int64Value)) }
            let double = number.doubleValue
            if double.rounded() == double, abs(double) < 9.0e15 { return .number(String(Int64(double))) }
            return .number(String(double))
        default:
            guard JSONSerialization.isValidJSONObject(raw),
                let data = try? JSONSerialization.data(withJSONObject: raw, options: [.sortedKeys])
            else { return .text(String(describing: raw)) }
            return .json(String(decoding: data, as: UTF8.self))
        }
    }

    /// Percent-decoding; invalid escapes stay as they are.
    public static func percentDecode(_ text: Substring, plusIsSpace: Bool) -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) || (plusIsSpace && text.utf8.contains(UInt8(ascii: "+"))) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        let utf8 = Array(text.utf8)
        var position = 0
        while position < utf8.count {
            let byte = utf8[position]
            if byte == UInt8(ascii: "%"), position + 2 < utf8.count, let high = hexValue(utf8[position + 1]), let low = hexValue(utf8[position + 2])
            {
                bytes.append(high << 4 | low)
                position += 3
                continue
            }
            bytes.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            position += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
