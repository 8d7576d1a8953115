import HTTP1Parser
import NIOCore
import NIOHTTP1

/// HTTP/1.1 response head serialization straight into a buffer.
enum HTTPHead {
    /// Writes `HTTP/1.1 <code> <reason>\r\n`.
    @inline(__always)
    static func writeStatusLine(_ status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        switch status {
        case .ok: buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
        case .notModified: buffer.writeStaticString("HTTP/1.1 304 Not Modified\r\n")
        case .notFound: buffer.writeStaticString("HTTP/1.1 404 Not Found\r\n")
        case .partialContent: buffer.writeStaticString("HTTP/1.1 206 Partial Content\r\n")
        default:
            buffer.writeStaticString("HTTP/1.1 ")
            buffer.writeString(String(status.code))
            buffer.writeInteger(UInt8(ascii: " "))
            buffer.writeString(status.reasonPhrase)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Writes `name: value\r\n` for every header.
    @inline(__always)
    static func write(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in headers { buffer.writeHeaderLine(name: name, value: value) }
    }
}
