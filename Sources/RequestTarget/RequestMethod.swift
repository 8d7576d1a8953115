/// Request-head rules that are about single values and need no parser: the method's spelling and the transfer
/// codings an edge can frame.
public enum RequestMethod {
    /// Whether `method` is an upper-case token (RFC 9110 §9.1: methods are case-sensitive, and every registered
    /// one is upper-case). HTTP/1.1's parser accepts only known methods; this holds HTTP/2's `:method` to the same
    /// shape, so `get` is refused instead of becoming an unknown method a backend may treat as `GET`.
    public static func isAcceptable<S: StringProtocol>(_ method: S) -> Bool {
        guard !method.utf8.isEmpty, method.utf8.count <= 32 else { return false }
        return method.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_")
        }
    }
}

public enum TransferCoding {
    /// Whether a request's `Transfer-Encoding` values (every field, in order) are exactly `chunked`. Anything else
    /// (`gzip, chunked`, `identity`, `chunked, chunked`) is a coding the edge would drop or misframe when it
    /// forwards the body, so it is refused with 501 (RFC 9112 §6.1).
    public static func isChunkedOnly<S: StringProtocol>(_ values: [S]) -> Bool {
        var codings = 0
        for value in values {
            for coding in value.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = coding.utf8.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
                var bytes = Array(trimmed)
                while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
                guard bytes.count == 7, bytes.map({ $0 | 0x20 }) == Array("chunked".utf8) else { return false }
                codings += 1
            }
        }
        return codings == 1
    }
}
