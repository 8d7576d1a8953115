import Testing

@testable import RequestTarget

/// A made request ID reads as the 32 hex digits of its prefix and serial, and equals the same text given; a given
/// ID is its text.
struct RequestIDTests {
    @Test func aMadeIDIsItsPrefixThenItsSerialAsHex() {
        let id = RequestID(prefix: 0x0123_4567_89ab_cdef, serial: 0xa)
        #expect(id.description == "0123456789abcdef000000000000000a")
        #expect(id.utf8Count == 32 && !id.isEmpty)
        #expect(RequestID(prefix: 0, serial: 0).description == String(repeating: "0", count: 32))
        #expect(RequestID(prefix: .max, serial: .max).description == String(repeating: "f", count: 32))
    }

    @Test func madeDigitsMatchTheStandardLibrarysHex() {
        var generator = SystemRandomNumberGenerator()
        var values: [UInt64] = [0, 1, 9, 10, 15, 16, 0x9999_9999, 0xaaaa_aaaa, 0xffff_ffff, 0x1_0000_0000, .max, .max - 1]
        for shift in 0..<64 { values.append(1 << UInt64(shift)) }
        for _ in 0..<2000 { values.append(generator.next()) }
        for value in values {
            let expected = String(value, radix: 16).leftPadded(to: 16) + String(~value, radix: 16).leftPadded(to: 16)
            #expect(RequestID(prefix: value, serial: ~value).description == expected)
        }
    }

    @Test func aMadeIDEqualsItsTextAndNothingElse() {
        let made = RequestID(prefix: 0xfeed, serial: 42)
        #expect(made == RequestID("000000000000feed000000000000002a"))
        #expect(RequestID("000000000000feed000000000000002a") == made)
        #expect(made == RequestID(prefix: 0xfeed, serial: 42))
        #expect(made != RequestID(prefix: 0xfeed, serial: 43))
        #expect(made != RequestID("000000000000FEED000000000000002A"))
        #expect(made != .empty)
    }

    @Test func aGivenIDIsItsText() {
        let given: RequestID = "req-é/1"
        #expect(given.description == "req-é/1")
        #expect(given.utf8Count == "req-é/1".utf8.count)
        #expect(given.withUTF8 { Array($0) } == Array("req-é/1".utf8))
        #expect(RequestID.empty.isEmpty && RequestID.empty.utf8Count == 0 && RequestID.empty.description.isEmpty)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
