import NIOCore
import NIOHTTP1

/// A request head as parsed: its bytes and where each part sits in them, so the data plane can route and forward
/// without making a string per header. Framing is decided here, once.
public struct ParsedRequestHead: Sendable {
    /// The request line and the header lines, as received (without the blank line).
    public let bytes: ByteBuffer
    public let method: HTTPMethod
    public let version: HTTPVersion
    /// The request target's offset and length in `bytes`.
    public let targetStart: Int, targetLength: Int
    /// Offsets of each header's name and (trimmed) value in `bytes`, in order.
    public let fields: [Field]
    public let framing: Framing
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
    public let keepAlive: Bool
    /// `Expect: 100-continue`.
    public let expectsContinue: Bool
    /// An `Upgrade` header is present (a WebSocket opening).
    public let hasUpgrade: Bool

    public struct Field: Sendable, Equatable {
        public var nameStart: Int32, nameLength: Int32, valueStart: Int32, valueLength: Int32
    }

    /// How the body is delimited (RFC 9112 §6.3).
    public enum Framing: Sendable, Equatable {
        case none
        case contentLength(Int)
        case chunked
    }

    /// The request target's bytes.
    public var target: ByteBufferView { bytes.readableBytesView[bytes.readerIndex + targetStart..<bytes.readerIndex + targetStart + targetLength] }

    /// Calls `body` with each header's name and value.
    public func forEachField(_ body: (ByteBufferView, ByteBufferView) -> Void) {
        let view = bytes.readableBytesView
        let base = view.startIndex
        for field in fields {
            let name = base + Int(field.nameStart), value = base + Int(field.valueStart)
            body(view[name..<name + Int(field.nameLength)], view[value..<value + Int(field.valueLength)])
        }
    }

    /// The head as the data plane keeps it: the target as a string, the fields copied as bytes (one buffer).
    /// `noting` sees each field's name and value bytes as they are copied, so a caller can gather what it needs
    /// in the same pass (the edge's header summary).
    @inlinable
    public func makeRequestHead(noting: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void = { _, _ in }) -> RequestHead {
        bytes.withUnsafeReadableBytes { raw in
            for field in fields {
                let nameStart = Int(field.nameStart), valueStart = Int(field.valueStart)
                noting(
                    UnsafeRawBufferPointer(rebasing: raw[nameStart..<nameStart + Int(field.nameLength)]),
                    UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueStart + Int(field.valueLength)]))
            }
            let uri = String(decoding: UnsafeRawBufferPointer(rebasing: raw[targetStart..<targetStart + targetLength]), as: UTF8.self)
            return RequestHead(
                version: version, method: method, uri: uri, headers: RequestFields(copying: raw, fields: fields),
                keepAlive: keepAlive)
        }
    }

    /// The head as NIO's type, for code that still takes one. `noting` sees each header as it is added, its name as
    /// bytes and its value as the string the head keeps, so a caller can gather what it needs in the same pass
    /// (the edge's header summary) without making or scanning the strings again.
    @inlinable
    public func makeHTTPRequestHead(noting: (_ name: UnsafeRawBufferPointer, _ value: String) -> Void = { _, _ in }) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count)
        let uri = bytes.withUnsafeReadableBytes { raw in
            for field in fields {
                let nameStart = Int(field.nameStart), valueStart = Int(field.valueStart)
                let name = UnsafeRawBufferPointer(rebasing: raw[nameStart..<nameStart + Int(field.nameLength)])
                let value = String(
                    decoding: UnsafeRawBufferPointer(rebasing: raw[valueStart..<valueStart + Int(field.valueLength)]), as: UTF8.self)
                headers.add(name: String(decoding: name, as: UTF8.self), value: value)
                noting(name, value)
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[targetStart..<targetStart + targetLength]), as: UTF8.self)
        }
        return HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)
    }
}

/// A strict, incremental HTTP/1.1 request parser: a value fed raw bytes that yields the head, body pieces and the
/// end, one event at a time (no channel handlers, no boxed parts, no header strings).
///
/// RFC 9112, read for smuggling safety: CRLF line ends only (a bare CR or LF is refused), no whitespace before a
/// header's colon, no folded lines, no control characters in names or values; a body is framed by exactly one
/// Content-Length of digits, or by `Transfer-Encoding: chunked` alone (both together, a repeated or listed
/// Content-Length, a coding list not ending in chunked, or chunked on HTTP/1.0 are refused; a coding other than
/// chunked is not implemented); chunk sizes are hex digits within 16 (no `0x`, no overflow), each chunk ends in
/// CRLF; exactly one Host on HTTP/1.1 (at most one on HTTP/1.0). Bounded: head size, header count, chunk-extension
/// and trailer size. After a request that does not keep the connection (`Connection: close`, HTTP/1.0 without
/// keep-alive) nothing more is read.
public struct RequestParser: Sendable {
    public enum Event: Sendable {
        case head(ParsedRequestHead)
        case body(ByteBuffer)
        /// The request is complete; trailer fields of a chunked body, if any, as name/value pairs.
        case end(trailers: [(String, String)])
    }

    /// Why a request is refused: the status to answer with and a short reason. The connection cannot be trusted
    /// afterwards.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var status: HTTPResponseStatus
        public var reason: String
        public var description: String { "\(status.code) \(reason)" }

        static func bad(_ reason: String) -> Refusal { Refusal(status: .badRequest, reason: reason) }
    }

    public struct Limits: Sendable {
        /// Request line and headers together.
        public var maxHeadBytes = 16 << 10
        public var maxHeaders = 100
        public var maxTargetBytes = 8192
        /// Trailer section of a chunked body.
        public var maxTrailerBytes = 8 << 10

        public init() {}
    }

    private enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        /// The body (if any) is complete: `.end` comes next, then the next request's head.
        case ending
        /// A request that does not keep the connection ended: nothing after it is read (the connection closes once
        /// it is answered).
        case closed
    }

    public let limits: Limits
    private var state = State.head
    /// The request being read keeps the connection open.
    private var keepAlive = true
    private var emptyLinesSkipped = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether a request is between its head and its end.
    public var isInBody: Bool {
        switch state {
        case .head, .closed: false
        default: true
        }
    }

    /// The next event from `buffer`, consuming what it used; nil when more bytes are needed.
    public mutating func next(_ buffer: inout ByteBuffer) throws(Refusal) -> Event? {
        switch state {
        case .closed:
            return nil
        case .ending:
            state = keepAlive ? .head : .closed
            return .end(trailers: [])
        case .head:
            return try parseHead(&buffer)
        case .fixed(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let piece = buffer.readSlice(length: count)!
            state = remaining == count ? .ending : .fixed(remaining: remaining - count)
            return .body(piece)
        case .chunkSize:
            guard let line = try readLine(&buffer, limit: 4096, what: "chunk size line") else { return nil }
            guard let size = HTTPBytes.chunkSize(line.readableBytesView) else { throw .bad("a malformed chunk size line") }
            if size == 0 {
                state = .trailers
                trailerBytes = 0
                trailers = []
                return try next(&buffer)
            }
            state = .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let piece = buffer.readSlice(length: count)!
            state = remaining == count ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            return .body(piece)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else { return nil }
            guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"), buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n") else {
                throw .bad("a chunk did not end with CRLF")
            }
            state = .chunkSize
            return try next(&buffer)
        case .trailers:
            while let line = try readLine(&buffer, limit: limits.maxTrailerBytes, what: "trailer line") {
                trailerBytes += line.readableBytes + 2
                guard trailerBytes <= limits.maxTrailerBytes else { throw .bad("the trailer section is larger than \(limits.maxTrailerBytes) bytes") }
                if line.readableBytes == 0 {
                    state = keepAlive ? .head : .closed
                    let fields = trailers
                    trailers = []
                    return .end(trailers: fields)
                }
                trailers.append(try Self.trailer(line))
            }
            return nil
        }
    }

    private var trailerBytes = 0
    private var trailers: [(String, String)] = []
    /// The last head's field list, kept to be filled again: once the caller let go of that head (the edge turns it
    /// into NIO's type at once), the next head reuses its storage instead of allocating a list per request.
    private var fieldStorage: [ParsedRequestHead.Field] = []

    // MARK: - Head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(Refusal) -> Event? {
        // RFC 9112 §2.2: empty lines before a request line are ignored (a few, from clients that add CRLF after a body).
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt16.self) == 0x0D0A {
            emptyLinesSkipped += 1
            guard emptyLinesSkipped <= 4 else { throw .bad("empty lines instead of a request") }
            buffer.moveReaderIndex(forwardBy: 2)
        }
        // The head ends at the first CRLF CRLF; a bare CR or LF anywhere in it is refused while scanning. Lines are
        // only counted here (no list of them: the head is read again, from the cache, once it is complete).
        let scan = buffer.withUnsafeReadableBytes { raw in Self.scanHead(HeadBytes(raw: raw), maxLines: limits.maxHeaders + 1) }
        let (headEnd, requestLineEnd, lineCount) = try scan.get()
        guard let headEnd else {
            if buffer.readableBytes > limits.maxHeadBytes {
                throw Refusal(status: .requestHeaderFieldsTooLarge, reason: "the request head is larger than \(limits.maxHeadBytes) bytes")
            }
            return nil
        }
        guard headEnd <= limits.maxHeadBytes + 2 else {
            throw Refusal(status: .requestHeaderFieldsTooLarge, reason: "the request head is larger than \(limits.maxHeadBytes) bytes")
        }
        emptyLinesSkipped = 0
        guard lineCount > 0 else { throw .bad("an empty request") }
        // The head's bytes without the blank line's CRLF and the last line's.
        let headLength = headEnd - 4
        let bytes = buffer.getSlice(at: buffer.readerIndex, length: headLength)!
        buffer.moveReaderIndex(forwardBy: headEnd)
        var fields = fieldStorage
        fieldStorage = []
        // Unique again when the previous head is gone: emptied in place, capacity kept.
        fields.removeAll(keepingCapacity: true)
        let head = try Self.makeHead(
            bytes: bytes, requestLineLength: requestLineEnd, headerCount: lineCount - 1, limits: limits, fields: &fields)
        fieldStorage = head.fields
        keepAlive = head.keepAlive
        switch head.framing {
        case .none: state = .ending
        case .contentLength(let length): state = .fixed(remaining: length)
        case .chunked: state = .chunkSize
        }
        return .head(head)
    }

    /// Finds the end of a head in `head`: the offset after its blank line (nil while incomplete), where the request
    /// line ends, and how many lines came before the blank one. Refuses a bare CR or LF, a control character other
    /// than HTAB, or more than `maxLines` lines.
    private static func scanHead(_ head: HeadBytes, maxLines: Int) -> Result<(headEnd: Int?, requestLineEnd: Int, lineCount: Int), Refusal> {
        var index = 0, lineStart = 0, lineCount = 0, requestLineEnd = 0
        let end = head.count
        while index < end {
            let byte = head[index]
            // Every byte of a head is checked here; most are visible characters, so test for those first.
            if (byte > 0x20 && byte < 0x7F) || byte == UInt8(ascii: " ") {
                index += 1
                continue
            }
            if byte == UInt8(ascii: "\r") {
                guard index + 1 < end else { break }
                guard head[index + 1] == UInt8(ascii: "\n") else { return .failure(.bad("a bare CR in the head")) }
                if index == lineStart { return .success((index + 2, requestLineEnd, lineCount)) }
                if lineCount == 0 { requestLineEnd = index }
                lineCount += 1
                guard lineCount <= maxLines else {
                    return .failure(Refusal(status: .requestHeaderFieldsTooLarge, reason: "more than \(maxLines - 1) header fields"))
                }
                index += 2
                lineStart = index
                continue
            }
            if byte == UInt8(ascii: "\n") { return .failure(.bad("a bare LF in the head (lines end with CRLF)")) }
            // No control character is valid anywhere in a head but HTAB in a value: refused as soon as seen.
            if (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F { return .failure(.bad("a control character in the head")) }
            index += 1
        }
        return .success((nil, requestLineEnd, lineCount))
    }

    /// Reads a complete head: `bytes` holds the request line and the header lines, each but the last followed by
    /// CRLF (already checked: no bare CR or LF, no control characters but HTAB).
    private static func makeHead(
        bytes: ByteBuffer, requestLineLength: Int, headerCount: Int, limits: Limits, fields: inout [ParsedRequestHead.Field]
    ) throws(Refusal) -> ParsedRequestHead {
        let parts = bytes.withUnsafeReadableBytes { raw in
            Result { () throws(Refusal) in
                try readHead(HeadBytes(raw: raw), requestLineLength: requestLineLength, headerCount: headerCount, limits: limits, fields: &fields)
            }
        }
        let head = try parts.get()
        return ParsedRequestHead(
            bytes: bytes, method: head.method, version: head.version, targetStart: head.target.lowerBound,
            targetLength: head.target.count, fields: fields, framing: head.framing, keepAlive: head.keepAlive,
            expectsContinue: head.expectsContinue, hasUpgrade: head.hasUpgrade)
    }

    /// What ``makeHead(bytes:requestLineLength:headerCount:limits:)`` reads from the head's bytes.
    private struct HeadParts {
        var method: HTTPMethod
        var version: HTTPVersion
        var target: Range<Int>
        var framing: ParsedRequestHead.Framing
        var keepAlive: Bool
        var expectsContinue: Bool
        var hasUpgrade: Bool
    }

    /// `fields`: an empty list to fill with the header fields (its storage is reused).
    private static func readHead(
        _ head: HeadBytes, requestLineLength: Int, headerCount: Int, limits: Limits, fields: inout [ParsedRequestHead.Field]
    ) throws(Refusal) -> HeadParts {
        // method SP request-target SP HTTP-version
        guard let firstSpace = head.firstIndex(of: UInt8(ascii: " "), in: 0..<requestLineLength),
            let secondSpace = head.firstIndex(of: UInt8(ascii: " "), in: (firstSpace + 1)..<requestLineLength)
        else { throw .bad("a malformed request line") }
        let methodBytes = 0..<firstSpace
        let target = (firstSpace + 1)..<secondSpace
        let versionBytes = (secondSpace + 1)..<requestLineLength
        // Methods are upper-case tokens (as `RequestMethod.isAcceptable` holds for HTTP/2): `get` is not `GET`.
        guard !methodBytes.isEmpty, methodBytes.count <= 32, head.allSatisfy(methodBytes, {
            ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
        }) else { throw .bad("the method must be an upper-case token") }
        // Visible ASCII only (RFC 9112 §3.2: non-ASCII is sent percent-encoded).
        guard !target.isEmpty, head.allSatisfy(target, { $0 > 0x20 && $0 < 0x7F }) else {
            throw .bad("the request target is empty or holds a space, a control character or a byte outside ASCII")
        }
        guard target.count <= limits.maxTargetBytes else {
            throw Refusal(status: .uriTooLong, reason: "the request target is longer than \(limits.maxTargetBytes) bytes")
        }
        let version: HTTPVersion
        if head.equals(versionBytes, "HTTP/1.1") {
            version = .http1_1
        } else if head.equals(versionBytes, "HTTP/1.0") {
            version = .http1_0
        } else {
            throw .bad("the version is not HTTP/1.1 or HTTP/1.0")
        }
        fields.reserveCapacity(headerCount)
        var contentLength: Int?
        var contentLengthSeen = false
        var transferEncoding: Range<Int>?
        var connectionClose = false, connectionKeepAlive = false, expectsContinue = false, hasUpgrade = false
        var hostCount = 0
        var lineStart = requestLineLength + 2
        while lineStart < head.count {
            let lineEnd = head.firstIndex(of: UInt8(ascii: "\r"), in: lineStart..<head.count) ?? head.count
            let (name, value) = try field(head, lineStart..<lineEnd)
            lineStart = lineEnd + 2
            fields.append(ParsedRequestHead.Field(
                nameStart: Int32(name.lowerBound), nameLength: Int32(name.count), valueStart: Int32(value.lowerBound),
                valueLength: Int32(value.count)))
            switch name.count {
            case 14 where head.equalsIgnoringCase(name, "content-length"):
                guard !contentLengthSeen else { throw .bad("Content-Length is repeated") }
                contentLengthSeen = true
                guard !value.isEmpty, value.count <= 18, head.allSatisfy(value, { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    throw .bad("Content-Length is not a number")
                }
                contentLength = value.reduce(0) { $0 * 10 + Int(head[$1] - UInt8(ascii: "0")) }
            case 17 where head.equalsIgnoringCase(name, "transfer-encoding"):
                guard transferEncoding == nil else { throw .bad("Transfer-Encoding is repeated") }
                transferEncoding = value
            case 10 where head.equalsIgnoringCase(name, "connection"):
                for token in head.listElements(value) {
                    if head.equalsIgnoringCase(token, "close") { connectionClose = true }
                    if head.equalsIgnoringCase(token, "keep-alive") { connectionKeepAlive = true }
                }
            case 6 where head.equalsIgnoringCase(name, "expect"):
                expectsContinue = head.equalsIgnoringCase(value, "100-continue")
            case 7 where head.equalsIgnoringCase(name, "upgrade"):
                hasUpgrade = true
            case 4 where head.equalsIgnoringCase(name, "host"):
                hostCount += 1
            default:
                break
            }
        }
        // RFC 9112 §3.2: one Host, required from HTTP/1.1 on; two could name two sites to two readers.
        guard hostCount <= 1 else { throw .bad("the Host header is repeated") }
        guard hostCount == 1 || version == .http1_0 else { throw .bad("HTTP/1.1 requests need a Host header") }
        let framing: ParsedRequestHead.Framing
        if let transferEncoding {
            guard !contentLengthSeen else { throw .bad("both Content-Length and Transfer-Encoding are present") }
            guard version == .http1_1 else { throw .bad("Transfer-Encoding in an HTTP/1.0 request") }
            let codings = head.listElements(transferEncoding)
            guard let last = codings.last, !codings.contains(where: \.isEmpty) else { throw .bad("an empty transfer coding") }
            if !head.equalsIgnoringCase(last, "chunked") {
                // A coding other than chunked at the end: the length is unknown (RFC 9112 §6.3 ¶4), or not ours to read.
                if codings.contains(where: { head.equalsIgnoringCase($0, "chunked") }) { throw .bad("chunked is not the last transfer coding") }
                throw Refusal(status: .notImplemented, reason: "only the chunked transfer coding is implemented")
            }
            // `gzip, chunked` is well-formed, but the edge would forward a body it cannot decode (RFC 9112 §6.1: 501).
            guard codings.count == 1 else {
                throw Refusal(status: .notImplemented, reason: "only the chunked transfer coding is implemented")
            }
            framing = .chunked
        } else if let contentLength {
            framing = contentLength == 0 ? .none : .contentLength(contentLength)
        } else {
            framing = .none
        }
        let keepAlive = version == .http1_1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return HeadParts(
            method: method(head, methodBytes), version: version, target: target, framing: framing,
            keepAlive: keepAlive, expectsContinue: expectsContinue, hasUpgrade: hasUpgrade)
    }

    // MARK: - Pieces

    /// `name ":" OWS value OWS`: a token name with no space before the colon, a value of visible characters,
    /// spaces and tabs (obs-text allowed), nothing else.
    static func field(_ head: HeadBytes, _ line: Range<Int>) throws(Refusal) -> (name: Range<Int>, value: Range<Int>) {
        guard !line.isEmpty else { throw .bad("an empty header line") }
        let first = head[line.lowerBound]
        guard first != UInt8(ascii: " ") && first != UInt8(ascii: "\t") else { throw .bad("a folded header line (obs-fold)") }
        guard let colon = head.firstIndex(of: UInt8(ascii: ":"), in: line) else { throw .bad("a header line without a colon") }
        let name = line.lowerBound..<colon
        guard !name.isEmpty, head.allSatisfy(name, HTTPBytes.isTokenByte) else {
            throw .bad("a header name that is not a token (space before the colon?)")
        }
        let value = head.trimmed((colon + 1)..<line.upperBound)
        guard head.allSatisfy(value, { $0 == UInt8(ascii: "\t") || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw .bad("a control character in the value of \(head.string(name))")
        }
        return (name, value)
    }

    /// A trailer line's name and value (the same grammar as a header line); framing fields are refused.
    private static func trailer(_ line: ByteBuffer) throws(Refusal) -> (String, String) {
        let parsed = line.withUnsafeReadableBytes { raw in
            Result { () throws(Refusal) in
                let head = HeadBytes(raw: raw)
                let (name, value) = try field(head, 0..<head.count)
                // A framing field among trailers (RFC 9110 §6.5.1) can only mean two readings of one message.
                if head.equalsIgnoringCase(name, "transfer-encoding") || head.equalsIgnoringCase(name, "content-length") {
                    throw .bad("\(head.string(name)) in a trailer")
                }
                return (head.string(name), head.string(value))
            }
        }
        return try parsed.get()
    }

    /// One CRLF-terminated line (without the CRLF), consumed; nil while incomplete. A bare CR or LF is refused.
    private func readLine(_ buffer: inout ByteBuffer, limit: Int, what: String) throws(Refusal) -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(where: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) else {
            if view.count > limit { throw .bad("a \(what) longer than \(limit) bytes") }
            return nil
        }
        guard view[cr] == UInt8(ascii: "\r") else { throw .bad("a bare LF ending a \(what)") }
        guard cr + 1 < view.endIndex else { return nil }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw .bad("a bare CR in a \(what)") }
        guard cr - view.startIndex <= limit else { throw .bad("a \(what) longer than \(limit) bytes") }
        let line = buffer.readSlice(length: cr - view.startIndex)!
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// NIO's method value for the token (upper-case known methods; anything else as RAW).
    static func method(_ head: HeadBytes, _ range: Range<Int>) -> HTTPMethod {
        switch range.count {
        case 3 where head.equals(range, "GET"): .GET
        case 4 where head.equals(range, "HEAD"): .HEAD
        case 4 where head.equals(range, "POST"): .POST
        case 3 where head.equals(range, "PUT"): .PUT
        case 6 where head.equals(range, "DELETE"): .DELETE
        case 7 where head.equals(range, "OPTIONS"): .OPTIONS
        case 5 where head.equals(range, "PATCH"): .PATCH
        case 7 where head.equals(range, "CONNECT"): .CONNECT
        case 5 where head.equals(range, "TRACE"): .TRACE
        default: .RAW(value: head.string(range))
        }
    }
}
