import Clocks
import HeaderRules
import HTTP2Session
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import Static

/// Writes one HTTP/2 stream's answer as submissions to its connection's session: the head as a field list (a cached
/// file's list reused while the second lasts), the body as DATA (which flow control may hold inside the session),
/// trailers, resets. Output leaves once per read burst (``HTTP2ConnectionHandler/outputSoon()``).
final class HTTP2ResponseWriter: ResponseWriter {
    let streamID: Int32
    /// Strong: `context` holds the same handler strongly already (a context keeps its handler), so a weak reference
    /// here never saw it go, and only gave it a side table, which sends every retain and release of the
    /// connection's handler through the runtime's slow path.
    private let connection: HTTP2ConnectionHandler
    private let context: ChannelHandlerContext
    private let loop: LoopContext
    /// The head being built: a cached file's list (shared, not copied) or one built for this answer.
    private var fields = FieldList()
    /// Fields added after a head was started (rare): kept apart so a shared list stays unchanged.
    private var addedFields = FieldList()
    /// The head said the answer has no body (HEAD, 204, 304): pieces that come anyway are dropped.
    private var bodiless = false
    /// Body bytes handed to the session whose writes have not completed. Flow control holds data inside the
    /// session, so channel writability says nothing about this stream: the upstream is paced by this count.
    private var unsentBytes = 0
    private var paused = false
    private var progress = SendProgress()
    weak var delegate: (any ResponseWriterDelegate)?

    /// Body bytes allowed in flight before the upstream is paused.
    private static let window = 256 << 10

    init(streamID: Int32, connection: HTTP2ConnectionHandler, context: ChannelHandlerContext, loop: LoopContext) {
        self.streamID = streamID
        self.connection = connection
        self.context = context
        self.loop = loop
    }

    var eventLoop: any EventLoop { context.eventLoop }
    var allocator: ByteBufferAllocator { context.channel.allocator }

    // MARK: - Heads

    func startHead(_ head: ComposedHead) {
        addedFields = FieldList()
        if let (file, variant) = head.cached {
            // The loop's list for this second, shared: the session copies it once, when the head is submitted.
            fields = loop.http2Headers(file: file, variant: variant, base: head.headers, rules: head.rules)
            return
        }
        // Sized for a usual head, so filling it does not reallocate.
        fields = FieldList(reservingCapacity: 512, fields: 16)
        fields.append(name: ":status", value: String(head.status.code))
        for (name, value) in head.headers { fields.append(name: name, value: value) }
        fields.append(name: "date", value: loop.dateHeader)
        if head.sendsServer { fields.append(name: "server", value: "vantage") }
    }

    func startHead(upstream head: ProxyResponseHead, dropping rules: HeaderRules?) -> HeaderRewriter.PassedHeaders {
        addedFields = FieldList()
        fields = FieldList(reservingCapacity: 512, fields: 16)
        fields.append(name: ":status", value: String(head.status.code))
        let passed = head.forEachHeader(dropping: rules) { name, value in
            fields.append(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        if !passed.hasDate { fields.append(name: "date", value: loop.dateHeader) }
        return passed
    }

    func addField(name: String, value: String) { addedFields.append(name: name, value: value) }

    /// Hands the head to the session, which fills its own (reused) list: the head's fields, those added, then the
    /// exchange's.
    private func submitHead(_ added: ExchangeFields, endStream: Bool) {
        defer { (fields, addedFields) = (FieldList(), FieldList()) }
        let session = connection.session
        session.respond(stream: streamID, endStream: endStream) { list in
            list.append(contentsOf: fields)
            if !addedFields.isEmpty { list.append(contentsOf: addedFields) }
            added.write(to: &list)
        }
    }

    func writeAnswer(_ added: ExchangeFields, persistence: Persistence, body: ByteBuffer?) {
        guard let body, body.readableBytes > 0 else {
            submitHead(added, endStream: true)
            return
        }
        submitHead(added, endStream: false)
        connection.session.send(body, on: streamID, endStream: true, promise: nil)
    }

    func writeHead(_ added: ExchangeFields, persistence: Persistence, body: StreamedBody) -> Bool {
        bodiless = body == .none
        submitHead(added, endStream: false)
        return false
    }

    // MARK: - Bodies

    func writeBody(_ buffer: ByteBuffer) -> Bool {
        guard !bodiless else { return true }
        let session = connection.session
        let size = buffer.readableBytes
        unsentBytes += size
        let promise = context.eventLoop.makePromise(of: Void.self)
        session.send(buffer, on: streamID, endStream: false, promise: promise)
        progress.started(now: ProgressClock.now())
        // One callback per frame does both: send progress, and the window that paces the upstream.
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let writer = bound.value
            writer.progress.completed(now: ProgressClock.now())
            writer.unsentBytes -= size
            if writer.paused && writer.unsentBytes <= Self.window / 2 {
                writer.paused = false
                writer.delegate?.responseWritable()
            }
        }
        if unsentBytes > Self.window {
            paused = true
            return false
        }
        return true
    }

    func endBody(trailers: HTTPHeaders?) {
        let session = connection.session
        if let trailers, !trailers.isEmpty, !bodiless {
            session.sendTrailers(on: streamID) { block in
                for (name, value) in trailers { block.append(name: name, value: value) }
            }
        } else {
            session.send(ByteBuffer(), on: streamID, endStream: true, promise: nil)
        }
    }

    func sendFile(_ file: FileBody, fileIO: NonBlockingFileIO, done: @escaping @Sendable (FileSendOutcome) -> Void) {
        connection.outputSoon()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let allocator = allocator
        let eventLoop = context.eventLoop
        let write: @Sendable (ByteBuffer) -> EventLoopFuture<Void> = { chunk in
            let writer = bound.value
            let connection = writer.connection
            guard connection.isOpen(writer.streamID) else {
                return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            let promise = eventLoop.makePromise(of: Void.self)
            connection.session.send(chunk, on: writer.streamID, endStream: false, promise: promise)
            connection.outputSoon()
            writer.progress.started(now: ProgressClock.now())
            promise.futureResult.whenComplete { _ in bound.value.progress.completed(now: ProgressClock.now()) }
            return promise.futureResult
        }
        // The first piece is small: a stream whose window never opens (a client that reads nothing) holds 16 KB
        // until send_timeout resets it, not 128 KB; the rest follows in large pieces once it moved.
        let first = min(16 << 10, file.length)
        var sent = fileIO.readChunked(
            fileHandle: file.handle, fromOffset: Int64(file.offset), byteCount: first, chunkSize: first, allocator: allocator,
            eventLoop: eventLoop, chunkHandler: write)
        if first < file.length {
            sent = sent.flatMap {
                fileIO.readChunked(
                    fileHandle: file.handle, fromOffset: Int64(file.offset + first), byteCount: file.length - first,
                    chunkSize: 128 << 10, allocator: allocator, eventLoop: eventLoop, chunkHandler: write)
            }
        }
        sent.whenComplete { result in
            try? file.handle.close()
            switch result {
            case .success:
                let writer = bound.value
                writer.connection.session.send(ByteBuffer(), on: writer.streamID, endStream: true, promise: nil)
                done(.sent)
            case .failure:
                done(.failed)
            }
        }
    }

    func sendStalled(now: UInt64, timeout: UInt64) -> Bool { progress.stalled(now: now, timeout: timeout) }

    // MARK: - The stream

    func flush() { connection.outputSoon() }

    var canStopRequestBody: Bool { true }

    func stopRequestBody() {
        // After the complete answer: the session sends the reset in a later write, so it cannot overtake it.
        connection.session.resetAfterResponse(stream: streamID)
        connection.outputSoon()
    }

    func closeAfterAnswer() { connection.outputSoon() }

    func abortResponse() {
        connection.session.reset(stream: streamID, code: .internalError)
        connection.outputSoon()
    }

    func closeExchange() {
        connection.session.reset(stream: streamID, code: .cancel)
        connection.outputSoon()
        connection.streamFinished(streamID)
    }

    func read() { connection.releaseCredit(streamID) }

    func exchangeFinished() { connection.streamFinished(streamID) }
}
