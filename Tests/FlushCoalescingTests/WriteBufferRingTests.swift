import FlushCoalescing
import NIOCore
import Testing

@Suite struct WriteBufferRingTests {
    private static func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
    }

    @Test func aBufferTheWriteLetGoOfIsReusedWhenTheRingComesRound() {
        var ring = WriteBufferRing(count: 2)
        var first: ByteBuffer? = ring.gather(minimumCapacity: 64) { $0.writeString("one") }
        let firstAddress = Self.address(first!)
        _ = ring.gather(minimumCapacity: 64) { $0.writeString("two") }
        first = nil  // the socket took it
        let third = ring.gather(minimumCapacity: 64) { $0.writeString("three") }
        #expect(String(buffer: third) == "three")
        #expect(Self.address(third) == firstAddress, "same storage, no allocation")
    }

    @Test func aBufferAWriteStillHoldsKeepsItsBytes() {
        var ring = WriteBufferRing(count: 1)
        let held = ring.gather(minimumCapacity: 64) { $0.writeString("held") }
        let next = ring.gather(minimumCapacity: 64) { $0.writeString("next") }
        #expect(String(buffer: held) == "held", "the waiting write's bytes are untouched")
        #expect(String(buffer: next) == "next")
        #expect(Self.address(held) != Self.address(next))
    }
}
