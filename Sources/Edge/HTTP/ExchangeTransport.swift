import HTTP2Session
import NIOCore

/// What an exchange writes on its HTTP/2 stream.
enum HTTP2Write {
    /// The response head (`:status` first); `endStream` when no body follows.
    case head(FieldList, endStream: Bool)
    case data(ByteBuffer, endStream: Bool)
    /// Trailer fields; they end the stream.
    case trailers(FieldList)
    case reset(StreamResetCode)
}

/// Where a ``RequestHandler`` sends its response: the channel of an HTTP/1.1 connection, or one stream of an HTTP/2
/// connection (whose frames go out on the connection's channel with the stream's ID).
protocol ExchangeTransport: AnyObject {
    var eventLoop: any EventLoop { get }
    var channel: any Channel { get }
    /// Writes HTTP/1.1 bytes.
    func write(_ data: NIOAny, promise: EventLoopPromise<Void>?)
    func writeWithFuture(_ data: NIOAny) -> EventLoopFuture<Void>
    func writeAndFlushWithFuture(_ data: NIOAny) -> EventLoopFuture<Void>
    /// Writes on the exchange's HTTP/2 stream; the promise completes once the bytes are taken (flow control
    /// permitting).
    func writeHTTP2(_ write: HTTP2Write, promise: EventLoopPromise<Void>?)
    func writeAndFlushHTTP2(_ write: HTTP2Write) -> EventLoopFuture<Void>
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
    /// An HTTP/1.1 channel has no streams: nothing to write.
    func writeHTTP2(_ write: HTTP2Write, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func writeAndFlushHTTP2(_ write: HTTP2Write) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
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
