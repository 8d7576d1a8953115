/// Event ids: UUID version 7 (RFC 9562) — 48 bits of Unix milliseconds, then random bits — so ids sort by time and
/// ClickHouse keeps related rows together. One generator per event loop: a xoshiro256** stream seeded once from the
/// system, so making an id costs no syscall and no lock.
public struct EventIDGenerator {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// Seeded from the system's random source.
    public init() {
        var system = SystemRandomNumberGenerator()
        self.init(seed: system.next())
    }

    /// Seeded explicitly (tests).
    public init(seed: UInt64) {
        var mix = SplitMix64(state: seed)
        state = (mix.next(), mix.next(), mix.next(), mix.next())
    }

    /// A new id for the given Unix time in milliseconds.
    public mutating func next(unixMilliseconds: UInt64) -> EventID {
        let random = nextRandom()
        let high = (unixMilliseconds << 16) | 0x7000 | (random & 0x0FFF)
        let low = (nextRandom() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return EventID(high: high, low: low)
    }

    mutating func nextRandom() -> UInt64 {
        // xoshiro256** (Blackman and Vigna).
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// SplitMix64, to spread one seed over the generator's state.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A UUID as two big-endian halves: `high` holds bytes 0–7, `low` bytes 8–15.
public struct EventID: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Unix milliseconds of a version 7 id.
    public var unixMilliseconds: UInt64 { high >> 16 }

    /// Parses a UUID (`8-4-4-4-12` hex digits, any case) or 32 hex digits, without allocating (ClickHouse answers,
    /// short-link journals of a million ids).
    public init?(_ text: String) {
        var high: UInt64 = 0, low: UInt64 = 0, digits = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "-"): continue
            default: return nil
            }
            if digits < 16 { high = high << 4 | UInt64(value) } else { low = low << 4 | UInt64(value) }
            digits += 1
        }
        guard digits == 32 else { return nil }
        self.init(high: high, low: low)
    }

    /// The canonical text form, `xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`.
    public var description: String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    let nibble = UInt8((value >> UInt64(shift)) & 0xF)
                    buffer[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                    index += 1
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, nibbles: 8)
            dash()
            put((high >> 16) & 0xFFFF, nibbles: 4)
            dash()
            put(high & 0xFFFF, nibbles: 4)
            dash()
            put(low >> 48, nibbles: 4)
            dash()
            put(low & 0xFFFF_FFFF_FFFF, nibbles: 12)
            return 36
        }
    }
}

