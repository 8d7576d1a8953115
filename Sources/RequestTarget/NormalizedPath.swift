/// What an encoded slash (`%2F`) or encoded backslash (`%5C`) in a request path means. The same three choices as
/// Apache's `AllowEncodedSlashes` (Off, On, NoDecode); nginx decodes them.
public enum EncodedSlashPolicy: String, Sendable, CaseIterable {
    /// Refused with 400 (the default): such a path means one thing to the edge and another to many backends.
    case reject
    /// Decoded to `/` (a `%5C` too), so the route sees the path a decoding backend would, and the backend is sent the
    /// decoded form.
    case decode
    /// Kept encoded inside its segment: not a separator for routing, and sent upstream as `%2F` (for apps that put
    /// encoded identifiers in paths).
    case keep
}

/// The one form of a request path that routing, rate limits, body limits and the upstream all see.
///
/// Two spellings of the same resource must not reach different routes: `/a/%61dmin`, `/a//admin`, `/a/x/../admin`
/// and `/a/admin` all normalize to `/a/admin`. The rules (RFC 3986 §6.2.2, plus slash merging as nginx does):
/// - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; other escapes keep their encoding
///   with upper-case hex digits (`%c3%a9` becomes `%C3%A9`), so `%` itself is never decoded and nothing is decoded twice;
/// - bytes a URI may not hold raw (non-ASCII, `"`, `<`, `>`, `` ` ``, `{`, `|`, `}`, `^`) are percent-encoded;
/// - `.` and `..` segments are resolved (encoded ones too); climbing above `/` is refused;
/// - repeated slashes are merged; a trailing slash is kept;
/// - encoded slashes follow ``EncodedSlashPolicy``; a raw backslash, a NUL, a control character, a space or a
///   fragment (`#`) is refused.
public enum NormalizedPath {
    /// Why a path was refused; each is a 400 with this text as the reason.
    public enum Rejection: String, Error, Sendable, CaseIterable {
        case notAbsolute = "the path must start with /"
        case badPercentEncoding = "the path has an invalid percent-encoding"
        case encodedSlash = "the path has an encoded slash or backslash (%2F, %5C)"
        case backslash = "the path has a backslash"
        case nulByte = "the path has a NUL byte"
        case controlCharacter = "the path has a space or a control character"
        case fragment = "the path has a fragment (#)"
        case escapesRoot = "the path climbs above the root"
    }

    /// The normal form of `path` (the part of the target before `?`), or nil when `path` already is in normal form
    /// (the common case: nothing is allocated).
    public static func normalize(_ path: Substring, encodedSlashes: EncodedSlashPolicy = .reject)
        -> Result<String?, Rejection>
    {
        switch scanForNormalForm(path.utf8, encodedSlashes: encodedSlashes) {
        case .normal: return .success(nil)
        case .refused(let rejection): return .failure(rejection)
        case .needsWork: return rebuild(path.utf8, encodedSlashes: encodedSlashes)
        }
    }

    private enum Scan {
        case normal
        case needsWork
        case refused(Rejection)
    }

    /// One pass that decides whether the path is already normal, without allocating.
    private static func scanForNormalForm(_ bytes: Substring.UTF8View, encodedSlashes: EncodedSlashPolicy) -> Scan {
        guard bytes.first == UInt8(ascii: "/") else { return .refused(.notAbsolute) }
        // Length of the current segment so far and whether it is all dots (to spot `.` and `..`).
        var segmentLength = 0
        var segmentDots = 0
        var index = bytes.index(after: bytes.startIndex)
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch ByteClass.of(byte) {
            case .slash:
                if segmentLength == 0 || (segmentLength == segmentDots && segmentDots <= 2) { return .needsWork }
                segmentLength = 0
                segmentDots = 0
            case .dot:
                segmentLength += 1
                segmentDots += 1
            case .plain:
                segmentLength += 1
            case .percent:
                guard let (decoded, upper, next) = escape(in: bytes, at: index) else { return .refused(.badPercentEncoding) }
                if decoded == 0 { return .refused(.nulByte) }
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") {
                    switch encodedSlashes {
                    case .reject: return .refused(.encodedSlash)
                    case .decode: return .needsWork
                    case .keep: break
                    }
                } else if isUnreserved(decoded) {
                    return .needsWork
                }
                if !upper { return .needsWork }
                segmentLength += 3
                index = next
                continue
            case .mustEncode:
                return .needsWork
            case .backslash:
                return .refused(.backslash)
            case .control:
                return .refused(.controlCharacter)
            case .hash:
                return .refused(.fragment)
            }
            index = bytes.index(after: index)
        }
        if segmentLength > 0 && segmentLength == segmentDots && segmentDots <= 2 { return .needsWork }
        return .normal
    }

    /// Builds the normal form byte by byte (only for paths that need it).
    private static func rebuild(_ bytes: Substring.UTF8View, encodedSlashes: EncodedSlashPolicy)
        -> Result<String?, Rejection>
    {
        // Output segments as byte ranges of `output`; a segment is closed at each separator.
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 8)
        var segmentStarts: [Int] = []
        var current: [UInt8] = []
        var trailingSlash = false

        func closeSegment() -> Rejection? {
            defer { current.removeAll(keepingCapacity: true) }
            if current.isEmpty {
                trailingSlash = true
                return nil
            }
            if current == [UInt8(ascii: ".")] {
                trailingSlash = true
                return nil
            }
            if current == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                guard let start = segmentStarts.popLast() else { return .escapesRoot }
                output.removeSubrange(start...)
                trailingSlash = true
                return nil
            }
            segmentStarts.append(output.count)
            output.append(UInt8(ascii: "/"))
            output.append(contentsOf: current)
            trailingSlash = false
            return nil
        }

        var index = bytes.index(after: bytes.startIndex)
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch ByteClass.of(byte) {
            case .slash:
                if let rejection = closeSegment() { return .failure(rejection) }
            case .dot, .plain:
                current.append(byte)
            case .percent:
                guard let (decoded, _, next) = escape(in: bytes, at: index) else { return .failure(.badPercentEncoding) }
                index = next
                if decoded == 0 { return .failure(.nulByte) }
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") {
                    switch encodedSlashes {
                    case .reject:
                        return .failure(.encodedSlash)
                    case .decode:
                        if let rejection = closeSegment() { return .failure(rejection) }
                        continue
                    case .keep:
                        break
                    }
                }
                if isUnreserved(decoded) {
                    current.append(decoded)
                } else {
                    appendEscape(decoded, to: &current)
                }
                continue
            case .mustEncode:
                appendEscape(byte, to: &current)
            case .backslash:
                return .failure(.backslash)
            case .control:
                return .failure(.controlCharacter)
            case .hash:
                return .failure(.fragment)
            }
            index = bytes.index(after: index)
        }
        // The last segment: `/a/..` and `/a/.` end in a folder, like `/a/../` and `/a/./`.
        if !current.isEmpty {
            if let rejection = closeSegment() { return .failure(rejection) }
        } else {
            trailingSlash = true
        }
        if output.isEmpty || trailingSlash { output.append(UInt8(ascii: "/")) }
        return .success(String(decoding: output, as: UTF8.self))
    }

    private static func appendEscape(_ byte: UInt8, to bytes: inout [UInt8]) {
        let hex: StaticString = "0123456789ABCDEF"
        hex.withUTF8Buffer { digits in
            bytes.append(UInt8(ascii: "%"))
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0xF)])
        }
    }

    /// RFC 3986 §2.3 unreserved characters: an escape of one of these means the character itself.
    @inlinable @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// The byte the escape at `index` (`%` and two hex digits) stands for, whether its digits are upper-case, and
    /// where the escape ends; nil when it is not a whole escape.
    @inline(__always)
    private static func escape(in bytes: Substring.UTF8View, at index: Substring.UTF8View.Index)
        -> (value: UInt8, upperCase: Bool, next: Substring.UTF8View.Index)?
    {
        let first = bytes.index(after: index)
        guard first < bytes.endIndex else { return nil }
        let second = bytes.index(after: first)
        guard second < bytes.endIndex, let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) else {
            return nil
        }
        let lowerCase = { (byte: UInt8) in byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f") }
        return (high << 4 | low, !lowerCase(bytes[first]) && !lowerCase(bytes[second]), bytes.index(after: second))
    }
}

/// How the normalizer treats each byte of a path.
private enum ByteClass {
    case slash, dot, plain, percent, mustEncode, backslash, control, hash

    @inline(__always)
    static func of(_ byte: UInt8) -> ByteClass {
        switch byte {
        case UInt8(ascii: "/"): return .slash
        case UInt8(ascii: "."): return .dot
        case UInt8(ascii: "%"): return .percent
        case UInt8(ascii: "\\"): return .backslash
        case UInt8(ascii: "#"): return .hash
        case 0...0x20, 0x7F: return .control
        // Not allowed raw in a URI (RFC 3986 §2), but sent by some clients: encoded so every spelling is one path.
        case UInt8(ascii: "\""), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "`"), UInt8(ascii: "{"),
            UInt8(ascii: "|"), UInt8(ascii: "}"), UInt8(ascii: "^"), UInt8(ascii: "["), UInt8(ascii: "]"), 0x80...0xFF:
            return .mustEncode
        default: return .plain
        }
    }
}

@inlinable @inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}
