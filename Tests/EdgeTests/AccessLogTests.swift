import Foundation
import NIOCore
import Testing

@testable import Edge

@Suite struct AccessLogEncodingTests {
    @Test(arguments: ["plain", "", "quote \" and \\ backslash", "line\nbreak\ttab\u{1}", "ünïcödé ✓"])
    func stringsRoundTripThroughJSON(value: String) throws {
        var buffer = ByteBuffer()
        buffer.writeStaticString("{")
        buffer.writeJSONField("\"v\":", value, first: true)
        buffer.writeJSONField("\"n\":", 1_234_567)
        buffer.writeStaticString("}")
        let object = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]
        #expect(object?["v"] as? String == value)
        #expect(object?["n"] as? Int == 1_234_567)
    }

    @Test(arguments: [0, 7, 10, 99, 1000, -42, Int.max])
    func decimals(value: Int) {
        var buffer = ByteBuffer()
        buffer.writeDecimal(value)
        #expect(String(buffer: buffer) == String(value))
    }
}
