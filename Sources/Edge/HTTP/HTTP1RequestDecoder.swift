import HTTP1Parser
import NIOCore
import NIOHTTP1

/// Reads an HTTP/1.1 connection's bytes with ``RequestParser`` and hands the requests to ``RequestHandler`` as
/// request parts. It replaces NIO's `ByteToMessageHandler(HTTPRequestDecoder)`: one strict parser decides framing
/// (RFC 9112, see ``RequestParser``), and a request it refuses reaches the request handler as the parser's
/// ``RequestParser/Refusal`` (status and reason) through `errorCaught`, after every request that came before it.
///
/// Every read is first shown to the connection's ``ConnectionGuard`` (head size and timeouts, body rate), when it
/// has one: a refused read goes no further.
///
/// The parts go to the connection's ``RequestHandler`` by a direct call when the decoder is given it (as the
/// gateway does): a request is two or three parts, and each trip through the pipeline as `NIOAny` costs a dynamic
/// cast and a context hop. Without one (tests), they are fired down the pipeline.
///
/// Bytes are held only while a head is incomplete (bounded by the parser's head limit) or after an `Upgrade`
/// request, until the connection either becomes a tunnel (the bytes go on to it when this handler leaves the
/// pipeline) or closes. Nothing after a request that closes the connection, or after a refusal, is kept.
final class HTTP1RequestDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = HTTPServerRequestPart

    private enum Mode {
        case parsing
        /// An `Upgrade` request ended: what follows belongs to the protocol it may switch to, held unparsed.
        case heldForUpgrade
        /// A request that closes the connection ended, or the parser refused the bytes: nothing more is read.
        case finished
    }

    /// At most this many bytes are held after an `Upgrade` request before its answer (a client that sends more
    /// before the 101 arrives is cut off).
    static let maxHeldAfterUpgrade = 64 << 10

    private var parser: RequestParser
    private var mode = Mode.parsing
    /// Bytes received and not yet consumed by the parser.
    private var pending = ByteBuffer()
    /// The request being read asked for an upgrade / keeps the connection.
    private var requestUpgrades = false
    private var requestKeepsAlive = true
    private var removed = false
    /// Where request parts go (the handler right after this one); nil: down the pipeline.
    private let requestHandler: RequestHandler?
    /// The connection's timeouts and head bound; its timers run while this handler is in the pipeline.
    private let connectionGuard: ConnectionGuard?

    init(limits: RequestParser.Limits, connectionGuard: ConnectionGuard? = nil, requestHandler: RequestHandler? = nil) {
        parser = RequestParser(limits: limits)
        self.connectionGuard = connectionGuard
        self.requestHandler = requestHandler
    }

    /// The parser's bounds from the gateway's limits (`max_header_size`, `max_uri_length`).
    convenience init(limits: Limits, connectionGuard: ConnectionGuard? = nil, requestHandler: RequestHandler? = nil) {
        var parserLimits = RequestParser.Limits()
        parserLimits.maxHeadBytes = limits.maxHeaderSize
        parserLimits.maxTargetBytes = limits.maxURILength
        self.init(limits: parserLimits, connectionGuard: connectionGuard, requestHandler: requestHandler)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connectionGuard?.attach(to: context)
    }

    func channelActive(context: ChannelHandlerContext) {
        connectionGuard?.connectionActive()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionGuard?.connectionInactive()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if let connectionGuard, !connectionGuard.bytesReceived(incoming) { return }
        switch mode {
        case .finished:
            return
        case .heldForUpgrade:
            guard pending.readableBytes + incoming.readableBytes <= Self.maxHeldAfterUpgrade else {
                mode = .finished
                pending = ByteBuffer()
                context.close(promise: nil)
                return
            }
            pending.writeBuffer(&incoming)
            return
        case .parsing:
            break
        }
        // The common case: everything before was consumed, so the read's buffer is parsed as it is (no copy).
        if pending.readableBytes == 0 {
            pending = incoming
        } else {
            pending.writeBuffer(&incoming)
        }
        decode(context: context)
    }

    private func decode(context: ChannelHandlerContext) {
        while !removed, mode == .parsing {
            let event: RequestParser.Event?
            do {
                event = try parser.next(&pending)
            } catch {
                mode = .finished
                pending = ByteBuffer()
                context.fireErrorCaught(error)
                return
            }
            guard let event else { break }
            switch event {
            case .head(let head):
                requestUpgrades = head.hasUpgrade
                requestKeepsAlive = head.keepAlive
                if let requestHandler {
                    let (requestHead, summary) = head.makeSummarizedHead()
                    requestHandler.receiveHTTP1(.head(requestHead, summary))
                } else {
                    context.fireChannelRead(wrapInboundOut(.head(head.makeHTTPRequestHead())))
                }
            case .body(let piece):
                deliver(.body(piece), context: context)
            case .end(let trailers):
                if requestUpgrades {
                    mode = .heldForUpgrade
                } else if !requestKeepsAlive {
                    mode = .finished
                    pending = ByteBuffer()
                }
                deliver(.end(trailers.isEmpty ? nil : HTTPHeaders(trailers)), context: context)
            }
        }
        if pending.readableBytes == 0 {
            // Let go of the read's storage (body slices handed on may still share it).
            pending = ByteBuffer()
        }
    }

    /// A body piece or the end (a head goes with its summary, above).
    @inline(__always)
    private func deliver(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if let requestHandler {
            requestHandler.receiveHTTP1(RequestPart(part))
        } else {
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        connectionGuard?.detach()
        // The connection became a tunnel: bytes that came after the upgrade request are the tunnel's.
        if mode == .heldForUpgrade, pending.readableBytes > 0 {
            let held = pending
            pending = ByteBuffer()
            context.fireChannelRead(NIOAny(held))
        }
    }
}
