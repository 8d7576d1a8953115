/// Finds which of many literal strings occur in a text, in one pass over it, with tables small enough to stay in
/// the CPU's nearest caches between texts (an Aho–Corasick automaton over the lists' few thousand literals is
/// megabytes, and on a server, where requests evict it between two new user agents, nearly every byte of a text
/// then missed the cache).
///
/// Each literal of four bytes or more is found by one four-byte piece of it (its anchor: the piece fewest other
/// literals share). At every position of the text the four bytes there are hashed into a 64 K-bit filter, and only
/// where the filter says "maybe" is the piece looked up and each literal anchored by it compared in place. Shorter
/// literals are filtered by their own bytes the same way. Built once from the patterns' required literals;
/// read-only afterwards, so all threads share it.
public struct LiteralScanner: Sendable {
    private let tables: Tables
    public let literalCount: Int

    /// `literals` are matched as given (lower-case them, and the text, for a case-insensitive scan).
    public init(literals: [[UInt8]]) {
        literalCount = literals.count
        tables = Tables(literals: literals)
    }

    /// Calls `found` with the index of every literal occurring in `text` (once per occurrence).
    public func scan(_ text: UnsafeRawBufferPointer, _ found: (Int) -> Void) {
        tables.scan(text, found)
    }
}

/// The scanner's tables, allocated once, in flat memory the scan reads through plain pointers.
private final class Tables: @unchecked Sendable {
    /// Bits `0 ..< 65536`: some literal of four bytes or more has a piece hashing there as its anchor. Then the
    /// exact filters of one- and two-byte literals (256 and 65536 bits), and the hashed one of three-byte literals.
    let filters: UnsafeMutablePointer<UInt64>
    static let pieceFilter = 0, oneByteFilter = 1024, twoByteFilter = 1028, threeByteFilter = 2052, filterWords = 3076
    /// Which short lengths occur (bit n: a literal of n bytes).
    let shortLengths: Int
    /// Open addressing, at most half full: key (a piece, or a short literal tagged with its length) → its literals,
    /// `anchored[first ..< first + count]`; one cache line per probe.
    struct Slot {
        var key: UInt64
        var first: Int32
        var count: Int32
    }

    /// A literal filed under a key: where its bytes are, how many, and where the anchor starts in it.
    struct Anchored {
        var literal: Int32
        var bytes: Int32
        var length: Int32
        var offset: Int32
    }

    let slots: UnsafeMutablePointer<Slot>
    let mask: Int
    let anchored: UnsafeMutablePointer<Anchored>
    let literalBytes: UnsafeMutablePointer<UInt8>
    private let allocations: [UnsafeMutableRawPointer]

    static let emptySlot = UInt64.max

    init(literals: [[UInt8]]) {
        // How many literals hold each piece: an anchor shared by few means few comparisons where it occurs.
        var pieceUse: [UInt32: Int] = [:]
        for literal in literals where literal.count >= 4 {
            for piece in Set((0...(literal.count - 4)).map { Self.piece(literal, at: $0) }) { pieceUse[piece, default: 0] += 1 }
        }
        var filters = [UInt64](repeating: 0, count: Self.filterWords)
        func set(_ bit: Int, in filter: Int) { filters[filter + bit >> 6] |= 1 << UInt64(bit & 63) }
        var groups: [UInt64: [(literal: Int32, offset: Int32)]] = [:]
        var shortLengths = 0
        for (number, literal) in literals.enumerated() where !literal.isEmpty {
            if literal.count >= 4 {
                let offset = (0...(literal.count - 4)).min { pieceUse[Self.piece(literal, at: $0)]! < pieceUse[Self.piece(literal, at: $1)]! }!
                let piece = Self.piece(literal, at: offset)
                set(Self.hash(piece), in: Self.pieceFilter)
                groups[UInt64(piece), default: []].append((Int32(number), Int32(offset)))
            } else {
                let value = literal.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                shortLengths |= 1 << literal.count
                switch literal.count {
                case 1: set(Int(value), in: Self.oneByteFilter)
                case 2: set(Int(value), in: Self.twoByteFilter)
                default: set(Self.hash(value), in: Self.threeByteFilter)
                }
                groups[Self.shortKey(value, length: literal.count), default: []].append((Int32(number), 0))
            }
        }
        var capacity = 16
        while capacity < groups.count * 2 { capacity *= 2 }
        var slots = [Slot](repeating: Slot(key: Self.emptySlot, first: 0, count: 0), count: capacity)
        var starts: [Int32] = [0]
        for literal in literals { starts.append(starts.last! + Int32(literal.count)) }
        var anchored: [Anchored] = []
        for (key, group) in groups {
            var slot = Self.slot(key, mask: capacity - 1)
            while slots[slot].key != Self.emptySlot { slot = (slot + 1) & (capacity - 1) }
            slots[slot] = Slot(key: key, first: Int32(anchored.count), count: Int32(group.count))
            anchored += group.map { entry in
                Anchored(literal: entry.literal, bytes: starts[Int(entry.literal)], length: Int32(literals[Int(entry.literal)].count),
                         offset: entry.offset)
            }
        }
        var allocations: [UnsafeMutableRawPointer] = []
        func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T> {
            let pointer = UnsafeMutablePointer<T>.allocate(capacity: max(1, values.count))
            pointer.initialize(from: values, count: values.count)
            allocations.append(UnsafeMutableRawPointer(pointer))
            return pointer
        }
        self.filters = copy(filters)
        self.shortLengths = shortLengths
        self.slots = copy(slots)
        mask = capacity - 1
        self.anchored = copy(anchored)
        literalBytes = copy(literals.flatMap { $0 })
        self.allocations = allocations
    }

    deinit {
        for pointer in allocations { pointer.deallocate() }
    }

    /// Four bytes as one number, the first in the low byte (as the scan loads them, whatever the CPU's byte order).
    static func piece(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    @inline(__always) static func hash(_ value: UInt32) -> Int { Int((value &* 0x9E37_79B1) >> 16) }

    /// A short literal's key: its bytes tagged with its length, above any four-byte piece's range.
    @inline(__always) static func shortKey(_ value: UInt32, length: Int) -> UInt64 { UInt64(length) << 32 | UInt64(value) }

    @inline(__always) static func slot(_ key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
    }

    @inline(__always) func test(_ bit: Int, in filter: Int) -> Bool { filters[filter + bit >> 6] & (1 << UInt64(bit & 63)) != 0 }

    /// Reports the literals filed under `key` that occur with their anchor at `position` of `text`. A short
    /// literal's key is all of it, so finding the key is finding the literal; a piece is compared around.
    @inline(__always)
    func lookup(_ key: UInt64, at position: Int, in text: UnsafeRawPointer, length: Int, _ found: (Int) -> Void) {
        var slot = Self.slot(key, mask: mask)
        while slots[slot].key != key {
            if slots[slot].key == Self.emptySlot { return }
            slot = (slot + 1) & mask
        }
        let first = Int(slots[slot].first)
        for entry in anchored + first ..< anchored + first + Int(slots[slot].count) {
            let size = Int(entry.pointee.length)
            if size <= 4 {
                found(Int(entry.pointee.literal))
                continue
            }
            let at = position - Int(entry.pointee.offset)
            guard at >= 0, at + size <= length, Self.equal(text + at, literalBytes + Int(entry.pointee.bytes), size) else { continue }
            found(Int(entry.pointee.literal))
        }
    }

    /// Whether `size` bytes at `a` and `b` are equal (eight at a time: literals are short, a call to memcmp costs
    /// more than the comparison).
    @inline(__always) static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ size: Int) -> Bool {
        var offset = 0
        while offset + 8 <= size {
            guard a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) == b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else {
                return false
            }
            offset += 8
        }
        while offset < size {
            guard a.load(fromByteOffset: offset, as: UInt8.self) == b.load(fromByteOffset: offset, as: UInt8.self) else { return false }
            offset += 1
        }
        return true
    }

    func scan(_ text: UnsafeRawBufferPointer, _ found: (Int) -> Void) {
        guard let base = text.baseAddress else { return }
        let length = text.count
        var position = 0
        while position < length {
            // The four bytes from here, zero past the end (no literal holds a zero byte where the text has none).
            var piece: UInt32
            if position + 4 <= length {
                piece = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
                if test(Self.hash(piece), in: Self.pieceFilter) { lookup(UInt64(piece), at: position, in: base, length: length, found) }
            } else {
                piece = 0
                for index in (position..<length).reversed() { piece = piece << 8 | UInt32(base.load(fromByteOffset: index, as: UInt8.self)) }
            }
            if shortLengths != 0 {
                if shortLengths & 2 != 0, test(Int(piece & 0xFF), in: Self.oneByteFilter) {
                    lookup(Self.shortKey(piece & 0xFF, length: 1), at: position, in: base, length: length, found)
                }
                if shortLengths & 4 != 0, test(Int(piece & 0xFFFF), in: Self.twoByteFilter) {
                    lookup(Self.shortKey(piece & 0xFFFF, length: 2), at: position, in: base, length: length, found)
                }
                if shortLengths & 8 != 0, test(Self.hash(piece & 0xFF_FFFF), in: Self.threeByteFilter) {
                    lookup(Self.shortKey(piece & 0xFF_FFFF, length: 3), at: position, in: base, length: length, found)
                }
            }
            position += 1
        }
    }
}

