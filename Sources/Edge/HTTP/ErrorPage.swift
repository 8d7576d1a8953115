import NIOCore
import NIOHTTP1

/// Short plain-text error answers: the status line repeated with a reason a person can act on.
enum ErrorPage {
    static func make(_ status: HTTPResponseStatus, reason: String) -> (HTTPHeaders, ByteBuffer) {
        let body = ByteBuffer(string: "\(status.code) \(status.reasonPhrase): \(reason)\n")
        let headers: HTTPHeaders = [
            "Content-Type": "text/plain; charset=utf-8", "Content-Length": String(body.readableBytes),
            "Cache-Control": "no-store",
        ]
        return (headers, body)
    }

    /// Writes a complete HTTP/1.1 error answer as raw bytes (for handlers in front of or instead of the request
    /// handler: a malformed or overlong head has no request to answer through) and closes the connection once it
    /// has left. Returns the number of bytes written.
    @discardableResult
    static func sendAndClose(_ status: HTTPResponseStatus, reason: String, context: ChannelHandlerContext) -> Int {
        let (headers, body) = make(status, reason: reason)
        var buffer = context.channel.allocator.buffer(capacity: 192 + body.readableBytes)
        HTTPHead.writeStatusLine(status, into: &buffer)
        HTTPHead.write(headers, into: &buffer)
        buffer.writeStaticString("Connection: close\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        let size = buffer.readableBytes
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in bound.value.close(promise: nil) }
        return size
    }
}
