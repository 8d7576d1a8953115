import Foundation
import Yams

/// A parsed configuration file: the root ``ConfigNode`` plus what is needed to report errors against the file.
public struct ConfigDocument: Sendable {
    /// The root of the document (a mapping for every Vantage config).
    public let root: ConfigNode

    /// Parses YAML text. `file` is only used in error messages; `environment` feeds `${VAR}` substitution.
    public init(
        yaml: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        secretsOptional: Bool = false
    ) throws(ConfigError) {
        let env = Environment(variables: environment, placeholderSecrets: secretsOptional)
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw Self.describe(error, file: file)
        } catch {
            throw ConfigError(file: file, line: 0, column: 0, keyPath: "", message: "not valid YAML: \(error)")
        }
        guard let node else {
            root = ConfigNode(value: .null, file: file, keyPath: "", line: 1, column: 1, environment: env)
            return
        }
        root = try Self.convert(node, file: file, keyPath: "", environment: env)
    }

    /// Reads and parses a file. `secretsOptional`: secrets from the environment may be unset (they read as a
    /// placeholder), for commands that use none of them.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment, secretsOptional: Bool = false
    ) throws(ConfigError) -> ConfigDocument {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read as UTF-8 text" : "does not exist"
            throw ConfigError(file: path, line: 0, column: 0, keyPath: "", message: "the config file \(reason)")
        }
        return try ConfigDocument(yaml: text, file: path, environment: environment, secretsOptional: secretsOptional)
    }

    private static func convert(_ node: Node, file: String, keyPath: String, environment: Environment)
        throws(ConfigError) -> ConfigNode
    {
        let line = node.mark?.line ?? 0
        let column = node.mark?.column ?? 0
        func make(_ value: ConfigNode.Value) -> ConfigNode {
            ConfigNode(value: value, file: file, keyPath: keyPath, line: line, column: column, environment: environment)
        }
        switch node {
        case .scalar(let scalar):
            if scalar.style == .plain, ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return make(.null) }
            return make(.scalar(scalar.string))
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for (index, item) in sequence.enumerated() {
                items.append(try convert(item, file: file, keyPath: "\(keyPath)[\(index)]", environment: environment))
            }
            return make(.sequence(items))
        case .mapping(let mapping):
            var entries: [(key: String, node: ConfigNode)] = []
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw ConfigError(
                        file: file, line: keyNode.mark?.line ?? line, column: keyNode.mark?.column ?? column,
                        keyPath: keyPath, message: "expected a plain key, found a complex key")
                }
                let key = keyScalar.string
                if entries.contains(where: { $0.key == key }) {
                    throw ConfigError(
                        file: file, line: keyNode.mark?.line ?? line, column: keyNode.mark?.column ?? column,
                        keyPath: keyPath, message: "key \"\(key)\" appears twice")
                }
                let childPath = keyPath.isEmpty ? key : "\(keyPath).\(key)"
                var child = try convert(valueNode, file: file, keyPath: childPath, environment: environment)
                if child.line == 0 || child.isNull {
                    // An empty value has no useful mark of its own: point at its key instead.
                    child = ConfigNode(
                        value: child.value, file: file, keyPath: childPath, line: keyNode.mark?.line ?? line,
                        column: keyNode.mark?.column ?? column, environment: environment)
                }
                entries.append((key, child))
            }
            return make(.mapping(entries))
        case .alias:
            throw ConfigError(
                file: file, line: line, column: column, keyPath: keyPath, message: "YAML aliases are not supported")
        }
    }

    private static func describe(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "not valid YAML: \(problem)"
            if let context { message += " \(context.text)" }
            return ConfigError(file: file, line: mark.line, column: mark.column, keyPath: "", message: message)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(
                file: file, line: context.mark.line, column: context.mark.column, keyPath: "",
                message: "duplicate keys: \(duplicates.joined(separator: ", "))")
        default:
            return ConfigError(file: file, line: 0, column: 0, keyPath: "", message: "not valid YAML: \(error)")
        }
    }
}
