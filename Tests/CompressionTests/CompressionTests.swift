import Compression
import NIOCore
import Testing

@Suite struct CompressionTests {
    let text = ByteBuffer(string: String(repeating: "vantage compresses text well. ", count: 200))

    @Test(arguments: ContentCoding.allCases)
    func roundTrip(coding: ContentCoding) throws {
        let compressed = try #require(Compressor.compress(text, coding: coding))
        #expect(compressed.readableBytes < text.readableBytes / 10)
        let restored = try #require(Decompressor.decompress(compressed, coding: coding))
        #expect(restored == text)
    }

    @Test func incompressibleInputIsNotWorthIt() {
        var random = ByteBuffer()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<4096 { random.writeInteger(UInt8.random(in: 0...255, using: &generator)) }
        #expect(Compressor.compress(random, coding: .gzip) == nil)
    }
}
