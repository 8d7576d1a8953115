/// Byte-level HTTP/1.1 grammar shared by the request parser and the proxy's response parser.
public enum HTTPBytes {
    /// RFC 9110 §5.6.2 tchar: the bytes of a token (method, header name, transfer coding).
    /// One bit per byte below 128 (letters, digits and `!#$%&'*+-.^_`|~`): a test of every byte of every header
    /// name, where `-` used to cost a scan of the symbol list.
    @inline(__always)
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000, high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        guard byte < 128 else { return false }
        return (byte < 64 ? low : high) >> UInt64(byte & 63) & 1 == 1
    }

    /// `bytes` without the spaces and tabs around it (OWS, RFC 9110 §5.6.3).
    public static func trim<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
        var slice = bytes[...]
        while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { slice = slice.dropFirst() }
        while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { slice = slice.dropLast() }
        return slice
    }

    /// The size on a chunk-size line (RFC 9112 §7.1): hex digits only (no sign, no `0x`; at most 15, so it fits an
    /// Int), optionally whitespace and `;` extensions of visible characters, spaces and tabs. Nil for anything else,
    /// which a reader must refuse: two readings of a chunk size are a smuggling vector.
    public static func chunkSize<C: BidirectionalCollection>(_ line: C) -> Int? where C.Element == UInt8 {
        let digits = line.prefix { $0 != UInt8(ascii: ";") }
        let trimmed = digits.reversed().drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.reversed()
        guard !trimmed.isEmpty, trimmed.count <= 15 else { return nil }
        var size = 0
        for byte in trimmed {
            let digit: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = Int(byte - UInt8(ascii: "A")) + 10
            default: return nil
            }
            size = size << 4 | digit
        }
        let extensions = line.dropFirst(digits.count)
        guard extensions.allSatisfy({ $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }) else { return nil }
        return size
    }
}
