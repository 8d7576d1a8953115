import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Turns the frames of one HTTP/2 stream into request parts for ``RequestHandler``.
///
/// Inbound only: the request handler writes `HTTP2Frame.FramePayload`s itself, so a response is one HEADERS frame
/// and one DATA frame carrying END_STREAM, with header blocks reused per second for cached files. NIO's
/// `HTTP2FramePayloadToHTTP1ServerCodec` would add a handler hop per write, re-encode every header name and send an
/// extra empty DATA frame to end each stream.
final class HTTP2StreamAdapter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTPServerRequestPart

    private var sawHead = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let frame):
            if !sawHead {
                sawHead = true
                guard let head = Self.requestHead(frame.headers) else {
                    context.close(promise: nil)
                    return
                }
                context.fireChannelRead(wrapInboundOut(.head(head)))
            }
            if frame.endStream { context.fireChannelRead(wrapInboundOut(.end(nil))) }
        case .data(let frame):
            if case .byteBuffer(let buffer) = frame.data, buffer.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(.body(buffer)))
            }
            if frame.endStream { context.fireChannelRead(wrapInboundOut(.end(nil))) }
        default:
            break
        }
    }

    /// The HTTP/1-style head of a request header block; nil when a required pseudo-header is missing.
    static func requestHead(_ block: HPACKHeaders) -> HTTPRequestHead? {
        var method: String?
        var path: String?
        var headers = HTTPHeaders()
        headers.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": headers.add(name: "host", value: value)
                default: break
                }
            } else {
                headers.add(name: name, value: value)
            }
        }
        guard let method, let path else { return nil }
        return HTTPRequestHead(version: .http2, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
    }
}
