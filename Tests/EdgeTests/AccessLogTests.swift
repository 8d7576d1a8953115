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

@Suite struct AccessLogWriterTests {
    /// Where a buffer's memory starts.
    func storage(of buffer: ByteBuffer) -> UInt {
        buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func writtenBuffersGoBackToTheLoopWithTheirMemory() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try #require(try AccessLogWriter(output: path, logger: .init(label: "test")))
        defer { writer.flushAndStop() }
        var written = 0
        var firstStorage: UInt = 0
        for round in 0..<3 {
            var buffer = writer.emptyBuffer(capacity: 1 << 16)
            #expect(buffer.readableBytes == 0)
            if round == 0 { firstStorage = storage(of: buffer) } else { #expect(storage(of: buffer) == firstStorage) }
            buffer.writeString("line \(round)\n")
            written += buffer.readableBytes
            writer.submit(buffer)
            buffer = ByteBuffer()
            // The writer thread has written it (and handed it back) once the file holds it.
            while (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 < written {
                try await Task.sleep(for: .milliseconds(1))
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "line 0\nline 1\nline 2\n")
    }
}
