import Testing

@testable import RequestTarget

/// The contiguous-storage searches and comparisons answer what the generic UTF-8 view algorithms answer, in strings
/// and in substrings that start past their base's start, with multi-byte characters around.
struct UTF8SearchTests {
    static let samples = [
        "", "?", "/", "/a?b", "/path/only", "/ü/ö?x=1#frag", "??", "/long/" + String(repeating: "x", count: 300) + "?q",
        "/日本語?q=1", "#?", "/a#b?c", "::1", "[2001:db8::1]:443", "a\"b\\c",
    ]

    /// `text` and every suffix of it, as substrings of the same base (indices stay the base's).
    private func suffixes(_ text: String) -> [Substring] {
        var result: [Substring] = [text[...]]
        var start = text.startIndex
        while start < text.endIndex {
            start = text.index(after: start)
            result.append(text[start...])
        }
        return result
    }

    @Test(arguments: samples)
    func findsTheSameIndexAsTheUTF8View(_ text: String) {
        for byte in [UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "z")] {
            #expect(text.firstIndex(ofASCII: byte) == text.utf8.firstIndex(of: byte), "\(byte) in \(text)")
            for tail in suffixes(text) {
                #expect(tail.firstIndex(ofASCII: byte) == tail.utf8.firstIndex(of: byte), "\(byte) in \(tail)")
            }
        }
    }

    @Test(arguments: samples)
    func comparesAndSearchesAsTheUTF8View(_ text: String) {
        let quoteOrBackslash = { (byte: UInt8) in byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        #expect(text.containsUTF8(where: quoteOrBackslash) == text.utf8.contains(where: quoteOrBackslash))
        for other in Self.samples + ["/a", "/ü", "/long/", "/日"] {
            #expect(text.hasUTF8Prefix(other) == text.utf8.starts(with: other.utf8), "\(text) starts with \(other)")
            #expect(text.utf8Equals(other) == text.utf8.elementsEqual(other.utf8), "\(text) equals \(other)")
            for tail in suffixes(text) {
                #expect(tail.hasUTF8Prefix(other) == tail.utf8.starts(with: other.utf8), "\(tail) starts with \(other)")
                #expect(tail.utf8Equals(other) == tail.utf8.elementsEqual(other.utf8), "\(tail) equals \(other)")
            }
        }
    }
}
