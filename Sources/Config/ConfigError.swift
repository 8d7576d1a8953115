/// A configuration problem, located precisely enough that a user can fix it without guessing.
///
/// The description reads like a compiler diagnostic:
/// `conf/vantage.yaml:12:7: sites[0].routes[1].static.root: expected a string, found a list`.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file the problem is in.
    public var file: String
    /// 1-based line, or 0 when the problem has no position (a missing file, say).
    public var line: Int
    /// 1-based column, or 0 when unknown.
    public var column: Int
    /// Dotted key path from the document root, such as `sites[0].routes[1].path`.
    public var keyPath: String
    /// What was wrong and, where it helps, what was expected and what was found.
    public var message: String

    /// Creates an error at an explicit position.
    public init(file: String, line: Int, column: Int, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
    }

    public var description: String {
        var text = file
        if line > 0 {
            text += ":\(line)"
            if column > 0 { text += ":\(column)" }
        }
        text += ": "
        if !keyPath.isEmpty { text += "\(keyPath): " }
        return text + message
    }
}

/// Several configuration problems found in one pass, so a user fixes them all at once.
public struct ConfigErrors: Error, CustomStringConvertible, Sendable {
    /// The problems in file order.
    public var errors: [ConfigError]

    /// Wraps a non-empty list of problems.
    public init(_ errors: [ConfigError]) {
        self.errors = errors
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n")
    }
}

/// The problems of the independent parts of a document (top-level sections, sites, routes), gathered so that one
/// pass reports them all, the way a compiler goes on after the first error.
public struct ConfigProblems: Sendable {
    public private(set) var errors: [ConfigError] = []

    public init() {}

    /// Runs `read`; its configuration problems are kept (and nil returned), any other error is thrown.
    public mutating func collect<Value>(_ read: () throws -> Value) throws -> Value? {
        do {
            return try read()
        } catch let error as ConfigError {
            errors.append(error)
        } catch let several as ConfigErrors {
            errors += several.errors
        }
        return nil
    }

    public var isEmpty: Bool { errors.isEmpty }

    /// Throws what was gathered: one error as itself, several as ``ConfigErrors`` in file order.
    public func throwIfAny() throws {
        guard !errors.isEmpty else { return }
        if errors.count == 1 { throw errors[0] }
        throw ConfigErrors(errors.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
    }
}
