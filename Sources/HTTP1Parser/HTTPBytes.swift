import NIOCore

/// Byte-level HTTP/1.1 grammar shared by the request parser and the proxy's response parser.
public enum HTTPBytes {
    /// RFC 9110 §5.6.2 tchar: the bytes of a token (method, header name, transfer coding).
    /// One bit per byte below 128 (letters, digits and `!#$%&'*+-.^_`|~`): a test of every byte of every header
    /// name, where `-` used to cost a scan of the symbol list. Inlinable: the proxy's response parser calls it for
    /// every byte of every header name, and a call across the module boundary cost more than the test.
    @inlinable @inline(__always)
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        let low: UInt64 = 0x03FF_6CFA_0000_0000, high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        guard byte < 128 else { return false }
        return (byte < 64 ? low : high) >> UInt64(byte & 63) & 1 == 1
    }

    /// Whether `bytes` holds a NUL or a CR, bytes a field value a peer sent must not carry (a line was already cut
    /// at its LF). Eight bytes at a time: every value of every upstream response head is checked.
    @inlinable
    public static func containsNULOrCR(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        var index = 0
        while index + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // "Has a zero byte", exact as a yes/no for the word: for the word itself (NUL) and XOR-ed with CRs.
            let cr = word ^ (ones &* 0x0D)
            if (((word &- ones) & ~word) | ((cr &- ones) & ~cr)) & highs != 0 { return true }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] == 0 || bytes[index] == 0x0D { return true }
            index += 1
        }
        return false
    }

    /// ASCII case-insensitive equality of two byte strings (field names, tokens): bytes equal, or letters that differ
    /// only in case. Bytes outside A–Z/a–z must match exactly (`@` is not `` ` ``). Always inlined, as the proxy's
    /// copy was: its callers compare a few bytes, and the call cost more than the comparison.
    @inlinable @inline(__always)
    public static func equalsCaseInsensitive(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        for index in 0..<left.count where !sameIgnoringCase(left[index], right[index]) { return false }
        return true
    }

    /// Two bytes equal, or the same ASCII letter in either case.
    @inlinable @inline(__always)
    public static func sameIgnoringCase(_ left: UInt8, _ right: UInt8) -> Bool {
        guard left != right else { return true }
        let folded = left | 0x20
        return folded == right | 0x20 && folded >= UInt8(ascii: "a") && folded <= UInt8(ascii: "z")
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

extension ByteBuffer {
    /// Writes `name: value` and CRLF with room made once for the line: four writes, each checking room and
    /// ownership, cost more than the bytes they copy (shared by the edge's answers and the proxy's upstream heads).
    @inlinable
    public mutating func writeHeaderLine(name: String, value: String) {
        var value = value
        value.withUTF8 { writeHeaderLine(name: name, utf8: UnsafeRawBufferPointer($0)) }
    }

    /// `name: value\r\n` with the value given as UTF-8 bytes.
    @inlinable
    public mutating func writeHeaderLine(name: String, utf8 value: UnsafeRawBufferPointer) {
        var name = name
        name.withUTF8 { writeHeaderLine(name: UnsafeRawBufferPointer($0), value: value) }
    }

    /// `name: value\r\n` from the name's and the value's bytes (a client's field passed on as it came).
    @inlinable
    public mutating func writeHeaderLine(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let count = name.count + value.count + 4
        writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
            UnsafeMutableRawBufferPointer(rebasing: out[0..<name.count]).copyMemory(from: name)
            var at = name.count
            out[at] = UInt8(ascii: ":")
            out[at + 1] = UInt8(ascii: " ")
            at += 2
            UnsafeMutableRawBufferPointer(rebasing: out[at..<at + value.count]).copyMemory(from: value)
            at += value.count
            out[at] = UInt8(ascii: "\r")
            out[at + 1] = UInt8(ascii: "\n")
            return count
        }
    }
}

extension HTTPBytes {
    /// Copies `string`'s UTF-8 into `out` at `offset` (the caller made room); returns the offset after it.
    @inlinable
    public static func copyUTF8(of string: String, to out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let copied = string.utf8.withContiguousStorageIfAvailable { utf8 in
            UnsafeMutableRawBufferPointer(rebasing: out[offset...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
            return utf8.count
        }
        if let copied { return offset + copied }
        var at = offset
        for byte in string.utf8 {
            out[at] = byte
            at += 1
        }
        return at
    }
}

extension Collection where Element == UInt8 {
    /// ASCII case-insensitive comparison with another byte sequence (``HTTPBytes/equalsCaseInsensitive(_:_:)``).
    @inlinable @inline(__always)
    public func equalsCaseInsensitive(_ other: some Collection<UInt8>) -> Bool {
        guard count == other.count else { return false }
        // Both sides are usually contiguous (buffer views, native strings): compare the raw bytes.
        let fast = withContiguousStorageIfAvailable { left in
            other.withContiguousStorageIfAvailable { right in
                HTTPBytes.equalsCaseInsensitive(UnsafeRawBufferPointer(left), UnsafeRawBufferPointer(right))
            }
        }
        if let fast, let result = fast { return result }
        return zip(self, other).allSatisfy { HTTPBytes.sameIgnoringCase($0, $1) }
    }

    /// The same against a literal (a field name, a token): its bytes are at hand, where a `String` literal's
    /// `utf8` view is asked for contiguous storage first (0.25% of a proxied request's core).
    @inlinable @inline(__always)
    public func equalsCaseInsensitive(_ literal: StaticString) -> Bool {
        let right = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        guard count == right.count else { return false }
        let fast = withContiguousStorageIfAvailable { HTTPBytes.equalsCaseInsensitive(UnsafeRawBufferPointer($0), right) }
        return fast ?? equalsCaseInsensitive(right)
    }
}
