import HeaderRules
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import Static

/// Where and how an exchange's answer goes: HTTP/1.1 bytes on the connection (``HTTP1ResponseWriter``), or HEADERS
/// and DATA on one HTTP/2 stream (``HTTP2ResponseWriter``).
///
/// ``RequestHandler`` decides once what an answer says (status, fields, body, whether the connection stays); the
/// writer frames it for its protocol: status line or `:status`, `Date` and `Server`, `Connection`, chunked coding or
/// DATA frames, a head held back to share a TLS record with the body, sendfile or file reads. A head is built in
/// steps (``startHead(_:)`` or ``startHead(upstream:dropping:)``, then ``addField(name:value:)``) and leaves with one
/// of the `write…` calls.
protocol ResponseWriter: AnyObject {
    var eventLoop: any EventLoop { get }
    var allocator: ByteBufferAllocator { get }
    /// Told when the client takes bytes again after ``writeBody(_:)`` said `false` (HTTP/2; an HTTP/1.1 handler
    /// hears it from its channel's writability).
    var delegate: (any ResponseWriterDelegate)? { get set }

    /// Starts the head of an answer composed here: its status and fields, then `Date` and `Server` (or a cached
    /// file's serialized head, reused while the second lasts).
    func startHead(_ head: ComposedHead)
    /// Starts the head of an upstream's answer: its fields that may go to the client (less those the route's rules
    /// drop), and `Date` if the upstream sent none.
    func startHead(upstream head: ProxyResponseHead, dropping rules: HeaderRules?) -> HeaderRewriter.PassedHeaders
    /// Adds a field to the head being built.
    func addField(name: String, value: String)

    /// Ends the head with the exchange's fields and sends it with the whole body (`nil`: the answer has none).
    func writeAnswer(_ added: ExchangeFields, persistence: Persistence, body: ByteBuffer?)
    /// Ends the head with the exchange's fields for a body that follows in pieces (a file, an upstream's body).
    /// Returns whether the connection must close after the answer (an HTTP/1.0 client learns the end of a body of
    /// unknown length from the close).
    func writeHead(_ added: ExchangeFields, persistence: Persistence, body: StreamedBody) -> Bool
    /// Sends a piece of the body; `false` when the client is not taking bytes as fast (the upstream should pause
    /// until ``ResponseWriterDelegate/responseWritable()``).
    func writeBody(_ buffer: ByteBuffer) -> Bool
    /// Ends the body, with the upstream's trailers where the protocol carries them.
    func endBody(trailers: HTTPHeaders?)
    /// Sends a file as the body and ends it: `done` is told when the answer is complete, or that its bytes are
    /// queued (plain HTTP/1.1's sendfile) with the future of their leaving, or that sending failed.
    func sendFile(_ file: FileBody, fileIO: NonBlockingFileIO, done: @escaping @Sendable (FileSendOutcome) -> Void)

    /// Sends what was written so far (HTTP/2: at the end of the current read burst).
    func flush()
    /// Whether the protocol can stop a request body the client is still sending without closing the connection
    /// (HTTP/2 can; on HTTP/1.1 the body is read to its end or the connection closes).
    var canStopRequestBody: Bool { get }
    /// The answer is complete but the request body is still coming and will not be read: tells the client to stop
    /// (HTTP/2: RST_STREAM with NO_ERROR after the answer).
    func stopRequestBody()
    /// The connection closes once everything written so far (a file still being sent, say) has left (HTTP/1.1). An
    /// HTTP/2 stream's answer just goes out: the connection serves other streams.
    func closeAfterAnswer()
    /// A response already under way cannot be completed: HTTP/1.1 closes once what was written has left, HTTP/2
    /// resets the stream.
    func abortResponse()
    /// Closes the connection (HTTP/1.1) or resets the stream (HTTP/2) at once.
    func closeExchange()
    /// Asks for more request bytes (HTTP/1.1 read interest, HTTP/2 stream credit).
    func read()
    /// The exchange is over in both directions; an HTTP/2 connection forgets the stream.
    func exchangeFinished()
    /// Whether body writes have been waiting longer than `timeout` (nanoseconds) without any completing.
    func sendStalled(now: UInt64, timeout: UInt64) -> Bool
}

/// Told by a writer when the client takes bytes again after ``ResponseWriter/writeBody(_:)`` said `false`.
protocol ResponseWriterDelegate: AnyObject {
    func responseWritable()
}

/// The head of an answer composed here (not an upstream's).
struct ComposedHead {
    var status: HTTPResponseStatus
    /// The answer's own fields (Content-Type, Content-Length, caching…), with the route's rules applied.
    var headers: HTTPHeaders
    /// A cached file's variant whose serialized head the loop keeps for the current second.
    var cached: (file: CachedFile, variant: Int)?
    /// The route's header rules, which a cached head already holds when they are constant.
    var rules: ResponseHeaderRules?

    /// `Server: vantage`, unless the rules remove it.
    var sendsServer: Bool { rules?.omitsServer != true }
}

/// Whether the connection carries another request after this answer (HTTP/1.1 writes it as `Connection`; HTTP/2
/// streams say nothing).
struct Persistence {
    var keepAlive: Bool
    /// The request was HTTP/1.0, whose connections close unless `Connection: keep-alive` says otherwise.
    var isHTTP10: Bool
}

/// What follows a head sent with ``ResponseWriter/writeHead(_:persistence:body:)``.
enum StreamedBody {
    /// Nothing (HEAD, 204, 304): the answer ends with ``ResponseWriter/endBody(trailers:)``.
    case none
    /// A body whose length the head states (Content-Length).
    case known
    /// A body of unknown length (HTTP/1.1 chunked coding).
    case unknown
}

/// How ``ResponseWriter/sendFile(_:fileIO:done:)`` ended.
enum FileSendOutcome {
    /// All of it was written.
    case sent
    /// All of it is queued to leave by sendfile(2); the future completes when it has.
    case queued(EventLoopFuture<Void>)
    /// Reading or writing failed (the client left): the exchange has to be closed.
    case failed
}

/// When response writes last made progress: a client that stops reading is noticed by writes no longer completing
/// (`send_timeout`).
struct SendProgress {
    private(set) var inFlight = 0
    private var lastProgress: UInt64 = 0

    mutating func started(now: UInt64) {
        if inFlight == 0 { lastProgress = now }
        inFlight += 1
    }

    mutating func completed(now: UInt64) {
        inFlight -= 1
        lastProgress = now
    }

    /// Writes are waiting and none completed for `timeout` nanoseconds.
    func stalled(now: UInt64, timeout: UInt64) -> Bool {
        inFlight > 0 && now &- lastProgress > timeout
    }

    /// When writes waiting since the last progress become stalled.
    func due(timeout: UInt64) -> UInt64 { lastProgress &+ timeout }
}
