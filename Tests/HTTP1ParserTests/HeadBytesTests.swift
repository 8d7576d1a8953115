import Testing

@testable import HTTP1Parser

/// The pointer-level pieces the head parser is built from, on their edges: empty ranges, ranges at the ends of the
/// bytes, case folding that must not fold anything but ASCII letters.
struct HeadBytesTests {
    private func withHead<T>(_ text: String, _ body: (HeadBytes) -> T) -> T {
        Array(text.utf8).withUnsafeBytes { body(HeadBytes(raw: $0)) }
    }

    @Test func tokenBytesAreExactlyRFC9110s() {
        // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(HTTPBytes.isTokenByte(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }

    @Test func findsEveryNULAndCRWhereverItIs() {
        // Every byte value at every position of values up to three words long, and the clean values around them.
        for length in 0...24 {
            var value = [UInt8](repeating: UInt8(ascii: "a"), count: length)
            value.withUnsafeBytes { #expect(!HTTPBytes.containsNULOrCR($0), "length \(length)") }
            for position in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    value[position] = byte
                    let found = value.withUnsafeBytes { HTTPBytes.containsNULOrCR($0) }
                    #expect(found == (byte == 0 || byte == 0x0D), "byte \(byte) at \(position) of \(length)")
                }
                value[position] = UInt8(ascii: "a")
            }
        }
    }

    @Test func searchesStayInsideTheirRange() {
        withHead("a:b:c") { head in
            #expect(head.firstIndex(of: UInt8(ascii: ":"), in: 0..<5) == 1)
            #expect(head.firstIndex(of: UInt8(ascii: ":"), in: 2..<5) == 3)
            #expect(head.firstIndex(of: UInt8(ascii: ":"), in: 4..<5) == nil)
            #expect(head.firstIndex(of: UInt8(ascii: ":"), in: 1..<1) == nil)
        }
        withHead("") { head in
            #expect(head.firstIndex(of: UInt8(ascii: ":"), in: 0..<0) == nil)
            #expect(head.equals(0..<0, ""))
            #expect(!head.equals(0..<0, "GET"))
        }
    }

    @Test func comparesExactlyOrIgnoringASCIICaseOnly() {
        withHead("GET Content-LENGTH hostx") { head in
            #expect(head.equals(0..<3, "GET"))
            #expect(!head.equals(0..<3, "get"))
            #expect(!head.equals(0..<2, "GET"))
            #expect(head.equalsIgnoringCase(4..<18, "content-length"))
            #expect(!head.equalsIgnoringCase(19..<24, "host"))
            #expect(head.equalsIgnoringCase(19..<23, "host"))
        }
        // `[` is `{` with bit 0x20 cleared, as an upper-case letter is its lower case: only A–Z may fold.
        withHead("[") { head in #expect(!head.equalsIgnoringCase(0..<1, "{")) }
    }

    @Test func foldsOnlyLettersWhenBothSidesMayHaveAnyCase() {
        func same(_ left: String, _ right: String) -> Bool {
            let raw = Array(left.utf8).withUnsafeBytes { l in Array(right.utf8).withUnsafeBytes { HTTPBytes.equalsCaseInsensitive(l, $0) } }
            // The collection form (contiguous and not) answers as the raw one does.
            #expect(left.utf8.equalsCaseInsensitive(right.utf8) == raw)
            #expect(left.utf8.lazy.map { $0 }.equalsCaseInsensitive(right.utf8) == raw)
            return raw
        }
        #expect(same("Content-Type", "content-TYPE"))
        #expect(same("", ""))
        #expect(!same("Host", "Hosts"))
        #expect(!same("[", "{"))
        #expect(!same("@", "`"))
        #expect(!same("a-b", "a_b"))
        // Against a literal: contiguous bytes, a lazy (non-contiguous) view, lengths that differ.
        #expect(Array("Transfer-ENCODING".utf8).equalsCaseInsensitive("transfer-encoding"))
        #expect("Keep-Alive".utf8.lazy.map { $0 }.equalsCaseInsensitive("keep-alive"))
        #expect(!Array("te".utf8).equalsCaseInsensitive("tE-"))
        #expect(!Array("[".utf8).equalsCaseInsensitive("{"))
        // Every pair of bytes: equal, or the same letter in either case.
        for a in UInt8.min...UInt8.max {
            for b in UInt8.min...UInt8.max {
                let letters = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(a & ~0x20) && a & ~0x20 == b & ~0x20
                let expected = a == b || letters
                let got = [a].withUnsafeBytes { l in [b].withUnsafeBytes { HTTPBytes.equalsCaseInsensitive(l, $0) } }
                if got != expected { Issue.record("bytes \(a) and \(b)") }
            }
        }
    }

    @Test func listsAreSplitOnCommasAndTrimmed() {
        withHead(" close ,\tkeep-alive,, x ") { head in
            let elements = head.listElements(0..<head.count).map { head.string($0) }
            #expect(elements == ["close", "keep-alive", "", "x"])
        }
        withHead("chunked") { head in
            #expect(head.listElements(0..<7).map { head.string($0) } == ["chunked"])
        }
        withHead("   ") { head in
            #expect(head.trimmed(0..<3).isEmpty)
        }
    }
}
