import NIOCore
import NIOHTTP2

/// Where a ``RequestHandler`` sends its response: the channel of an HTTP/1.1 connection, or one stream of an HTTP/2
/// connection (whose frames go out on the connection's channel with the stream's ID).
protocol ExchangeTransport: AnyObject {
    var eventLoop: any EventLoop { get }
    var channel: any Channel { get }
    /// Writes HTTP/1.1 bytes.
    func write(_ data: NIOAny, promise: EventLoopPromise<Void>?)
    func writeWithFuture(_ data: NIOAny) -> EventLoopFuture<Void>
    func writeAndFlushWithFuture(_ data: NIOAny) -> EventLoopFuture<Void>
    /// Writes one HTTP/2 frame payload on the exchange's stream.
    func writeFrame(_ payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?)
    func writeAndFlushFrame(_ payload: HTTP2Frame.FramePayload) -> EventLoopFuture<Void>
    func flush()
    /// Flushes at once (HTTP/2 otherwise waits for the end of the read burst).
    func flushNow()
    /// Closes the connection (HTTP/1.1) or resets the stream (HTTP/2).
    func closeExchange()
    /// Asks for more request bytes (HTTP/1.1 read backpressure).
    func read()
    /// The exchange is over in both directions; an HTTP/2 connection forgets the stream.
    func exchangeFinished()
}

extension ChannelHandlerContext: ExchangeTransport {
    func writeFrame(_ payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?) {
        write(NIOAny(payload), promise: promise)
    }

    func writeAndFlushFrame(_ payload: HTTP2Frame.FramePayload) -> EventLoopFuture<Void> {
        writeAndFlushWithFuture(NIOAny(payload))
    }

    func writeAndFlushWithFuture(_ data: NIOAny) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writeAndFlush(data, promise: promise)
        return promise.futureResult
    }

    func writeWithFuture(_ data: NIOAny) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        write(data, promise: promise)
        return promise.futureResult
    }

    func closeExchange() { close(promise: nil) }

    func flushNow() { flush() }

    func exchangeFinished() {}
}
