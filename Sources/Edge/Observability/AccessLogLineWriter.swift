import Tracking

/// Writes an access-log line with raw stores into memory reserved once for the whole line (see
/// ``AccessLogEntry``): the line is written for every request, and twenty-odd `ByteBuffer` writes, each checking its
/// capacity and uniqueness, cost several times the bytes they store.
struct AccessLogLineWriter {
    private let base: UnsafeMutableRawPointer
    /// Bytes written so far.
    private(set) var count = 0

    /// The most a JSON string of `utf8Count` bytes can take: quotes, and every byte escaped as `\u00XX`.
    static func jsonStringBound(_ utf8Count: Int) -> Int { 2 + 6 * utf8Count }
    /// The most a decimal `Int` can take, sign included.
    static let decimalBound = 20

    init(base: UnsafeMutableRawPointer) {
        self.base = base
    }

    mutating func byte(_ byte: UInt8) {
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func bytes(_ text: StaticString) {
        (base + count).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        count += text.utf8CodeUnitCount
    }

    /// The string's bytes as they are.
    mutating func raw(_ text: String) {
        let lent: Void? = text.utf8.withContiguousStorageIfAvailable { raw(utf8: $0) }
        guard lent == nil else { return }
        for byte in text.utf8 { self.byte(byte) }
    }

    private mutating func raw(utf8: UnsafeBufferPointer<UInt8>) {
        guard let start = utf8.baseAddress else { return }
        (base + count).copyMemory(from: start, byteCount: utf8.count)
        count += utf8.count
    }

    /// A JSON string: quoted, with `"`, `\` and control bytes escaped (other bytes, UTF-8 included, as they are).
    mutating func jsonString(_ text: String) {
        var text = text
        text.withUTF8 { jsonString(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// A JSON string from UTF-8 bytes (a request ID's digits), escaped as above.
    mutating func jsonString(utf8 text: UnsafeRawBufferPointer) {
        byte(UInt8(ascii: "\""))
        let start = count
        if let source = text.baseAddress { (base + count).copyMemory(from: source, byteCount: text.count) }
        count += text.count
        // Almost every value is clean: copied whole, then checked; rewritten byte by byte only when it is not.
        let written = UnsafeRawBufferPointer(start: base + start, count: count - start)
        if JSONEscaping.anyNeedsEscape(written) {
            count = start
            for byte in text { JSONEscaping.write(byte) { self.byte($0) } }
        }
        byte(UInt8(ascii: "\""))
    }

    mutating func decimal(_ value: Int) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        // Divisions by the constant 10 only (the compiler makes them multiplications): a line has eight numbers,
        // and dividing by a power of ten held in a variable is a hardware division per digit, twice.
        var rest = value.magnitude
        var digits = 1
        var probe = rest
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        var index = count + digits
        repeat {
            index -= 1
            base.storeBytes(of: UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10), toByteOffset: index, as: UInt8.self)
            rest /= 10
        } while rest > 0
        count += digits
    }
}
