/// A request's ID, as the answer's and the upstream's `X-Request-Id`, the event and the access log carry it: the
/// client's own when it sent an acceptable one, else one the edge made: 32 hex digits, a random prefix per event
/// loop and run, then the loop's counter.
///
/// A made ID is kept as its two numbers and written as hex where it goes (``withUTF8(_:)``): 32 digits are too many
/// for an inline string, so holding it as a `String` cost a heap allocation (and its UTF-8 check) per proxied
/// request, and a retain and release at every hop.
///
/// Two IDs are equal when their text is: a made ID and the same digits given as text are one ID (an event read
/// back from the spool holds its ID as text).
public struct RequestID: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringLiteral {
    @usableFromInline
    enum Storage: Sendable {
        case made(prefix: UInt64, serial: UInt64)
        case given(String)
    }

    @usableFromInline
    let storage: Storage

    /// The ID as text: a client's `X-Request-Id`, or an ID read back.
    @inlinable
    public init(_ text: String) { storage = .given(text) }

    public init(stringLiteral text: String) { self.init(text) }

    /// An ID the edge made: `prefix` and `serial` as 16 hex digits each.
    @inlinable
    public init(prefix: UInt64, serial: UInt64) { storage = .made(prefix: prefix, serial: serial) }

    /// No ID (an event of a request that was never given one).
    public static let empty = RequestID("")

    /// The length of a made ID's text.
    public static let madeLength = 32

    @inlinable
    public var isEmpty: Bool {
        switch storage {
        case .made: false
        case .given(let text): text.isEmpty
        }
    }

    /// The text's length in UTF-8 bytes.
    @inlinable
    public var utf8Count: Int {
        switch storage {
        case .made: Self.madeLength
        case .given(let text): text.utf8.count
        }
    }

    /// Calls `body` with the ID's UTF-8 (a made ID's digits are written on the stack for the call).
    @inlinable
    public func withUTF8<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        switch storage {
        case .made(let prefix, let serial):
            // Four words on the stack, eight digits each, in reading order.
            var digits = (
                Self.hexDigits(UInt32(truncatingIfNeeded: prefix >> 32)), Self.hexDigits(UInt32(truncatingIfNeeded: prefix)),
                Self.hexDigits(UInt32(truncatingIfNeeded: serial >> 32)), Self.hexDigits(UInt32(truncatingIfNeeded: serial)))
            return try withUnsafeBytes(of: &digits) { try body($0) }
        case .given(var text):
            return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        }
    }

    public var description: String {
        switch storage {
        case .made: withUTF8 { String(decoding: $0, as: UTF8.self) }
        case .given(let text): text
        }
    }

    @inlinable
    public static func == (lhs: RequestID, rhs: RequestID) -> Bool {
        if case .made(let leftPrefix, let leftSerial) = lhs.storage, case .made(let rightPrefix, let rightSerial) = rhs.storage {
            return leftPrefix == rightPrefix && leftSerial == rightSerial
        }
        return lhs.withUTF8 { left in rhs.withUTF8 { right in left.elementsEqual(right) } }
    }

    /// `value` as eight lower-case hex digits, as the bytes of a word in memory order (most significant digit
    /// first). All eight at once: each nibble is spread into a byte of its own, then `0` is added to each, and the
    /// distance to `a` to those above 9 (a per-digit loop was about a tenth of a proxied request's recording).
    @inlinable
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var spread = UInt64(value)
        spread = (spread | (spread << 16)) & 0x0000_FFFF_0000_FFFF
        spread = (spread | (spread << 8)) & 0x00FF_00FF_00FF_00FF
        spread = (spread | (spread << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        // Byte i now holds nibble i (the least significant first); a digit above 9 has bit 4 set once 6 is added.
        let aboveNine = ((spread &+ 0x0606_0606_0606_0606) & 0x1010_1010_1010_1010) >> 4
        let ascii = spread &+ 0x3030_3030_3030_3030 &+ aboveNine &* 39
        // The most significant digit (byte 7) first in memory, whatever the machine's byte order.
        return ascii.bigEndian
    }
}
