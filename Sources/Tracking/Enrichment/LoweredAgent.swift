#if canImport(Glibc)
import Glibc
#endif

/// A user agent lower-cased (ASCII letters only, so byte offsets stay those of the header), searched as bytes:
/// the token rules make a few hundred substring checks per new agent, and `memchr` + `memcmp` do one in tens of
/// nanoseconds where `String.contains` goes through Foundation's locale-aware search (microseconds). (glibc's
/// `memmem` is not visible to Swift without `_GNU_SOURCE`.)
struct LoweredAgent {
    let bytes: [UInt8]

    init(_ header: String) {
        bytes = header.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
    }

    /// The byte offset of `needle` (lower-case ASCII), if it occurs.
    func offset(of needle: String) -> Int? {
        var needle = needle
        return needle.withUTF8 { token in
            bytes.withUnsafeBytes { text -> Int? in
                guard let base = text.baseAddress, let first = token.first, token.count <= text.count else { return nil }
                var start = 0
                let last = text.count - token.count
                while start <= last, let hit = memchr(base + start, Int32(first), last - start + 1) {
                    let offset = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(hit, token.baseAddress!, token.count) == 0 { return offset }
                    start = offset + 1
                }
                return nil
            }
        }
    }

    func contains(_ needle: String) -> Bool { offset(of: needle) != nil }

    /// Whether any of `needles` occurs.
    func containsAny(_ needles: [String]) -> Bool { needles.contains { contains($0) } }

    /// An email-like `@` followed somewhere by a dot.
    var hasAddress: Bool {
        guard let at = bytes.firstIndex(of: UInt8(ascii: "@")) else { return false }
        return bytes[at...].contains(UInt8(ascii: "."))
    }
}
