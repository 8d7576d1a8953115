/// Request-head rules that are about single values and need no parser: the method's spelling (HTTP/2's `:method`;
/// HTTP/1.1's request line is held to the same rule by `HTTP1Parser`).
public enum RequestMethod {
    /// Whether `method` is an upper-case token (RFC 9110 §9.1: methods are case-sensitive, and every registered
    /// one is upper-case), so `get` is refused instead of becoming an unknown method a backend may treat as `GET`.
    /// Inlinable: it runs for every HTTP/2 request, and an unspecialized generic call across the module costs more
    /// than the check.
    @inlinable
    public static func isAcceptable<S: StringProtocol>(_ method: S) -> Bool {
        guard !method.utf8.isEmpty, method.utf8.count <= 32 else { return false }
        return method.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_")
        }
    }
}
