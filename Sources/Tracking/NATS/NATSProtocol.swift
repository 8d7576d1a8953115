import Foundation
import NIOCore

/// What a NATS server sends (the client protocol, https://docs.nats.io/reference/reference-protocols/nats-protocol),
/// parsed from raw bytes as a pure value: fed what arrived, it yields whole operations and keeps a partial one.
/// Bounded: a control line longer than 4 KB or a message larger than the negotiated maximum is an error.
struct NATSParser {
    enum Operation: Equatable {
        case info(String)
        /// `MSG` or `HMSG`: the subject, subscription id, reply subject, the header block (HMSG: with its
        /// `NATS/1.0 <status>` line) and the payload.
        case message(subject: String, sid: String, replyTo: String?, headers: ByteBuffer?, payload: ByteBuffer)
        case ping
        case pong
        case ok
        case error(String)
    }

    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
    }

    static let maxControlLine = 4096
    var maxPayload = 1 << 20

    /// A message head read, its body not yet whole.
    private var pendingHead: (subject: String, sid: String, replyTo: String?, headerBytes: Int, totalBytes: Int)?

    /// The next whole operation in `buffer`, or nil when more bytes are needed (the partial stays in `buffer`).
    mutating func next(_ buffer: inout ByteBuffer) throws(ProtocolError) -> Operation? {
        if let head = pendingHead {
            guard buffer.readableBytes >= head.totalBytes + 2 else { return nil }
            let headers = head.headerBytes > 0 ? buffer.readSlice(length: head.headerBytes) : nil
            let payload = buffer.readSlice(length: head.totalBytes - head.headerBytes)!
            guard buffer.readString(length: 2) == "\r\n" else { throw ProtocolError(description: "a message did not end with CRLF") }
            pendingHead = nil
            return .message(subject: head.subject, sid: head.sid, replyTo: head.replyTo, headers: headers, payload: payload)
        }
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maxControlLine { throw ProtocolError(description: "a control line longer than 4 KB") }
            return nil
        }
        let length = newline - view.startIndex
        guard length <= Self.maxControlLine else { throw ProtocolError(description: "a control line longer than 4 KB") }
        var line = buffer.readString(length: length + 1)!
        line.removeLast()
        if line.hasSuffix("\r") { line.removeLast() }
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let verb = parts.first?.uppercased() else { return try next(&buffer) }
        switch verb {
        case "PING": return .ping
        case "PONG": return .pong
        case "+OK": return .ok
        case "-ERR": return .error(String(line.dropFirst(4)).trimmingCharacters(in: CharacterSet(charactersIn: " '")))
        case "INFO": return .info(String(line.dropFirst(4)).trimmingCharacters(in: .whitespaces))
        case "MSG", "HMSG":
            let hasHeaders = verb == "HMSG"
            let fields = parts.dropFirst().map(String.init)
            // MSG subject sid [reply] size; HMSG subject sid [reply] headerSize totalSize.
            let counts = hasHeaders ? 2 : 1
            guard fields.count == 2 + counts || fields.count == 3 + counts,
                let total = Int(fields[fields.count - 1]), total >= 0, total <= maxPayload + 65_536
            else { throw ProtocolError(description: "a malformed \(verb) line") }
            let headerBytes = hasHeaders ? Int(fields[fields.count - 2]) ?? -1 : 0
            guard headerBytes >= 0, headerBytes <= total else { throw ProtocolError(description: "a malformed \(verb) line") }
            let replyTo = fields.count == 3 + counts ? fields[2] : nil
            pendingHead = (fields[0], fields[1], replyTo, headerBytes, total)
            return try next(&buffer)
        default:
            throw ProtocolError(description: "an unknown operation \(verb.prefix(16))")
        }
    }

    /// The status of an `HMSG` header block (`NATS/1.0 503` → 503), 0 without one.
    static func status(of headers: ByteBuffer?) -> Int {
        guard let headers else { return 0 }
        // Bytes, not Characters: "\r\n" is one Character, which a Character search for "\r" would not stop at.
        let line = headers.readableBytesView.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
        let parts = line.split(separator: UInt8(ascii: " "))
        return parts.count >= 2 ? Int(String(decoding: parts[1], as: UTF8.self)) ?? 0 : 0
    }
}

/// What the client writes: the few operations Vantage uses.
enum NATSWriter {
    static func connect(_ json: String, into buffer: inout ByteBuffer) {
        buffer.writeString("CONNECT \(json)\r\n")
    }

    static func ping(into buffer: inout ByteBuffer) { buffer.writeStaticString("PING\r\n") }
    static func pong(into buffer: inout ByteBuffer) { buffer.writeStaticString("PONG\r\n") }

    static func subscribe(_ subject: String, sid: String, into buffer: inout ByteBuffer) {
        buffer.writeString("SUB \(subject) \(sid)\r\n")
    }

    /// `HPUB subject [reply] headerBytes totalBytes`, the header block (`NATS/1.0` and the headers), the payload.
    static func publish(
        _ subject: String, replyTo: String?, headers: [(String, String)], payload: ByteBuffer, into buffer: inout ByteBuffer
    ) {
        var block = "NATS/1.0\r\n"
        for (name, value) in headers { block += "\(name): \(value)\r\n" }
        block += "\r\n"
        let headerBytes = block.utf8.count
        buffer.writeString("HPUB \(subject) ")
        if let replyTo { buffer.writeString(replyTo + " ") }
        buffer.writeString("\(headerBytes) \(headerBytes + payload.readableBytes)\r\n")
        buffer.writeString(block)
        var payload = payload
        buffer.writeBuffer(&payload)
        buffer.writeStaticString("\r\n")
    }
}
