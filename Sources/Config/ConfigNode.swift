import Foundation
import Yams

/// One value of a configuration document with its position and key path, and typed accessors that fail with a
/// ``ConfigError`` naming the file, line, key path, what was expected and what was found.
///
/// Modules read their own configuration types from a `ConfigNode`, so each module owns and documents its keys while
/// every error message comes out in the same shape.
public struct ConfigNode: Sendable {
    indirect enum Value: Sendable {
        case null
        case scalar(String)
        case mapping([(key: String, node: ConfigNode)])
        case sequence([ConfigNode])
    }

    let value: Value
    /// The file the node came from.
    public let file: String
    /// The dotted key path of the node (`sites[0].routes[1]`).
    public let keyPath: String
    /// 1-based line of the node in the file.
    public let line: Int
    /// 1-based column of the node in the file.
    public let column: Int
    let environment: Environment

    init(value: Value, file: String, keyPath: String, line: Int, column: Int, environment: Environment) {
        self.value = value
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.column = column
        self.environment = environment
    }

    /// An error positioned at this node.
    public func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: line, column: column, keyPath: keyPath, message: message)
    }

    /// An error that says what was expected and shows what was found.
    public func mismatch(expected: String) -> ConfigError {
        error("expected \(expected), found \(foundDescription)")
    }

    var foundDescription: String {
        switch value {
        case .null: return "nothing"
        case .scalar(let text): return "\"\(text)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// A file or folder path. A relative one is taken from the config file's folder, so a configuration means the
    /// same files whatever the working directory (`vantage run --config /etc/vantage/vantage.yaml` from anywhere).
    public func path() throws -> String {
        let text = try nonEmptyString()
        if text.hasPrefix("/") { return text }
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent()
        return folder.appendingPathComponent(text).standardizedFileURL.path
    }

    /// True when the node is YAML null (`~`, `null` or an empty value).
    public var isNull: Bool {
        if case .null = value { return true }
        return false
    }

    // MARK: - Scalars

    /// The node as a string, with `${VAR}` and `${VAR:-default}` replaced from the environment.
    public func string() throws -> String {
        guard case .scalar(let text) = value else { throw mismatch(expected: "a string") }
        return try environment.substitute(text, at: self)
    }

    /// The node as a non-empty string.
    public func nonEmptyString() throws -> String {
        let text = try string()
        if text.isEmpty { throw error("expected a non-empty string") }
        return text
    }

    /// The node as an integer within `range`.
    public func int(in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        let text = try string()
        guard let number = Int(text.replacingOccurrences(of: "_", with: "")) else {
            throw mismatch(expected: "a whole number")
        }
        guard range.contains(number) else {
            throw error("expected a number from \(range.lowerBound) to \(range.upperBound), found \(number)")
        }
        return number
    }

    /// The node as a boolean (`true`/`false`, `yes`/`no`, `on`/`off`).
    public func bool() throws -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw mismatch(expected: "true or false")
        }
    }

    /// The node as one of a closed set of words.
    public func oneOf(_ choices: [String]) throws -> String {
        let text = try string()
        guard choices.contains(text) else {
            var message = "expected one of \(choices.joined(separator: ", ")), found \"\(text)\""
            if let guess = closestMatch(to: text, in: choices) { message += " (did you mean \"\(guess)\"?)" }
            throw error(message)
        }
        return text
    }

    /// A duration such as `500ms`, `10s`, `5m`, `2h` or `1d`; a bare number means seconds.
    public func duration() throws -> Duration {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if let value = Double(number), value >= 0 {
                return .milliseconds(Int64((value * scale * 1000).rounded()))
            }
        }
        if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        throw mismatch(expected: "a duration such as 500ms, 10s, 5m or 1h")
    }

    /// A size in bytes such as `16KB`, `10MB`, `2GB` (powers of 1024) or a plain number of bytes.
    public func byteSize() throws -> Int {
        let text = try string().trimmingCharacters(in: .whitespaces).uppercased()
        let units: [(String, Int)] = [
            ("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
            ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value >= 0 {
                return Int(value * Double(scale))
            }
        }
        if let bytes = Int(text), bytes >= 0 { return bytes }
        throw mismatch(expected: "a size such as 512, 16KB, 10MB or 2GB")
    }

    // MARK: - Collections

    /// The node as a list; a single scalar counts as a list of one, so `hosts: example.com` reads naturally.
    public func list() throws -> [ConfigNode] {
        switch value {
        case .sequence(let items): return items
        case .scalar: return [self]
        case .null: return []
        case .mapping: throw mismatch(expected: "a list")
        }
    }

    /// The node as a list of strings (a single string counts as a list of one).
    public func stringList() throws -> [String] {
        try list().map { try $0.string() }
    }

    /// The node as a mapping whose keys must all be in `keys`; an unknown key is an error with a "did you mean".
    /// A mapping whose unknown keys go to `problems` while its known ones are read on (so a typo in one key does
    /// not hide the problems of the rest).
    public func mapping(keys allowed: [String], problems: inout ConfigProblems) throws -> ConfigMapping {
        guard let checked = try problems.collect({ try mapping(keys: allowed) }) else {
            guard case .mapping(let entries) = value else { throw mismatch(expected: "a mapping with keys \(allowed.joined(separator: ", "))") }
            return ConfigMapping(node: self, entries: entries.filter { allowed.contains($0.key) })
        }
        return checked
    }

    public func mapping(keys allowed: [String]) throws -> ConfigMapping {
        guard case .mapping(let entries) = value else {
            if case .null = value { return ConfigMapping(node: self, entries: []) }
            throw mismatch(expected: "a mapping with keys \(allowed.joined(separator: ", "))")
        }
        var problems = ConfigProblems()
        for entry in entries where !allowed.contains(entry.key) {
            var message = "unknown key \"\(entry.key)\""
            if let guess = closestMatch(to: entry.key, in: allowed) {
                message += " (did you mean \"\(guess)\"?)"
            } else {
                message += "; known keys here: \(allowed.joined(separator: ", "))"
            }
            _ = try problems.collect { throw entry.node.error(message) }
        }
        try problems.throwIfAny()
        return ConfigMapping(node: self, entries: entries)
    }
}

/// A mapping whose keys were checked against the allowed set.
public struct ConfigMapping: Sendable {
    /// The mapping node itself, for errors about the mapping as a whole.
    public let node: ConfigNode
    let entries: [(key: String, node: ConfigNode)]

    /// The value for `key`, or nil when absent or null.
    public subscript(key: String) -> ConfigNode? {
        guard let found = entries.first(where: { $0.key == key })?.node, !found.isNull else { return nil }
        return found
    }

    /// The value for `key`, or an error saying it is required.
    public func required(_ key: String, expected: String) throws -> ConfigNode {
        guard let found = self[key] else {
            throw node.error("missing required key \"\(key)\" (expected \(expected))")
        }
        return found
    }

    /// Whether the mapping has `key` with a non-null value.
    public func has(_ key: String) -> Bool { self[key] != nil }
}

extension ConfigNode {
    /// The value of an environment variable from the same environment `${VAR}` substitution reads.
    public func environmentValue(_ name: String) -> String? {
        if let value = environment.variables[name] { return value }
        return environment.placeholderSecrets ? "unset-\(name)-placeholder-for-a-command-without-secrets" : nil
    }
}

extension ConfigNode {
    /// The node as a free-form mapping (keys chosen by the user, such as header names), in file order.
    public func entries() throws -> [(key: String, node: ConfigNode)] {
        switch value {
        case .mapping(let entries): return entries
        case .null: return []
        default: throw mismatch(expected: "a mapping")
        }
    }
}

extension ConfigNode {
    /// The node as a JSON-compatible value (for settings passed through as data, such as privacy jurisdictions):
    /// mappings become dictionaries, lists arrays, `true`/`false` booleans, integers and decimals numbers, other
    /// scalars strings (after `${VAR}` substitution), null `NSNull`.
    public func jsonValue() throws -> Any {
        switch value {
        case .null:
            return NSNull()
        case .sequence(let items):
            return try items.map { try $0.jsonValue() }
        case .mapping(let entries):
            var object: [String: Any] = [:]
            for entry in entries { object[entry.key] = try entry.node.jsonValue() }
            return object
        case .scalar:
            let text = try string()
            if text == "true" || text == "false" { return text == "true" }
            if let integer = Int(text) { return integer }
            if let decimal = Double(text), decimal.isFinite, text.contains(".") { return decimal }
            return text
        }
    }
}
