import NIOCore

/// Buffers for writes that wait for the end of the loop's tick (``FlushCoalescer``): a small answer or request head
/// is gathered into the ring's next buffer and written as it is. By the time the ring comes round to a buffer again
/// the socket has normally taken its bytes and the ring holds the only reference, so its storage is reused; one
/// still held by a write (a tick with more writes than the ring, a slow client) is left to that write and the
/// buffer gets new storage. One loop buffer would be held by the first write of every tick and copied for the rest.
///
/// Bounded: `count` buffers, each as large as the largest write gathered into it. Loop-confined.
public struct WriteBufferRing {
    @usableFromInline var buffers: [ByteBuffer]
    @usableFromInline var next = 0

    public init(count: Int) {
        precondition(count > 0)
        buffers = (0..<count).map { _ in ByteBuffer() }
    }

    /// The next buffer, emptied with room for `minimumCapacity` bytes and filled by `fill`; write what it returns.
    @inlinable
    public mutating func gather(minimumCapacity: Int, _ fill: (inout ByteBuffer) -> Void) -> ByteBuffer {
        let index = next
        next = index + 1 == buffers.count ? 0 : index + 1
        buffers[index].clear(minimumCapacity: minimumCapacity)
        fill(&buffers[index])
        return buffers[index]
    }
}
