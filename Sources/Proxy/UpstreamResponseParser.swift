import HTTP1Parser
import HeaderRules
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An upstream response head as parsed: the raw bytes and where each header sits in them, so headers can be
/// filtered and copied to the client without becoming strings.
public struct ProxyResponseHead {
    public let status: HTTPResponseStatus
    /// The head's bytes, from the status line through the last header line.
    let bytes: ByteBuffer
    /// Offsets into `bytes` of each header's name and value (value trimmed).
    let fields: [Field]
    struct Field {
        var nameStart: Int32, nameLength: Int32, valueStart: Int32, valueLength: Int32
        /// What the proxy makes of the header, decided once while parsing.
        var kind: HeaderRewriter.HeaderClass
    }
    /// Header names the Connection header lists besides keep-alive, close and upgrade (hop-by-hop too); usually empty.
    let connectionNamed: [ByteBufferView]
    /// Whether the upstream lets the connection carry another request.
    let keepAlive: Bool

    /// Calls `body` with every header that may go to the client: hop-by-hop headers and Transfer-Encoding left out
    /// (the edge frames the body itself; Content-Length stays), `Upgrade` kept for a 101.
    @inline(__always)
    public func forEachHeader(
        dropping rules: HeaderRules? = nil, _ body: (ByteBufferView, ByteBufferView) -> Void
    ) -> HeaderRewriter.PassedHeaders {
        HeaderRewriter.forEachDownstreamHeader(self, dropping: rules, body)
    }

    /// Writes the header lines that may go to the client in HTTP/1.1 form (the same ones ``forEachHeader(_:)``
    /// passes), copying the upstream's bytes.
    @inline(__always)
    public func writeHTTP1Headers(dropping rules: HeaderRules? = nil, into buffer: inout ByteBuffer) -> HeaderRewriter.PassedHeaders {
        HeaderRewriter.writeDownstreamHeaderLines(self, dropping: rules, into: &buffer)
    }

    /// Calls `body` with each header's name, value and kind.
    @inline(__always)
    func forEachField(_ body: (ByteBufferView, ByteBufferView, HeaderRewriter.HeaderClass) -> Void) {
        let view = bytes.readableBytesView
        let base = view.startIndex
        for field in fields {
            let nameStart = base + Int(field.nameStart)
            let valueStart = base + Int(field.valueStart)
            body(view[nameStart..<nameStart + Int(field.nameLength)], view[valueStart..<valueStart + Int(field.valueLength)],
                 field.kind)
        }
    }
}

/// A strict, incremental HTTP/1.1 response parser for upstream connections, as a value that is fed bytes and hands
/// back one event at a time: no channel handlers, no boxing of parts, no header strings.
///
/// It follows RFC 9112 §6.3 for the body length: none for HEAD requests, 1xx, 204 and 304; chunked when
/// Transfer-Encoding ends in chunked; Content-Length (one value, digits only) otherwise; else until the connection
/// closes. Interim 1xx heads other than 101 are skipped. Anything else is an error and the connection is closed:
/// an upstream that frames badly must not desynchronize a pooled connection.
struct UpstreamResponseParser {
    enum Event {
        case head(ProxyResponseHead)
        case body(ByteBuffer)
        case end(trailers: HTTPHeaders?)
        /// A 101 head was delivered: the bytes that follow belong to the new protocol.
        case upgraded
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    private enum State {
        case idle
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(HTTPHeaders)
        case untilClose
        /// A 101 head went out; `.upgraded` comes next.
        case upgrading
        case upgraded
    }

    private var state = State.idle
    private var requestWasHead = false
    /// The last head's field list, filled again for the next response (see ``RequestParser``'s): a pooled connection
    /// parses one head per request, and the edge lets go of each head once its lines are written.
    private var fieldStorage: [ProxyResponseHead.Field] = []

    /// Largest response head accepted.
    static let maxHeadSize = 64 << 10

    /// A request went out: its response comes next.
    mutating func expectResponse(toHead isHead: Bool) {
        state = .head
        requestWasHead = isHead
    }

    /// Whether a response is being read.
    var isBusy: Bool {
        if case .idle = state { return false }
        return true
    }

    /// The next event from `buffer`, consuming what it used; nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws -> Event? {
        if pendingEnd {
            pendingEnd = false
            return .end(trailers: nil)
        }
        switch state {
        case .idle:
            if buffer.readableBytes > 0 { throw ParseError(description: "bytes from the upstream with no request outstanding") }
            return nil
        case .upgrading:
            state = .upgraded
            return .upgraded
        case .upgraded:
            return nil
        case .head:
            return try parseHead(&buffer)
        case .fixed(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: take)!
            if take == remaining {
                state = .idle
                pendingEnd = true  // the next call reports the end
            } else {
                state = .fixed(remaining: remaining - take)
            }
            return .body(slice)
        case .chunkSize:
            guard let line = try readLine(&buffer, limit: 1024) else { return nil }
            guard let size = HTTPBytes.chunkSize(line) else { throw ParseError(description: "bad chunk size line") }
            state = size == 0 ? .trailers(HTTPHeaders()) : .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: take)!
            state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            return .body(slice)
        case .chunkDataEnd:
            guard let line = try readLine(&buffer, limit: 2) else { return nil }
            guard line.isEmpty else { throw ParseError(description: "chunk data longer than its size") }
            state = .chunkSize
            return try next(&buffer)
        case .trailers(var trailers):
            while let line = try readLine(&buffer, limit: Self.maxHeadSize) {
                if line.isEmpty {
                    state = .idle
                    return .end(trailers: trailers.isEmpty ? nil : trailers)
                }
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                    throw ParseError(description: "bad trailer line")
                }
                let name = String(decoding: line[..<colon], as: UTF8.self)
                let value = String(decoding: Self.trim(line[(colon + 1)...]), as: UTF8.self)
                guard name.utf8.allSatisfy(Self.isTokenByte) else { throw ParseError(description: "bad trailer name") }
                trailers.add(name: name, value: value)
                if trailers.count > 100 { throw ParseError(description: "too many trailers") }
            }
            state = .trailers(trailers)
            return nil
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        }
    }

    /// Set after a bodiless head or the last piece of a fixed-length body: the next call reports the end.
    private var pendingEnd = false

    /// The connection closed: the end of a body that runs until close, or an error for anything else in progress.
    mutating func connectionClosed() -> Event? {
        if case .untilClose = state {
            state = .idle
            return .end(trailers: nil)
        }
        return nil
    }

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws -> Event? {
        while true {
            // Find the blank line that ends the head (CRLFCRLF, or bare LFs).
            let found = buffer.withUnsafeReadableBytes { Self.headLength($0) }
            guard let headLength = found else {
                if buffer.readableBytes > Self.maxHeadSize { throw ParseError(description: "response head larger than 64 KB") }
                return nil
            }
            guard headLength.total <= Self.maxHeadSize else { throw ParseError(description: "response head larger than 64 KB") }
            let bytes = buffer.readSlice(length: headLength.total)!
            var fields = fieldStorage
            fieldStorage = []
            fields.removeAll(keepingCapacity: true)
            let head = try bytes.withUnsafeReadableBytes {
                try Self.parse($0, bytes: bytes, contentLength: headLength.content, fields: &fields)
            }
            fieldStorage = head.head.fields
            let code = Int(head.head.status.code)
            if code >= 100 && code < 200 && code != 101 {
                continue  // interim answer (100 Continue, 103 Early Hints): the real one follows
            }
            if code == 101 {
                state = .upgrading
                return .head(head.head)
            }
            if requestWasHead || code == 204 || code == 304 {
                state = .idle
                pendingEnd = true
            } else if let framing = head.chunked, framing {
                state = .chunkSize
            } else if head.chunked == false {
                // Transfer-Encoding without chunked last: the body runs until the connection closes.
                state = .untilClose
            } else if let length = head.contentLength {
                if length == 0 {
                    state = .idle
                    pendingEnd = true
                } else {
                    state = .fixed(remaining: length)
                }
            } else {
                state = .untilClose
            }
            return .head(head.head)
        }
    }

    /// Reads one line without its line ending; nil when the line is not complete yet.
    private func readLine(_ buffer: inout ByteBuffer, limit: Int) throws -> ArraySlice<UInt8>? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limit + 2 { throw ParseError(description: "line too long") }
            return nil
        }
        let length = newline - view.startIndex
        var line = ArraySlice(buffer.readBytes(length: length + 1)!.dropLast())
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        if line.count > limit { throw ParseError(description: "line too long") }
        return line
    }

    /// Where the head ends: the index after the blank line (total) and the length without it (content).
    private static func headLength(_ bytes: UnsafeRawBufferPointer) -> (total: Int, content: Int)? {
        let count = bytes.count
        var index = 0
        while index < count {
            guard let base = bytes.baseAddress,
                let found = memchr(base + index, Int32(UInt8(ascii: "\n")), count - index)
            else { return nil }
            let newline = base.distance(to: UnsafeRawPointer(found))
            let next = newline + 1
            if next < count && bytes[next] == UInt8(ascii: "\n") { return (next + 1, newline) }
            if next + 1 < count && bytes[next] == UInt8(ascii: "\r") && bytes[next + 1] == UInt8(ascii: "\n") {
                return (next + 2, newline)
            }
            index = next
        }
        return nil
    }

    private struct ParsedHead {
        var head: ProxyResponseHead
        var contentLength: Int?
        /// nil: no Transfer-Encoding; true: chunked last; false: some other coding last.
        var chunked: Bool?
    }

    /// Parses a complete head (status line and header lines) held in `raw`, the readable bytes of `bytes`.
    /// `fields`: an empty list to fill (its storage is reused).
    private static func parse(
        _ raw: UnsafeRawBufferPointer, bytes: ByteBuffer, contentLength headEnd: Int, fields: inout [ProxyResponseHead.Field]
    ) throws -> ParsedHead {
        var lineStart = 0
        fields.reserveCapacity(16)
        var status: HTTPResponseStatus?
        var minor = 1
        var contentLength: Int?
        var chunked: Bool?
        var connectionClose = false
        var connectionKeepAlive = false
        var connectionNamed: [Range<Int>] = []
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        while lineStart < headEnd {
            var lineEnd = headEnd
            if let found = memchr(raw.baseAddress! + lineStart, Int32(UInt8(ascii: "\n")), headEnd - lineStart) {
                lineEnd = raw.baseAddress!.distance(to: UnsafeRawPointer(found))
            }
            let next = lineEnd + 1
            if lineEnd > lineStart && raw[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<lineEnd])
            if status == nil {
                // HTTP/1.x SP 3DIGIT [SP reason]
                guard line.count >= 12, Self.startsWithHTTP1(line),
                    line[7] == UInt8(ascii: "0") || line[7] == UInt8(ascii: "1"), line[8] == space
                else { throw ParseError(description: "bad status line") }
                minor = Int(line[7] - UInt8(ascii: "0"))
                var code = 0
                for index in 9..<12 {
                    let digit = line[index]
                    guard digit >= UInt8(ascii: "0") && digit <= UInt8(ascii: "9") else { throw ParseError(description: "bad status code") }
                    code = code * 10 + Int(digit - UInt8(ascii: "0"))
                }
                guard code >= 100, line.count == 12 || line[12] == space else { throw ParseError(description: "bad status code") }
                status = HTTPResponseStatus(statusCode: code)
            } else {
                guard let first = line.first, first != space && first != tab else {
                    throw ParseError(description: "folded or empty header line")
                }
                var colon = 0
                while colon < line.count && line[colon] != UInt8(ascii: ":") {
                    guard isTokenByte(line[colon]) else { throw ParseError(description: "bad header line") }
                    colon += 1
                }
                guard colon > 0, colon < line.count else { throw ParseError(description: "bad header line") }
                let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
                var valueStart = colon + 1
                var valueEnd = line.count
                while valueStart < valueEnd && (line[valueStart] == space || line[valueStart] == tab) { valueStart += 1 }
                while valueEnd > valueStart && (line[valueEnd - 1] == space || line[valueEnd - 1] == tab) { valueEnd -= 1 }
                let value = UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd])
                // The line was cut at its first LF: a NUL or a lone CR is all a value could still hide.
                if HTTPBytes.containsNULOrCR(value) {
                    throw ParseError(description: "bad header value")
                }
                let kind = HeaderRewriter.classify(name)
                switch kind {
                case .contentLength:
                    guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                        throw ParseError(description: "bad Content-Length")
                    }
                    let length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                    if let contentLength, contentLength != length { throw ParseError(description: "conflicting Content-Length") }
                    contentLength = length
                case .framing:
                    let last = value.split(separator: UInt8(ascii: ",")).last.map { trim($0) }
                    chunked = last.map { $0.equalsCaseInsensitive("chunked") } ?? false
                case .hopByHop where name.count == 10 && name.equalsCaseInsensitive("connection"):
                    var tokenStart = valueStart
                    for position in valueStart...valueEnd where position == valueEnd || line[position] == UInt8(ascii: ",") {
                        var start = tokenStart, end = position
                        while start < end && (line[start] == space || line[start] == tab) { start += 1 }
                        while end > start && (line[end - 1] == space || line[end - 1] == tab) { end -= 1 }
                        tokenStart = position + 1
                        let token = UnsafeRawBufferPointer(rebasing: line[start..<end])
                        if token.equalsCaseInsensitive("close") {
                            connectionClose = true
                        } else if token.equalsCaseInsensitive("keep-alive") {
                            connectionKeepAlive = true
                        } else if !token.isEmpty && !token.equalsCaseInsensitive("upgrade") {
                            connectionNamed.append((lineStart + start)..<(lineStart + end))
                        }
                    }
                default:
                    break
                }
                fields.append(ProxyResponseHead.Field(
                    nameStart: Int32(lineStart), nameLength: Int32(colon), valueStart: Int32(lineStart + valueStart),
                    valueLength: Int32(valueEnd - valueStart), kind: kind))
                if fields.count > 256 { throw ParseError(description: "too many headers") }
            }
            lineStart = next
        }
        guard let status else { throw ParseError(description: "empty response head") }
        if chunked != nil { contentLength = nil }  // Transfer-Encoding wins (RFC 9112 §6.3)
        let keepAlive = !connectionClose && (minor == 1 || connectionKeepAlive) && !(chunked == false)
        let view = bytes.readableBytesView
        let head = ProxyResponseHead(
            status: status, bytes: bytes, fields: fields,
            connectionNamed: connectionNamed.map { view[(view.startIndex + $0.lowerBound)..<(view.startIndex + $0.upperBound)] },
            keepAlive: keepAlive)
        return ParsedHead(head: head, contentLength: contentLength, chunked: chunked)
    }

    /// `HTTP/1.` compared as bytes (the generic `starts(with:)` against a string's UTF-8 view walked it index by index).
    @inline(__always)
    static func startsWithHTTP1(_ line: UnsafeRawBufferPointer) -> Bool {
        let expected: StaticString = "HTTP/1."
        return expected.withUTF8Buffer { line.count >= $0.count && UnsafeRawBufferPointer(rebasing: line[..<$0.count]).elementsEqual($0) }
    }

    static func trim<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 { HTTPBytes.trim(bytes) }

    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool { HTTPBytes.isTokenByte(byte) }
}
