import CNGHTTP2
import NIOCore

/// The server side of one HTTP/2 connection, over libnghttp2's session: bytes in, events out, responses submitted,
/// bytes to send pulled.
///
/// nghttp2 owns the protocol (framing, HPACK, stream states, flow control, SETTINGS, PING, GOAWAY, and the request
/// rules of RFC 9113 §8: pseudo-headers, connection-specific fields, content-length against DATA) and answers
/// violations itself with RST_STREAM or GOAWAY. This type turns its callbacks into ``Event`` values that
/// ``receive(_:)`` returns after the whole input was read, so the caller acts on them outside nghttp2's callbacks,
/// and keeps each stream's outgoing body until flow control lets nghttp2 take it.
///
/// Confined to one thread (the connection's event loop); not `Sendable`.
public final class HTTP2ServerSession {
    /// What the connection announces in its SETTINGS and how large its receive windows are.
    public struct Settings: Sendable {
        public var maxConcurrentStreams: Int
        public var maxHeaderListSize: Int
        public var initialWindowSize: Int
        /// The connection-level receive window (RFC 9113 §6.9.2 fixes its start at 64 KB; a WINDOW_UPDATE raises it).
        public var connectionWindowSize: Int

        public init(maxConcurrentStreams: Int, maxHeaderListSize: Int, initialWindowSize: Int, connectionWindowSize: Int) {
            self.maxConcurrentStreams = maxConcurrentStreams
            self.maxHeaderListSize = maxHeaderListSize
            self.initialWindowSize = initialWindowSize
            self.connectionWindowSize = connectionWindowSize
        }
    }

    /// One header field as received (names are lower case: nghttp2 refuses others).
    public struct Field: Sendable {
        public var name: String
        public var value: String
    }

    /// What the peer did, in the order it happened.
    public enum Event {
        /// A request's header block (with its pseudo-header fields); `endStream` when no body follows.
        case request(stream: Int32, fields: [Field], endStream: Bool)
        /// A request whose header list exceeded the announced SETTINGS_MAX_HEADER_LIST_SIZE: its fields were
        /// dropped; it is to be answered 431.
        case headerListTooLarge(stream: Int32, endStream: Bool)
        /// Trailer fields, which end the request.
        case trailers(stream: Int32, fields: [Field])
        /// A piece of a request body (its flow-control credit is returned with ``consume(_:on:)``).
        case body(stream: Int32, ByteBuffer)
        /// The request body ended (a DATA frame with END_STREAM).
        case end(stream: Int32)
        /// The stream is gone: finished both ways, reset by either side, or cut by a connection error.
        case closed(stream: Int32, errorCode: UInt32)
    }

    /// Errors that end the connection.
    public enum Failure: Error, Equatable {
        /// nghttp2 found the peer's bytes unusable (a bad preface, a connection error, a flood); the GOAWAY it
        /// queued is in the next ``output(allocator:)``.
        case protocolError(String)
    }

    private var session: OpaquePointer?
    /// Response fields and their nghttp2 pairs, reused from response to response.
    private var scratch = FieldList()
    private var pairs: [nghttp2_nv] = []
    private var events: [Event] = []
    /// The header block being received. Only one can be in progress at a time: a block's CONTINUATION frames
    /// follow its HEADERS frame with nothing in between (RFC 9113 §6.10).
    private var incoming: (stream: Int32, fields: [Field], size: Int, isRequest: Bool, oversized: Bool)?
    private let maxHeaderListSize: Int
    /// The highest request stream the peer opened.
    private var highestRequestStream: Int32 = 0
    private var outgoing: [Int32: Outgoing] = [:]
    /// Streams to reset (with this code) once their response's last frame has gone out.
    private var resetsAfterResponse: [Int32: UInt32] = [:]
    /// Those whose last frame went out: reset at the next ``output(allocator:)``, so the RST_STREAM travels in a
    /// later write than the response (curl 7.88 drops a response whose reset arrives in the same read).
    private var resetsDue: [(stream: Int32, errorCode: UInt32)] = []
    /// Write promises whose bytes nghttp2 has taken; they complete with the next write of ``output(allocator:)``.
    private var taken: [EventLoopPromise<Void>] = []
    /// Write promises of streams that closed before their bytes went out. They fail once nghttp2 has returned:
    /// a failure's callbacks may submit frames, and nghttp2 must not be entered from its own callbacks.
    private var abandoned: [EventLoopPromise<Void>] = []
    /// The buffer being read by `nghttp2_session_mem_recv`, so DATA payloads are slices of it rather than copies.
    private var input: ByteBuffer?
    private var inputBase: UnsafeRawPointer?

    /// One stream's response body on its way out. A class: the connection's table hands out the reference, so
    /// queueing and taking bytes copy nothing (a struct changed in place through the dictionary costs an
    /// allocation per access here).
    private final class Outgoing {
        typealias Chunk = (buffer: ByteBuffer, promise: EventLoopPromise<Void>?)
        /// The chunk being sent; most responses have one and never need `rest`.
        var current: Chunk?
        var rest: CircularBuffer<Chunk>?
        var ended = false
        var trailers: FieldList?
        /// nghttp2 was told to wait (`NGHTTP2_ERR_DEFERRED`); new data resumes it.
        var deferred = false

        var isEmpty: Bool { current == nil }

        /// Queues body bytes (and the end); returns whether nghttp2 must be told to resume the stream.
        func queue(_ buffer: ByteBuffer?, promise: EventLoopPromise<Void>?, ends: Bool, trailers: FieldList? = nil) -> Bool {
            if let buffer, buffer.readableBytes > 0 || promise != nil {
                if current == nil {
                    current = (buffer, promise)
                } else {
                    if rest == nil { rest = CircularBuffer(initialCapacity: 4) }
                    rest!.append((buffer, promise))
                }
            }
            if ends { ended = true }
            if let trailers { self.trailers = trailers }
            defer { deferred = false }
            return deferred
        }

        /// Copies up to `length` queued bytes to `target`; the promises of chunks taken whole go to `taken`.
        func take(into target: UnsafeMutablePointer<UInt8>, length: Int, taken: inout [EventLoopPromise<Void>]) -> Int {
            var written = 0
            while written < length, current != nil {
                let count = min(length - written, current!.buffer.readableBytes)
                current!.buffer.withUnsafeReadableBytes { bytes in
                    (target + written).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count)
                }
                current!.buffer.moveReaderIndex(forwardBy: count)
                written += count
                if current!.buffer.readableBytes == 0 {
                    if let promise = current!.promise { taken.append(promise) }
                    current = rest?.popFirst()
                }
            }
            return written
        }

        /// Every promise still waiting (the stream is gone).
        var promises: [EventLoopPromise<Void>] {
            ([current].compactMap { $0?.promise }) + (rest?.compactMap(\.promise) ?? [])
        }
    }

    public init(settings: Settings) {
        maxHeaderListSize = settings.maxHeaderListSize
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, onBeginFrame)
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSent)

        var options: OpaquePointer?
        nghttp2_option_new(&options)
        defer { nghttp2_option_del(options) }
        // Stream credit is returned when the request's handler takes the bytes (a proxied upload to a slower
        // upstream holds it back); see `consume(_:on:)`.
        nghttp2_option_set_no_auto_window_update(options, 1)

        var created: OpaquePointer?
        let status = nghttp2_session_server_new2(&created, callbacks, Unmanaged.passUnretained(self).toOpaque(), options)
        precondition(status == 0 && created != nil, "nghttp2 could not create a session: \(String(cString: nghttp2_strerror(status)))")
        session = created

        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(settings.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(settings.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(settings.initialWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(settings.connectionWindowSize))
    }

    deinit {
        nghttp2_session_del(session)
        for stream in outgoing.values { for promise in stream.promises { promise.fail(ChannelError.ioOnClosedChannel) } }
    }

    // MARK: - Input

    /// Reads the peer's bytes and returns what happened. On a `Failure`, nghttp2 has queued its GOAWAY: send
    /// ``output(allocator:)`` and close.
    public func receive(_ buffer: ByteBuffer) throws(Failure) -> [Event] {
        input = buffer
        let result = buffer.withUnsafeReadableBytes { bytes -> Int in
            inputBase = bytes.baseAddress.map { UnsafeRawPointer($0) }
            guard let base = bytes.baseAddress else { return 0 }
            return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        input = nil
        inputBase = nil
        failAbandonedWrites()
        if result < 0 {
            throw .protocolError(String(cString: nghttp2_strerror(Int32(result))))
        }
        return takeEvents()
    }

    /// Events that happened outside ``receive(_:)``: streams that closed while ``output(allocator:)`` sent their
    /// last frame.
    public func takeEvents() -> [Event] {
        if events.isEmpty { return [] }
        let taken = events
        events = []
        return taken
    }

    // MARK: - Output

    /// Everything nghttp2 has to send now (frames, and response bodies as far as flow control allows), with the
    /// write promises those bytes complete; nil when there is nothing.
    public func output(allocator: ByteBufferAllocator) -> (bytes: ByteBuffer, promises: [EventLoopPromise<Void>])? {
        if !resetsDue.isEmpty {
            // Only streams the client is still sending on: one that ended its request meanwhile is closed.
            for due in resetsDue where nghttp2_session_find_stream(session, due.stream) != nil
                && nghttp2_session_get_stream_remote_close(session, due.stream) == 0 {
                reset(stream: due.stream, errorCode: due.errorCode)
            }
            resetsDue.removeAll()
        }
        var bytes: ByteBuffer?
        while true {
            var pointer: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &pointer)
            guard count > 0, let pointer else { break }
            if bytes == nil { bytes = allocator.buffer(capacity: max(count, 1024)) }
            bytes!.writeBytes(UnsafeRawBufferPointer(start: pointer, count: count))
        }
        failAbandonedWrites()
        guard let bytes else {
            // Promises whose bytes went out earlier without a frame of their own (an empty final piece).
            if taken.isEmpty { return nil }
            defer { taken.removeAll() }
            return (ByteBuffer(), taken)
        }
        defer { taken.removeAll() }
        return (bytes, taken)
    }

    private func failAbandonedWrites() {
        guard !abandoned.isEmpty else { return }
        let promises = abandoned
        abandoned = []
        for promise in promises { promise.fail(ChannelError.ioOnClosedChannel) }
    }

    /// The connection is gone: every queued response body is dropped and its write promise fails (their callbacks
    /// release what the writes held: files, upstream connections).
    public func abandonAllStreams() {
        for state in outgoing.values { abandoned.append(contentsOf: state.promises) }
        outgoing.removeAll()
        resetsAfterResponse.removeAll()
        resetsDue.removeAll()
        failAbandonedWrites()
    }

    /// False once the session has nothing left to read or write (after GOAWAY with no streams left, or a fatal
    /// error): the connection can close.
    public var isAlive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    /// The highest stream the peer opened that this side processed (what a GOAWAY names).
    public var lastProcessedStream: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    // MARK: - Responses

    /// Submits a response header block; with `endStream` there is no body. Later data goes through ``send(_:on:endStream:promise:)``.
    public func respond(stream: Int32, endStream: Bool, fields fill: (inout FieldList) -> Void) {
        scratch.removeAll()
        fill(&scratch)
        withPairs(scratch) { nva, count in
            if endStream {
                _ = nghttp2_submit_response(session, stream, nva, count, nil)
            } else {
                outgoing[stream] = Outgoing()
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readBodyCallback)
                // A stream that is already gone (reset by the client) takes no response: nothing to queue for it.
                if nghttp2_submit_response(session, stream, nva, count, &provider) != 0 { outgoing.removeValue(forKey: stream) }
            }
        }
    }

    /// Queues response body bytes; `promise` completes once nghttp2 has taken them (flow control permitting).
    public func send(_ buffer: ByteBuffer, on stream: Int32, endStream: Bool, promise: EventLoopPromise<Void>?) {
        guard let resume = outgoing[stream]?.queue(buffer, promise: promise, ends: endStream) else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if resume { nghttp2_session_resume_data(session, stream) }
    }

    /// Trailer fields after the body; they end the stream.
    public func sendTrailers(on stream: Int32, fields fill: (inout FieldList) -> Void) {
        guard outgoing[stream] != nil else { return }
        var trailers = FieldList()
        fill(&trailers)
        if outgoing[stream]?.queue(nil, promise: nil, ends: true, trailers: trailers) == true {
            nghttp2_session_resume_data(session, stream)
        }
    }

    /// Resets a stream (RST_STREAM with `code`).
    public func reset(stream: Int32, code: StreamResetCode) {
        reset(stream: stream, errorCode: code.rawValue)
    }

    private func reset(stream: Int32, errorCode: UInt32) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, errorCode)
    }

    /// Resets a stream once its response is out: a complete answer to a request whose body is still coming
    /// (RFC 9113 §8.1: RST_STREAM with NO_ERROR asks the client to stop sending). An immediate reset would drop the
    /// response, as nghttp2 sends RST_STREAM ahead of queued DATA.
    public func resetAfterResponse(stream: Int32, code: StreamResetCode = .noError) {
        let errorCode = code.rawValue
        guard nghttp2_session_find_stream(session, stream) != nil,
              nghttp2_session_get_stream_remote_close(session, stream) == 0
        else { return }
        if nghttp2_session_get_stream_local_close(session, stream) == 1 {
            reset(stream: stream, errorCode: errorCode)
        } else {
            resetsAfterResponse[stream] = errorCode
        }
    }

    /// Returns flow-control credit for request body bytes the stream's handler took (the connection's credit is
    /// returned on arrival).
    public func consume(_ count: Int, on stream: Int32) {
        nghttp2_session_consume_stream(session, stream, count)
    }

    /// Tells the peer that no new streams will be accepted soon (the first GOAWAY of a graceful shutdown).
    public func announceShutdown() {
        nghttp2_submit_shutdown_notice(session)
    }

    /// The final GOAWAY: streams above the last processed one are refused; the session ends when the rest are done.
    public func goAway() {
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastProcessedStream, 0, nil, 0)
    }

    // MARK: - Callbacks (called by nghttp2 inside `receive` and `output`)

    /// RFC 9113 §5.1.1: a new stream's identifier must exceed every one the client used before. nghttp2 drops a
    /// HEADERS frame on a lower, unknown stream without a word; the RFC asks for a connection error. (Streams that
    /// closed recently are still known to nghttp2, which keeps them as the RFC 7540 priority tree did, so late
    /// trailers on a stream just reset are not taken for a new stream.)
    fileprivate func beganFrame(type: UInt8, stream: Int32) {
        guard type == UInt8(NGHTTP2_HEADERS.rawValue), stream & 1 == 1, stream < highestRequestStream,
              nghttp2_session_find_stream(session, stream) == nil
        else { return }
        nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR.rawValue)
    }

    fileprivate func beganHeaders(stream: Int32, category: nghttp2_headers_category) {
        if category == NGHTTP2_HCAT_REQUEST { highestRequestStream = max(highestRequestStream, stream) }
        var fields: [Field] = []
        fields.reserveCapacity(16)
        incoming = (stream, fields, 0, category == NGHTTP2_HCAT_REQUEST, false)
    }

    fileprivate func header(stream: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Bool {
        // RFC 9113 §6.5.2 counts each field as name + value + 32 octets.
        guard incoming?.stream == stream else { return false }
        if incoming!.oversized { return true }
        let size = incoming!.size + name.count + value.count + 32
        guard size <= maxHeaderListSize else {
            // Trailers over the bound reset the stream (nghttp2 answers a failed callback with RST_STREAM); a
            // request's head is read to its end, its fields dropped, and answered 431.
            guard incoming!.isRequest else { return false }
            incoming!.oversized = true
            incoming!.fields = []
            return true
        }
        incoming!.size = size
        incoming!.fields.append(Field(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self)))
        return true
    }

    fileprivate func headerBlockEnded(stream: Int32, category: nghttp2_headers_category, endStream: Bool) {
        let fields = incoming?.stream == stream ? incoming!.fields : []
        let oversized = incoming?.stream == stream && incoming!.oversized
        incoming = nil
        if category == NGHTTP2_HCAT_REQUEST {
            events.append(oversized
                ? .headerListTooLarge(stream: stream, endStream: endStream)
                : .request(stream: stream, fields: fields, endStream: endStream))
        } else if endStream {
            events.append(.trailers(stream: stream, fields: fields))
        }
    }

    fileprivate func dataChunk(stream: Int32, pointer: UnsafePointer<UInt8>, count: Int) {
        nghttp2_session_consume_connection(session, count)
        if let input, let inputBase {
            let offset = UnsafeRawPointer(pointer) - inputBase
            if offset >= 0, offset + count <= input.readableBytes,
               let slice = input.getSlice(at: input.readerIndex + offset, length: count) {
                events.append(.body(stream: stream, slice))
                return
            }
        }
        var copy = ByteBuffer()
        copy.writeBytes(UnsafeRawBufferPointer(start: pointer, count: count))
        events.append(.body(stream: stream, copy))
    }

    fileprivate func dataEnded(stream: Int32) {
        events.append(.end(stream: stream))
    }

    fileprivate func sentFrame(type: UInt8, flags: UInt8, stream: Int32) {
        guard flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
              type == UInt8(NGHTTP2_DATA.rawValue) || type == UInt8(NGHTTP2_HEADERS.rawValue),
              let code = resetsAfterResponse.removeValue(forKey: stream)
        else { return }
        resetsDue.append((stream, code))
    }

    /// Whether a response finished with a reset still to send (see ``resetAfterResponse(stream:code:)``).
    public var hasResetsDue: Bool { !resetsDue.isEmpty }

    fileprivate func closed(stream: Int32, errorCode: UInt32) {
        resetsAfterResponse.removeValue(forKey: stream)
        if incoming?.stream == stream { incoming = nil }
        if let state = outgoing.removeValue(forKey: stream) {
            abandoned.append(contentsOf: state.promises)
        }
        events.append(.closed(stream: stream, errorCode: errorCode))
    }

    /// Copies up to `length` queued body bytes for nghttp2's next DATA frame.
    fileprivate func readBody(stream: Int32, into target: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let state = outgoing[stream] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        let written = state.take(into: target, length: length, taken: &taken)
        if state.isEmpty && state.ended {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            if let trailers = outgoing.removeValue(forKey: stream)?.trailers {
                flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                withPairs(trailers) { nva, count in _ = nghttp2_submit_trailer(session, stream, nva, count) }
            }
            return written
        }
        if written == 0 {
            state.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return written
    }

    /// Calls `body` with `fields` as nghttp2 name-value pairs (nghttp2 copies them before `body` returns).
    private func withPairs(_ fields: FieldList, _ body: (UnsafePointer<nghttp2_nv>, Int) -> Void) {
        fields.bytes.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress else {
                var none = nghttp2_nv()
                body(&none, 0)
                return
            }
            pairs.removeAll(keepingCapacity: true)
            for range in fields.ranges {
                pairs.append(nghttp2_nv(
                    name: UnsafeMutablePointer(mutating: base + range.name), value: UnsafeMutablePointer(mutating: base + range.value),
                    namelen: range.nameLength, valuelen: range.valueLength, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            pairs.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}

// MARK: - C callbacks

private func sessionObject(_ userData: UnsafeMutableRawPointer?) -> HTTP2ServerSession {
    Unmanaged<HTTP2ServerSession>.fromOpaque(userData!).takeUnretainedValue()
}

private let onBeginFrame: nghttp2_on_begin_frame_callback = { _, header, userData in
    guard let header else { return 0 }
    sessionObject(userData).beganFrame(type: header.pointee.type, stream: header.pointee.stream_id)
    return 0
}

private let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    sessionObject(userData).beganHeaders(stream: frame.pointee.hd.stream_id, category: frame.pointee.headers.cat)
    return 0
}

private let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, _, userData in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let name, let value else { return 0 }
    let accepted = sessionObject(userData).header(
        stream: frame.pointee.hd.stream_id,
        name: UnsafeBufferPointer(start: name, count: nameLength),
        value: UnsafeBufferPointer(start: value, count: valueLength))
    // Over the header-list bound: nghttp2 resets the stream (the client was told the limit in SETTINGS).
    return accepted ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
}

private let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
    guard let frame else { return 0 }
    let session = sessionObject(userData)
    let header = frame.pointee.hd
    let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch header.type {
    case UInt8(NGHTTP2_HEADERS.rawValue):
        session.headerBlockEnded(stream: header.stream_id, category: frame.pointee.headers.cat, endStream: endStream)
    case UInt8(NGHTTP2_DATA.rawValue):
        if endStream { session.dataEnded(stream: header.stream_id) }
    default:
        break
    }
    return 0
}

private let onFrameSent: nghttp2_on_frame_send_callback = { _, frame, userData in
    guard let frame else { return 0 }
    let header = frame.pointee.hd
    sessionObject(userData).sentFrame(type: header.type, flags: header.flags, stream: header.stream_id)
    return 0
}

private let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, stream, data, length, userData in
    guard let data, length > 0 else { return 0 }
    sessionObject(userData).dataChunk(stream: stream, pointer: data, count: length)
    return 0
}

private let onStreamClose: nghttp2_on_stream_close_callback = { _, stream, errorCode, userData in
    sessionObject(userData).closed(stream: stream, errorCode: errorCode)
    return 0
}

private let readBodyCallback: nghttp2_data_source_read_callback = { _, stream, buffer, length, flags, _, userData in
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return sessionObject(userData).readBody(stream: stream, into: buffer, length: length, flags: flags)
}
