import Glibc

/// A request head's bytes read through a pointer, with parts named by offset ranges: scanning a head this way takes
/// no reference count per slice and no bounds-checked view index per byte (the head is read once per request).
///
/// Only valid inside the `withUnsafeReadableBytes` call that made it.
struct HeadBytes {
    let raw: UnsafeRawBufferPointer

    var count: Int { raw.count }

    @inline(__always)
    subscript(_ offset: Int) -> UInt8 { raw[offset] }

    /// The first offset of `byte` in `range`.
    @inline(__always)
    func firstIndex(of byte: UInt8, in range: Range<Int>) -> Int? {
        guard !range.isEmpty, let base = raw.baseAddress else { return nil }
        guard let found = memchr(base + range.lowerBound, Int32(byte), range.count) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    @inline(__always)
    func allSatisfy(_ range: Range<Int>, _ predicate: (UInt8) -> Bool) -> Bool {
        for offset in range where !predicate(raw[offset]) { return false }
        return true
    }

    /// Whether the bytes in `range` are `text`, exactly.
    @inline(__always)
    func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount, let base = raw.baseAddress else { return range.isEmpty && text.utf8CodeUnitCount == 0 }
        return memcmp(base + range.lowerBound, text.utf8Start, range.count) == 0
    }

    /// Whether the bytes in `range` are `lowercase`, ignoring ASCII case.
    @inline(__always)
    func equalsIgnoringCase(_ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        var offset = 0
        for index in range {
            let byte = raw[index]
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard folded == expected[offset] else { return false }
            offset += 1
        }
        return true
    }

    /// `range` without the spaces and tabs around it (OWS, RFC 9110 §5.6.3).
    @inline(__always)
    func trimmed(_ range: Range<Int>) -> Range<Int> {
        var start = range.lowerBound, end = range.upperBound
        while start < end, raw[start] == UInt8(ascii: " ") || raw[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, raw[end - 1] == UInt8(ascii: " ") || raw[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        return start..<end
    }

    /// The comma-separated elements of a list value, each trimmed (empty ones kept: callers decide).
    func listElements(_ range: Range<Int>) -> [Range<Int>] {
        var elements: [Range<Int>] = []
        var start = range.lowerBound
        while true {
            let end = firstIndex(of: UInt8(ascii: ","), in: start..<range.upperBound) ?? range.upperBound
            elements.append(trimmed(start..<end))
            guard end < range.upperBound else { return elements }
            start = end + 1
        }
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
    }
}
