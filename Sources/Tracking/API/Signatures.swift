/// Checking secrets a caller presents (tokens, passwords, HMAC signatures): one comparison whose time does not
/// depend on where the bytes differ, and the lowercase hex the signatures are written in.
public enum Signatures {
    /// Whether `presented` equals `expected`, looking at every byte of the longer one so the time taken says
    /// nothing about the length of the matching prefix.
    public static func equal(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference = UInt8(presented.count == expected.count ? 0 : 1)
        for index in 0..<max(presented.count, expected.count) {
            difference |= (index < presented.count ? presented[index] : 0) ^ (index < expected.count ? expected[index] : 0)
        }
        return difference == 0
    }

    /// ``equal(_:_:)`` over the strings' UTF-8 bytes.
    public static func equal(_ presented: String, _ expected: String) -> Bool {
        equal(Array(presented.utf8), Array(expected.utf8))
    }

    /// `bytes` as lowercase hex (a digest or an HMAC as it travels in a header or a URL).
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
