/// SipHash-2-4 (Aumasson and Bernstein): a fast keyed hash, the one Plausible uses for cookieless visitor ids. With
/// a secret key, outputs cannot be linked back to their inputs or predicted without the key.
public struct SipHash24 {
    private var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64
    private var tail: UInt64 = 0
    private var tailCount = 0
    private var length = 0

    /// A hasher keyed with two 64-bit halves (the key's bytes 0–7 and 8–15, little-endian).
    public init(key0: UInt64, key1: UInt64) {
        v0 = 0x736f_6d65_7073_6575 ^ key0
        v1 = 0x646f_7261_6e64_6f6d ^ key1
        v2 = 0x6c79_6765_6e65_7261 ^ key0
        v3 = 0x7465_6462_7974_6573 ^ key1
    }

    @inline(__always)
    private static func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    @inline(__always)
    private mutating func round() {
        v0 &+= v1; v1 = Self.rotate(v1, 13); v1 ^= v0; v0 = Self.rotate(v0, 32)
        v2 &+= v3; v3 = Self.rotate(v3, 16); v3 ^= v2
        v0 &+= v3; v3 = Self.rotate(v3, 21); v3 ^= v0
        v2 &+= v1; v1 = Self.rotate(v1, 17); v1 ^= v2; v2 = Self.rotate(v2, 32)
    }

    private mutating func compress(_ word: UInt64) {
        v3 ^= word
        round()
        round()
        v0 ^= word
    }

    /// Feeds bytes.
    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        for byte in bytes { combine(byte: byte) }
    }

    @inline(__always)
    private mutating func combine(byte: UInt8) {
        tail |= UInt64(byte) << UInt64(8 * tailCount)
        tailCount += 1
        length += 1
        if tailCount == 8 {
            compress(tail)
            tail = 0
            tailCount = 0
        }
    }

    /// Feeds contiguous bytes a word at a time (the same digest as feeding them one by one).
    public mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while tailCount != 0 && offset < bytes.count {
            combine(byte: bytes[offset])
            offset += 1
        }
        while bytes.count - offset >= 8 {
            compress(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
            length += 8
        }
        while offset < bytes.count {
            combine(byte: bytes[offset])
            offset += 1
        }
    }

    /// Feeds a string's UTF-8 bytes followed by a 0xFF separator, so ("ab","c") and ("a","bc") differ.
    public mutating func combineField(_ text: String) {
        var text = text
        text.withUTF8 { combine(UnsafeRawBufferPointer($0)) }
        combine(byte: 0xFF)
    }

    /// The 64-bit digest.
    public consuming func finalize() -> UInt64 {
        compress(tail | UInt64(truncatingIfNeeded: length) << 56)
        v2 ^= 0xff
        round()
        round()
        round()
        round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}
