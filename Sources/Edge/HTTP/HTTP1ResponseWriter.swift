import Clocks
import HeaderRules
import NIOCore
import NIOHTTP1
import NIOPosix
import Proxy
import Static

/// Writes answers on an HTTP/1.1 connection as bytes, skipping NIO's response encoder: the status line and fields
/// are serialized here (a cached file's head once per second per loop), a body of unknown length goes chunked, and
/// under TLS a head waits for the first body piece so both leave in one record. One writer serves every exchange of
/// its connection, one after the other.
final class HTTP1ResponseWriter: ResponseWriter {
    private let context: ChannelHandlerContext
    private let loop: LoopContext
    private let isTLS: Bool
    private let snapshots: SnapshotView

    /// A cached file's serialized head, shared: fields added after it go to `lines`.
    private var sharedHead: ByteBuffer?
    /// The head being built (after `sharedHead` when there is one).
    private var lines: HTTP1HeaderLines
    private var framing = Framing.none
    /// A streamed answer's head waiting for its first body piece (or a flush).
    private var heldHead: ByteBuffer?
    private var progress = SendProgress()
    /// Closes the connection when file writes make no progress for `send_timeout` (a client that stopped reading a
    /// file must not hold the connection and the file forever).
    private var watchdog: Scheduled<Void>?
    /// None: the handler hears of writability from its channel. Not even stored: a weak reference gives the
    /// handler a side table for life, and every retain and release of it then takes the runtime's slow path.
    var delegate: (any ResponseWriterDelegate)? {
        get { nil }
        set {}
    }

    private enum Framing {
        /// No body, or nothing written yet.
        case none
        /// As given: Content-Length holds, or the body ends when the connection closes (HTTP/1.0).
        case raw
        case chunked
    }

    init(context: ChannelHandlerContext, loop: LoopContext, connection: ConnectionInfo) {
        self.context = context
        self.loop = loop
        isTLS = connection.isTLS
        snapshots = connection.snapshots
        lines = HTTP1HeaderLines(buffer: ByteBuffer())
    }

    var eventLoop: any EventLoop { context.eventLoop }
    var allocator: ByteBufferAllocator { context.channel.allocator }

    /// The connection is going away: no more watchdog.
    func stop() {
        watchdog?.cancel()
        watchdog = nil
    }

    // MARK: - Heads

    func startHead(_ head: ComposedHead) {
        framing = .none
        heldHead = nil
        if let (file, variant) = head.cached {
            sharedHead = loop.serializedHead(file: file, variant: variant, base: head.headers, rules: head.rules)
            resetLines(capacity: 64)
            return
        }
        sharedHead = nil
        resetLines(capacity: 256)
        HTTPHead.writeStatusLine(head.status, into: &lines.buffer)
        HTTPHead.write(head.headers, into: &lines.buffer)
        lines.add("Date", loop.dateHeader)
        if head.sendsServer { lines.add("Server", "vantage") }
    }

    func startHead(upstream head: ProxyResponseHead, dropping rules: HeaderRules?) -> HeaderRewriter.PassedHeaders {
        framing = .none
        heldHead = nil
        sharedHead = nil
        resetLines(capacity: 384)
        HTTPHead.writeStatusLine(head.status, into: &lines.buffer)
        let passed = head.writeHTTP1Headers(dropping: rules, into: &lines.buffer)
        if !passed.hasDate { lines.add("Date", loop.dateHeader) }
        return passed
    }

    func addField(name: String, value: String) { lines.add(name: name, value: value) }

    /// Empties `lines` for the next head. The previous head's storage is used again once the socket has written it
    /// (this writer then holds the only reference): no allocation per answer. While a write still holds it, or
    /// after an unusually large head, a new buffer is taken instead (so an idle connection keeps at most 4 KB).
    private func resetLines(capacity: Int) {
        if lines.buffer.capacity > 4096 {
            lines.buffer = allocator.buffer(capacity: capacity)
        } else {
            lines.buffer.clear(minimumCapacity: capacity)
        }
    }

    /// The exchange's fields, `Connection` and the blank line.
    private func endHead(_ added: ExchangeFields, persistence: Persistence, closes: Bool = false) {
        added.write(to: &lines)
        if !persistence.keepAlive || closes {
            lines.buffer.writeStaticString("Connection: close\r\n")
        } else if persistence.isHTTP10 {
            lines.buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        lines.buffer.writeStaticString("\r\n")
    }

    /// The largest body (or chunk) sent in one buffer with what precedes it: every write is a trip through the channel pipeline
    /// (about as much CPU as copying 4 KB), and under TLS its own record, so small answers are copied together.
    /// Larger bodies go as they are (a file's cached bytes, shared).
    static func combinesBody(ofSize size: Int, isTLS: Bool) -> Bool { size <= (isTLS ? 16 << 10 : 4 << 10) }

    func writeAnswer(_ added: ExchangeFields, persistence: Persistence, body: ByteBuffer?) {
        endHead(added, persistence: persistence)
        if let body, Self.combinesBody(ofSize: body.readableBytes, isTLS: isTLS) {
            writeGathered(capacity: (sharedHead?.readableBytes ?? 0) + lines.buffer.readableBytes + body.readableBytes) {
                if let sharedHead { $0.writeImmutableBuffer(sharedHead) }
                $0.writeImmutableBuffer(lines.buffer)
                $0.writeImmutableBuffer(body)
            }
            sharedHead = nil
            return
        }
        writeHeadBytes()
        if let body, body.readableBytes > 0 { context.write(NIOAny(body), promise: nil) }
    }

    /// One write of an answer's pieces, copied into one of the loop's buffers (no allocation once the socket has
    /// written what the buffer held before).
    private func writeGathered(capacity: Int, _ fill: (inout ByteBuffer) -> Void) {
        let answer = loop.answers.gather(minimumCapacity: capacity, fill)
        context.write(NIOAny(answer), promise: nil)
    }

    private func writeHeadBytes() {
        if let sharedHead { context.write(NIOAny(sharedHead), promise: nil) }
        context.write(NIOAny(lines.buffer), promise: nil)
        sharedHead = nil
    }

    func writeHead(_ added: ExchangeFields, persistence: Persistence, body: StreamedBody) -> Bool {
        var closes = false
        switch body {
        case .none:
            framing = .none
        case .known:
            framing = .raw
        case .unknown where persistence.isHTTP10:
            // An HTTP/1.0 client learns the end of the body from the connection closing.
            framing = .raw
            closes = true
        case .unknown:
            lines.buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
            framing = .chunked
        }
        endHead(added, persistence: persistence, closes: closes)
        // Held until the first piece of the body, so a small answer (a proxied one) goes out in one write; a flush
        // before any body arrives (an event stream's head) sends it alone.
        if sharedHead == nil {
            heldHead = lines.buffer
        } else {
            writeHeadBytes()
        }
        return closes
    }

    // MARK: - Bodies

    func writeBody(_ buffer: ByteBuffer) -> Bool {
        let size = buffer.readableBytes
        switch framing {
        case .none:
            return true
        case .raw:
            if let held = heldHead, Self.combinesBody(ofSize: size, isTLS: isTLS) {
                heldHead = nil
                writeGathered(capacity: held.readableBytes + size) {
                    $0.writeImmutableBuffer(held)
                    $0.writeImmutableBuffer(buffer)
                }
            } else {
                writeHeldHead()
                context.write(NIOAny(buffer), promise: nil)
            }
        case .chunked:
            let held = heldHead
            heldHead = nil
            if Self.combinesBody(ofSize: size, isTLS: isTLS) {
                writeGathered(capacity: (held?.readableBytes ?? 0) + size + 20) {
                    if let held { $0.writeImmutableBuffer(held) }
                    $0.writeString(String(size, radix: 16))
                    $0.writeStaticString("\r\n")
                    $0.writeImmutableBuffer(buffer)
                    $0.writeStaticString("\r\n")
                }
            } else {
                var prefix = held ?? allocator.buffer(capacity: 12)
                prefix.writeString(String(size, radix: 16))
                prefix.writeStaticString("\r\n")
                context.write(NIOAny(prefix), promise: nil)
                context.write(NIOAny(buffer), promise: nil)
                context.write(NIOAny(ByteBuffer(staticString: "\r\n")), promise: nil)
            }
        }
        return context.channel.isWritable
    }

    private func writeHeldHead() {
        guard let held = heldHead else { return }
        heldHead = nil
        context.write(NIOAny(held), promise: nil)
    }

    func endBody(trailers: HTTPHeaders?) {
        guard framing == .chunked else {
            writeHeldHead()
            return
        }
        var last = heldHead ?? allocator.buffer(capacity: 64)
        heldHead = nil
        last.writeStaticString("0\r\n")
        if let trailers { HTTPHead.write(trailers, into: &last) }
        last.writeStaticString("\r\n")
        context.write(NIOAny(last), promise: nil)
    }

    func sendFile(_ file: FileBody, fileIO: NonBlockingFileIO, done: @escaping @Sendable (FileSendOutcome) -> Void) {
        writeHeldHead()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        if !isTLS {
            // sendfile(2): the bytes never enter user space. In pieces of 256 KB, each with its own completion: a
            // client that stops reading is noticed (send_timeout) by the pieces no longer leaving.
            var offset = file.offset
            let end = file.offset + file.length
            var last: EventLoopFuture<Void>?
            while offset < end {
                let pieceEnd = min(end, offset + (256 << 10))
                let promise = context.eventLoop.makePromise(of: Void.self)
                context.write(
                    NIOAny(IOData.fileRegion(FileRegion(fileHandle: file.handle, readerIndex: offset, endIndex: pieceEnd))),
                    promise: promise)
                track(promise.futureResult)
                last = promise.futureResult
                offset = pieceEnd
            }
            let sent = last ?? context.eventLoop.makeSucceededVoidFuture()
            sent.whenComplete { _ in try? file.handle.close() }
            done(.queued(sent))
            return
        }
        context.flush()
        // Each piece is written, and its write completed, before the next is read: a slow client holds one piece.
        let sent = fileIO.readChunked(
            fileHandle: file.handle, fromOffset: Int64(file.offset), byteCount: file.length, chunkSize: 128 << 10,
            allocator: allocator, eventLoop: context.eventLoop
        ) { chunk in
            let writer = bound.value
            guard writer.context.channel.isActive else {
                return writer.context.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) as EventLoopFuture<Void>
            }
            let promise = writer.context.eventLoop.makePromise(of: Void.self)
            writer.context.writeAndFlush(NIOAny(chunk), promise: promise)
            writer.track(promise.futureResult)
            return promise.futureResult
        }
        sent.whenComplete { result in
            try? file.handle.close()
            switch result {
            case .success: done(.sent)
            case .failure: done(.failed)
            }
        }
    }

    // MARK: - Send progress

    private func track(_ written: EventLoopFuture<Void>) {
        progress.started(now: ProgressClock.now())
        if watchdog == nil { scheduleWatchdog() }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.whenComplete { _ in bound.value.progress.completed(now: ProgressClock.now()) }
    }

    func sendStalled(now: UInt64, timeout: UInt64) -> Bool { progress.stalled(now: now, timeout: timeout) }

    private func scheduleWatchdog() {
        let timeout = UInt64(max(TimeAmount(snapshots.current.limits.sendTimeout).nanoseconds, 1))
        let due = progress.due(timeout: timeout)
        let now = ProgressClock.now()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        watchdog = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(due > now ? due - now : 0) + 1_000_000)) {
            let writer = bound.value
            writer.watchdog = nil
            guard writer.progress.inFlight > 0, writer.context.channel.isActive else { return }
            if writer.sendStalled(now: ProgressClock.now(), timeout: timeout) {
                GatewayMetrics.shared.sendTimeouts.increment()
                writer.closeExchange()
            } else {
                writer.scheduleWatchdog()
            }
        }
    }

    // MARK: - The connection

    /// The answer so far leaves with the others of this tick (``FlushCoalescer``).
    func flush() {
        writeHeldHead()
        loop.flushCoalescer.flushAtEndOfTick(context.channel)
    }

    var canStopRequestBody: Bool { false }

    func stopRequestBody() {}

    func abortResponse() { closeAfterAnswer() }

    func closeAfterAnswer() {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: promise)
        promise.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
    }

    func closeExchange() {
        // Whatever an earlier answer left waiting for the end of the tick goes first (a close drops unflushed writes).
        context.flush()
        context.close(promise: nil)
    }

    func read() { context.read() }

    func exchangeFinished() {}

    /// `HTTP/1.1 100 Continue`: the client may send the body it announced.
    func writeContinue() {
        var interim = allocator.buffer(capacity: 32)
        interim.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        context.writeAndFlush(NIOAny(interim), promise: nil)
    }
}
