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
}
