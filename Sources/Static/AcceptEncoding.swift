import Compression

/// Picks the content coding for a response from the client's `Accept-Encoding` and what is available.
public enum AcceptEncoding {
    /// The best coding among `available` (in server preference order) that the header accepts with q > 0, or nil
    /// for identity.
    public static func choose(_ header: String?, available: [ContentCoding]) -> ContentCoding? {
        guard let header, !available.isEmpty else { return nil }
        var accepted: [String: Bool] = [:]
        var wildcard: Bool?
        for item in header.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let name = parts.first?.trimmingSpacesSubstring.lowercased(), !name.isEmpty else { continue }
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.trimmingSpacesSubstring
                if pair.hasPrefix("q=") || pair.hasPrefix("Q="), let value = Double(pair.dropFirst(2)) {
                    quality = value
                }
            }
            if name == "*" { wildcard = quality > 0 } else { accepted[name] = quality > 0 }
        }
        for coding in available {
            if let explicit = accepted[coding.token] {
                if explicit { return coding }
            } else if coding == .gzip, let legacy = accepted["x-gzip"] {
                if legacy { return coding }
            } else if wildcard == true {
                return coding
            }
        }
        return nil
    }
}
