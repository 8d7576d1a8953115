/// The outcome of reading a `Range` header against a representation of known size (RFC 9110 §14).
public enum RangeOutcome: Equatable, Sendable {
    /// No usable Range header (absent, not `bytes`, malformed or several ranges): answer 200 in full.
    case full
    /// One satisfiable range, inclusive bounds: answer 206.
    case partial(ClosedRange<Int>)
    /// Syntactically valid but outside the representation: answer 416 with `Content-Range: bytes */size`.
    case unsatisfiable
}

/// Parser for single byte ranges. Several ranges in one request are answered in full, which RFC 9110 allows and
/// which avoids multipart responses (and the amplification attacks that come with them).
public enum ByteRange {
    /// Evaluates a Range header value against a representation of `size` bytes.
    public static func evaluate(_ header: String?, size: Int) -> RangeOutcome {
        guard let header else { return .full }
        let text = header.trimmingSpaces
        guard text.hasPrefix("bytes=") else { return .full }
        let spec = text.dropFirst(6)
        if spec.contains(",") { return .full }
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .full }
        let first = parts[0].trimmingSpacesSubstring, last = parts[1].trimmingSpacesSubstring
        if first.isEmpty {
            // Suffix range: the last N bytes.
            guard let count = Int(last), count >= 0, last.allSatisfy(\.isNumber) else { return .full }
            if count == 0 || size == 0 { return .unsatisfiable }
            return .partial(max(0, size - count)...(size - 1))
        }
        guard let start = Int(first), first.allSatisfy(\.isNumber) else { return .full }
        var end = size - 1
        if !last.isEmpty {
            guard let parsed = Int(last), last.allSatisfy(\.isNumber) else { return .full }
            if parsed < start { return .full }
            end = min(parsed, size - 1)
        }
        if start >= size { return .unsatisfiable }
        return .partial(start...end)
    }
}
