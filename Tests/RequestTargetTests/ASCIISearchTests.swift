import Testing

@testable import RequestTarget

/// The contiguous-storage search finds what the generic UTF-8 view search finds, in strings and in substrings that
/// start past their base's start, with multi-byte characters before the byte.
struct ASCIISearchTests {
    static let samples = [
        "", "?", "/", "/a?b", "/path/only", "/ü/ö?x=1#frag", "??", "/long/" + String(repeating: "x", count: 300) + "?q",
        "/日本語?q=1", "#?", "/a#b?c",
    ]

    @Test(arguments: samples)
    func findsTheSameIndexAsTheUTF8View(_ text: String) {
        for byte in [UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "/"), UInt8(ascii: "z")] {
            #expect(text.firstIndex(ofASCII: byte) == text.utf8.firstIndex(of: byte), "\(byte) in \(text)")
            // Every suffix, as a substring of the same base (indices stay the base's).
            var start = text.startIndex
            while start < text.endIndex {
                let tail = text[start...]
                #expect(tail.firstIndex(ofASCII: byte) == tail.utf8.firstIndex(of: byte), "\(byte) in \(tail)")
                start = text.index(after: start)
            }
        }
    }
}
