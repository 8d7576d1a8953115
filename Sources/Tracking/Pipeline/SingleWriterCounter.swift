import Synchronization

/// A counter with one writer (an event loop) and any number of readers (the scraper).
///
/// With a single writer, load-then-store is exact and costs two plain moves, where a shared counter would need a
/// locked read-modify-write contended by every loop.
public final class SingleWriterCounter: Sendable {
    private let storage = Atomic<Int>(0)

    public init() {}

    @inline(__always)
    public func add(_ amount: Int) {
        storage.store(storage.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    public var value: Int { storage.load(ordering: .relaxed) }
}
