import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One shard of a key table: a fixed array of slots behind its own lock.
///
/// Slots come from `calloc` (an all-zero slot is an empty one), so a large table costs memory only as keys arrive.
/// Touched only under `lock`.
final class SlotShard<Slot>: @unchecked Sendable {
    private let lock = Mutex<Void>(())
    private let slots: UnsafeMutablePointer<Slot>
    let size: Int

    init(size: Int) {
        self.size = size
        slots = calloc(size, MemoryLayout<Slot>.stride)!.bindMemory(to: Slot.self, capacity: size)
    }

    deinit { free(slots) }

    func withSlots<T>(_ body: (UnsafeMutablePointer<Slot>) -> T) -> T { lock.withLock { _ in body(slots) } }

    /// 64 shards holding at least `capacity` slots in all, each a power of two of at least `window` slots; returns
    /// them with the capacity they really hold and the index mask within a shard.
    static func make(capacity: Int, window: Int) -> (shards: [SlotShard<Slot>], capacity: Int, mask: Int) {
        var perShard = window
        while perShard * 64 < capacity { perShard <<= 1 }
        return ((0..<64).map { _ in SlotShard<Slot>(size: perShard) }, perShard * 64, perShard - 1)
    }
}
