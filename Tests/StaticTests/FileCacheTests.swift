import NIOCore
import Testing

@testable import Static

func key(_ path: String) -> FileCache.Key { FileCache.Key(namespace: 1, path: path) }

@Suite struct FileCacheTests {
    func file(_ name: String, size: Int) -> CachedFile {
        CachedFile(
            path: "/tmp/\(name)",
            fingerprint: .init(device: 1, inode: UInt64(name.hashValue.magnitude), size: size, modifiedNanoseconds: 0),
            contentType: "text/plain", body: ByteBuffer(repeating: 0x61, count: size), compressed: [],
            cacheControl: nil)
    }

    @Test func evictsLeastRecentlyUsedByBytes() {
        let cache = FileCache(maxBytes: 3 * (1000 + 512 + 20))
        cache.insert(key("a"), file("a", size: 1000), now: 0)
        cache.insert(key("b"), file("b", size: 1000), now: 0)
        cache.insert(key("c"), file("c", size: 1000), now: 0)
        _ = cache.lookup(key("a"), now: 0, validity: 1_000_000_000)  // a is now more recent than b
        cache.insert(key("d"), file("d", size: 1000), now: 0)
        guard case .miss = cache.lookup(key("b"), now: 0, validity: 1_000_000_000) else {
            Issue.record("b should have been evicted")
            return
        }
        guard case .hit = cache.lookup(key("a"), now: 0, validity: 1_000_000_000) else {
            Issue.record("a should have stayed")
            return
        }
        #expect(cache.statistics.evictions == 1)
        #expect(cache.statistics.bytes <= cache.maxBytes)
    }

    @Test func boundedByEntryCountAndRefusesHugeFiles() {
        let cache = FileCache(maxBytes: 1 << 20, maxEntries: 2)
        cache.insert(key("a"), file("a", size: 10), now: 0)
        cache.insert(key("b"), file("b", size: 10), now: 0)
        cache.insert(key("c"), file("c", size: 10), now: 0)
        #expect(cache.statistics.entries == 2)
        #expect(!cache.insert(key("huge"), file("huge", size: 2 << 20), now: 0))
    }

    @Test func revalidationIsHandedOutOnceAndDropsChangedFiles() {
        let cache = FileCache(maxBytes: 1 << 20)
        let entry = file("a", size: 10)
        cache.insert(key("a"), entry, now: 0)
        guard case .hit(_, let first) = cache.lookup(key("a"), now: 2_000, validity: 1_000) else { return }
        guard case .hit(_, let second) = cache.lookup(key("a"), now: 2_001, validity: 1_000) else { return }
        #expect(first && !second)
        cache.finishRevalidation(key("a"), file: entry, stillCurrent: false, now: 2_002)
        guard case .miss = cache.lookup(key("a"), now: 2_003, validity: 1_000) else {
            Issue.record("a changed on disk and should be gone")
            return
        }
    }

    @Test func churnStaysBoundedAndKeepsHotEntries() {
        let cache = FileCache(maxBytes: 1 << 30, maxEntries: 100)
        let hot = file("hot", size: 10)
        cache.insert(key("hot"), hot, now: 0)
        for index in 0..<10_000 {
            _ = cache.lookup(key("hot"), now: 0, validity: .max)
            cache.insert(key("cold-\(index)"), file("cold-\(index)", size: 10), now: 0)
        }
        #expect(cache.statistics.entries == 100)
        #expect(cache.statistics.evictions == 10_001 - 100)
        guard case .hit = cache.lookup(key("hot"), now: 0, validity: .max) else {
            Issue.record("an entry used between every insert should survive the churn")
            return
        }
    }
}
