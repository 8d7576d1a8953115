import NIOCore

/// JSON written straight into a buffer, shared by the access log and tracking events: no encoder, no intermediate
/// strings, one scan for the common case of nothing to escape.
extension ByteBuffer {
    /// Writes `"key":` followed by the JSON string form of `value`.
    @inlinable
    public mutating func writeJSONField(_ key: StaticString, _ value: String, first: Bool = false) {
        if !first { writeInteger(UInt8(ascii: ",")) }
        writeStaticString(key)
        writeJSONString(value)
    }

    /// Writes `"key":number`.
    @inlinable
    public mutating func writeJSONField(_ key: StaticString, _ value: Int) {
        writeInteger(UInt8(ascii: ","))
        writeStaticString(key)
        writeDecimal(value)
    }

    /// Writes an integer in decimal without building a String.
    @inlinable
    public mutating func writeDecimal(_ value: Int) {
        if value < 0 {
            writeInteger(UInt8(ascii: "-"))
            writeDecimal(-value)
            return
        }
        if value < 10 {
            writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 digits
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while rest > 0 {
                raw[23 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }

    /// Writes a JSON string literal. The common case (nothing to escape) is one copy and one scan of the copied
    /// bytes; only strings with quotes, backslashes or control characters take the byte-by-byte path.
    @inlinable
    public mutating func writeJSONString(_ value: String) {
        writeInteger(UInt8(ascii: "\""))
        let start = writerIndex
        let written = writeString(value)
        let clean = withUnsafeReadableBytes { bytes in
            !JSONEscaping.anyNeedsEscape(UnsafeRawBufferPointer(rebasing: bytes[(start - readerIndex)..<(start - readerIndex + written)]))
        }
        if !clean {
            moveWriterIndex(to: start)
            for byte in value.utf8 { JSONEscaping.write(byte) { writeInteger($0) } }
        }
        writeInteger(UInt8(ascii: "\""))
    }
}

/// How a byte appears inside a JSON string (RFC 8259 §7): `"` and `\` escaped, `\n`, `\r` and `\t` by name, other
/// control bytes as `\u00XX`, everything else (UTF-8 included) as it is. Shared by every JSON writer here.
public enum JSONEscaping {
    @inlinable
    public static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// Whether any byte of `bytes` needs escaping, eight at a time: every access-log line checks a dozen values
    /// this way, and a byte-by-byte scan was half the cost of writing them.
    @inlinable
    public static func anyNeedsEscape(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var index = 0
        while index + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // A byte below 0x20, or equal to `"` or `\` (zero after the XOR): the classic "has a byte less than n"
            // test, exact as a yes/no for the whole word; bytes of 0x80 and up (UTF-8) never count.
            let control = (word &- ones &* 0x20) & ~word
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let zeroInQuote = (quote &- ones) & ~quote
            let zeroInBackslash = (backslash &- ones) & ~backslash
            if (control | zeroInQuote | zeroInBackslash) & highs != 0 { return true }
            index += 8
        }
        while index < bytes.count {
            if needsEscape(bytes[index]) { return true }
            index += 1
        }
        return false
    }

    /// Emits `byte` as it appears inside a JSON string.
    @inlinable
    public static func write(_ byte: UInt8, _ emit: (UInt8) -> Void) {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"):
            emit(UInt8(ascii: "\\"))
            emit(byte)
        case UInt8(ascii: "\n"):
            emit(UInt8(ascii: "\\"))
            emit(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"):
            emit(UInt8(ascii: "\\"))
            emit(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"):
            emit(UInt8(ascii: "\\"))
            emit(UInt8(ascii: "t"))
        case 0..<0x20:
            let hex: StaticString = "0123456789abcdef"
            emit(UInt8(ascii: "\\"))
            emit(UInt8(ascii: "u"))
            emit(UInt8(ascii: "0"))
            emit(UInt8(ascii: "0"))
            emit(hex.utf8Start[Int(byte >> 4)])
            emit(hex.utf8Start[Int(byte & 0xF)])
        default:
            emit(byte)
        }
    }
}
