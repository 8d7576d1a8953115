import Crypto
import Testing

@testable import Tracking

@Suite struct SignaturesTests {
    @Test func equalBytesMatchAndAnyDifferenceOrLengthDoesNot() {
        #expect(Signatures.equal("secret", "secret"))
        #expect(!Signatures.equal("secret", "secreT"))
        #expect(!Signatures.equal("secret", "secret2"))
        #expect(!Signatures.equal("", "x"))
        #expect(Signatures.equal([UInt8](), []))
        // A zero byte past the shorter side must not make a prefix look equal.
        #expect(!Signatures.equal([0x61], [0x61, 0x00]))
    }

    @Test func hexIsLowercaseTwoDigitsPerByte() {
        #expect(Signatures.hex([0x00, 0x0F, 0xA0, 0xFF]) == "000fa0ff")
        // RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" with key "Jefe".
        let code = HMAC<SHA256>.authenticationCode(for: Array("what do ya want for nothing?".utf8), using: SymmetricKey(data: Array("Jefe".utf8)))
        #expect(Signatures.hex(code) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }
}
