/// `${VAR}` substitution in configuration strings, so secrets stay out of the file.
///
/// `${NAME}` must be set; `${NAME:-fallback}` uses the fallback when NAME is unset or empty; `$${` is a literal `${`.
struct Environment: Sendable {
    let variables: [String: String]
    /// Secrets named by `*_env` keys read as a placeholder when unset: for commands that read only the data folders
    /// (`vantage events`), which must not need the gateway's secrets.
    var placeholderSecrets = false

    func substitute(_ text: String, at node: ConfigNode) throws(ConfigError) -> String {
        guard text.contains("${") else { return text }
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            if start.lowerBound > rest.startIndex, rest[rest.index(before: start.lowerBound)] == "$" {
                output += rest[..<rest.index(before: start.lowerBound)]
                output += "${"
                rest = rest[start.upperBound...]
                continue
            }
            output += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw node.error("unterminated ${ in \"\(text)\"")
            }
            let expression = rest[start.upperBound..<end]
            let name: Substring
            var fallback: Substring?
            if let separator = expression.range(of: ":-") {
                name = expression[..<separator.lowerBound]
                fallback = expression[separator.upperBound...]
            } else {
                name = expression
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw node.error("\"${\(expression)}\" is not a valid environment variable reference")
            }
            if let value = variables[String(name)], !(fallback != nil && value.isEmpty) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                throw node.error("environment variable \(name) is not set (write ${\(name):-default} for a fallback)")
            }
            rest = rest[rest.index(after: end)...]
        }
        output += rest
        return output
    }
}
