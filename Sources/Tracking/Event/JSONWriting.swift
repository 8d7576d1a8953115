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
            !bytes[(start - readerIndex)..<(start - readerIndex + written)].contains {
                $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\")
            }
        }
        if !clean {
            moveWriterIndex(to: start)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): writeStaticString("\\\"")
                case UInt8(ascii: "\\"): writeStaticString("\\\\")
                case UInt8(ascii: "\n"): writeStaticString("\\n")
                case UInt8(ascii: "\r"): writeStaticString("\\r")
                case UInt8(ascii: "\t"): writeStaticString("\\t")
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    writeStaticString("\\u00")
                    writeInteger(hex[Int(byte >> 4)])
                    writeInteger(hex[Int(byte & 0xF)])
                default:
                    writeInteger(byte)
                }
            }
        }
        writeInteger(UInt8(ascii: "\""))
    }
}
