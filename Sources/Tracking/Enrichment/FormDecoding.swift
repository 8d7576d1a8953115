/// `application/x-www-form-urlencoded` values as query strings carry them.
enum FormDecoding {
    /// Percent-decoding with `+` as a space; invalid escapes stay as they are; at most `limit` bytes of output.
    static func decode(_ text: Substring, limit: Int = .max) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(text.utf8.count, limit))
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next(), bytes.count < limit {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next() else { bytes.append(byte); continue }
                guard let low = iterator.next() else { bytes += [byte, high]; continue }
                if let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                    bytes.append(value)
                } else {
                    bytes += [byte, high, low]
                }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
