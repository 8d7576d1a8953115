/// A request path made safe to map onto a folder (the static file server's view): percent-decoded per segment, dot
/// segments resolved, repeated slashes merged, and anything that could step outside the root refused. Routing uses
/// ``NormalizedPath`` first, whose output this decodes the rest of.
public struct RequestPath: Equatable, Sendable {
    /// Decoded path segments, none empty, none `.` or `..`.
    public var segments: [String]
    /// Whether the request path ended in `/` (a folder was asked for).
    public var hasTrailingSlash: Bool

    /// Why a path was refused; each maps to a 400 answer with this text as the reason.
    public enum Rejection: String, Error, Sendable {
        case notAbsolute = "the path must start with /"
        case badPercentEncoding = "the path has an invalid percent-encoding"
        case encodedSlash = "the path has an encoded slash"
        case nulByte = "the path has a NUL byte"
        case escapesRoot = "the path climbs above the root"
        case invalidUTF8 = "the path is not valid UTF-8"
    }

    /// Normalizes the path part of a request target (no query string).
    public static func normalize(_ raw: Substring) -> Result<RequestPath, Rejection> {
        guard raw.first == "/" else { return .failure(.notAbsolute) }
        var segments: [String] = []
        var trailing = false
        for piece in raw.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst() {
            trailing = piece.isEmpty
            if piece.isEmpty { continue }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(piece.count)
            var index = piece.startIndex
            while index < piece.endIndex {
                let byte = piece[index]
                if byte == UInt8(ascii: "%") {
                    let first = piece.index(after: index)
                    guard first < piece.endIndex, piece.index(after: first) < piece.endIndex,
                        let high = hexValue(piece[first]), let low = hexValue(piece[piece.index(after: first)])
                    else { return .failure(.badPercentEncoding) }
                    let decoded = high << 4 | low
                    if decoded == UInt8(ascii: "/") { return .failure(.encodedSlash) }
                    bytes.append(decoded)
                    index = piece.index(index, offsetBy: 3)
                } else {
                    bytes.append(byte)
                    index = piece.index(after: index)
                }
            }
            if bytes.contains(0) { return .failure(.nulByte) }
            guard let segment = String(validating: bytes, as: UTF8.self) else { return .failure(.invalidUTF8) }
            switch segment {
            case ".":
                trailing = true
            case "..":
                if segments.isEmpty { return .failure(.escapesRoot) }
                segments.removeLast()
                trailing = true
            default:
                segments.append(segment)
            }
        }
        if segments.isEmpty { trailing = true }
        return .success(RequestPath(segments: segments, hasTrailingSlash: trailing))
    }

    /// Whether `raw` is already in normal form: starts with `/`, only unreserved characters, no `//`, and no segment
    /// starting with a dot (which also rules out `.`, `..` and dotfiles). Such a path maps to itself.
    public static func isAlreadyNormal(_ raw: Substring) -> Bool {
        var previous: UInt8 = 0
        var first = true
        for byte in raw.utf8 {
            if first {
                if byte != UInt8(ascii: "/") { return false }
                first = false
                previous = byte
                continue
            }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"):
                break
            case UInt8(ascii: "."), UInt8(ascii: "/"):
                if previous == UInt8(ascii: "/") { return false }
            default:
                return false
            }
            previous = byte
        }
        return !first
    }

    /// The path relative to a root, without a leading slash (`css/site.css`).
    public var relative: String { segments.joined(separator: "/") }

    /// Whether any segment is a dotfile (`.git`, `.env`), except `.well-known` which is public by convention.
    public var hasHiddenSegment: Bool {
        segments.contains { $0.hasPrefix(".") && $0 != ".well-known" }
    }

    /// The path re-encoded for use in a `Location` header, always starting with exactly one slash.
    public func encoded(trailingSlash: Bool) -> String {
        var out = "/" + segments.map(percentEncode).joined(separator: "/")
        if trailingSlash && !segments.isEmpty { out += "/" }
        return out
    }
}

/// Percent-encodes everything outside RFC 3986's unreserved set and a few safe sub-delimiters.
public func percentEncode(_ segment: String) -> String {
    var out = ""
    for byte in segment.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","),
            UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%"
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
        }
    }
    return out
}
