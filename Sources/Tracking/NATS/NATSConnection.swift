import Foundation
import NIOCore
import NIOPosix

/// One connection to a NATS server, enough for publishing events with acknowledgements and for a subscriber: the
/// handshake (`INFO`, `CONNECT` with credentials, `PING`/`PONG`), `HPUB` with a `Nats-Msg-Id` header, JetStream's
/// per-message acknowledgements through an inbox, and `SUB`. Control plane: it runs on one event loop and is used
/// from async code (the sink's task, the CLI).
public final class NATSConnection: Sendable {
    /// Where and as whom to connect.
    public struct Options: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String?
        public var password: String?
        public var token: String?
        public var name = "vantage"

        /// `nats://[user:password@]host[:port]` (4222 by default).
        public init(url: String) throws {
            guard let components = URLComponents(string: url), components.scheme == "nats", let host = components.host, !host.isEmpty else {
                throw NATSError(description: "expected nats://host:port, found \"\(url)\"")
            }
            self.host = host
            port = components.port ?? 4222
            user = components.user
            password = components.password
        }
    }

    public struct NATSError: Error, CustomStringConvertible {
        public var description: String
    }

    /// How a published batch was taken.
    public enum Acknowledgement: Sendable, Equatable {
        /// A JetStream stream stored every message (each acknowledged by its id; a repeat is dropped by the stream).
        case stored
        /// No stream takes the subject: the server received the messages (its PONG came after them) and passed them
        /// to the subscribers present, with no storage.
        case delivered
    }

    let channel: any Channel
    private let handler: NATSClientHandler
    /// The server's version, from its `INFO`.
    public let serverVersion: String

    public var eventLoop: any EventLoop { channel.eventLoop }

    private init(channel: any Channel, handler: NATSClientHandler, serverVersion: String) {
        self.channel = channel
        self.handler = handler
        self.serverVersion = serverVersion
    }

    /// Connects, reads `INFO`, sends `CONNECT` and waits for the server's `PONG` (so credentials are checked).
    public static func connect(_ options: Options, group: any EventLoopGroup, timeout: TimeAmount = .seconds(5)) async throws -> NATSConnection {
        let loop = group.next()
        let info = loop.makePromise(of: String.self)
        let handler = NATSClientHandler(info: info)
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .connect(host: options.host, port: options.port).get()
        do {
            let infoText = try await withDeadline(info.futureResult, timeout: timeout, on: loop, what: "the server's INFO").get()
            let serverInfo = (try? JSONSerialization.jsonObject(with: Data(infoText.utf8))) as? [String: Any] ?? [:]
            guard serverInfo["headers"] as? Bool ?? false else {
                throw NATSError(description: "the NATS server does not support headers (2.2 or newer is needed)")
            }
            var connect: [String: Any] = [
                "verbose": false, "pedantic": false, "headers": true, "no_responders": true, "name": options.name,
                "lang": "swift", "version": "1", "protocol": 1,
            ]
            if let user = options.user { connect["user"] = user }
            if let password = options.password { connect["pass"] = password }
            if let token = options.token { connect["auth_token"] = token }
            let json = String(decoding: try JSONSerialization.data(withJSONObject: connect, options: [.sortedKeys]), as: UTF8.self)
            let connection = NATSConnection(channel: channel, handler: handler, serverVersion: serverInfo["version"] as? String ?? "")
            let maxPayload = serverInfo["max_payload"] as? Int ?? (1 << 20)
            try await loop.submit {
                handler.maxPayload = maxPayload
                var buffer = channel.allocator.buffer(capacity: json.utf8.count + 16)
                NATSWriter.connect(json, into: &buffer)
                channel.write(buffer, promise: nil)
                try handler.subscribeInbox(channel: channel)
            }.get()
            try await connection.flush(timeout: timeout)
            return connection
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    /// Sends `PING` and waits for the `PONG`: everything written before has been processed by the server.
    public func flush(timeout: TimeAmount = .seconds(5)) async throws {
        let handler = self.handler
        let channel = self.channel
        let pong = try await eventLoop.submit { handler.ping(channel: channel) }.get()
        try await Self.withDeadline(pong, timeout: timeout, on: eventLoop, what: "the server's PONG").get()
    }

    /// Whether a JetStream stream takes `subject` (`$JS.API.STREAM.NAMES` with a subject filter); false when the
    /// server has no JetStream.
    public func streamExists(for subject: String, timeout: TimeAmount = .seconds(2)) async throws -> Bool {
        let request = ByteBuffer(string: #"{"subject":"\#(subject)"}"#)
        let handler = self.handler
        let channel = self.channel
        let reply = try await eventLoop.submit {
            handler.request("$JS.API.STREAM.NAMES", payload: request, channel: channel)
        }.get()
        let answer = try await Self.withDeadline(reply, timeout: timeout, on: eventLoop, what: "JetStream's stream list").get()
        guard answer.status != 503 else { return false }  // no responders: JetStream is off
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.payload.readableBytesView))) as? [String: Any]
        let streams = object?["streams"] as? [String] ?? []
        return !streams.isEmpty
    }

    /// Publishes `messages` (each with its id as `Nats-Msg-Id`) to `subject` and waits until they are taken: each
    /// acknowledged by JetStream when `jetStream`, else all of them by one `PONG`. Throws on a refusal (JetStream's
    /// error answer), a timeout or a lost connection; the caller sends the batch again (ids make repeats harmless).
    public func publish(
        _ messages: [(id: String, payload: ByteBuffer)], subject: String, jetStream: Bool, timeout: TimeAmount = .seconds(10)
    ) async throws -> Acknowledgement {
        let handler = self.handler
        let channel = self.channel
        if !jetStream {
            try await eventLoop.submit {
                for message in messages {
                    handler.publish(subject, replyTo: nil, id: message.id, payload: message.payload, channel: channel)
                }
            }.get()
            try await flush(timeout: timeout)
            return .delivered
        }
        let acks = try await eventLoop.submit {
            messages.map { message in handler.publishAcknowledged(subject, id: message.id, payload: message.payload, channel: channel) }
        }.get()
        channel.flush()
        let all = EventLoopFuture.whenAllSucceed(acks, on: eventLoop)
        let answers = try await Self.withDeadline(all, timeout: timeout, on: eventLoop, what: "JetStream's acknowledgements").get()
        for answer in answers {
            if answer.status == 503 { throw NATSError(description: "no JetStream stream took the subject \(subject) any more") }
            let text = String(buffer: answer.payload)
            if text.contains("\"error\"") { throw NATSError(description: "JetStream refused a message: \(text.prefix(200))") }
        }
        return .stored
    }

    /// Subscribes to `subject`; `onMessage` gets each payload on the connection's loop.
    public func subscribe(_ subject: String, _ onMessage: @escaping @Sendable (ByteBuffer) -> Void) async throws {
        let handler = self.handler
        let channel = self.channel
        try await eventLoop.submit { handler.subscribe(subject, channel: channel, onMessage) }.get()
        try await flush()
    }

    /// Completes when the connection closes (the server went away, or `close()`), with the reason when there is one.
    public var closed: EventLoopFuture<Void> { channel.closeFuture }

    public func close() async {
        try? await channel.close()
    }

    static func withDeadline<Value: Sendable>(
        _ future: EventLoopFuture<Value>, timeout: TimeAmount, on loop: any EventLoop, what: String
    ) -> EventLoopFuture<Value> {
        let promise = loop.makePromise(of: Value.self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(NATSError(description: "no answer from NATS in time (\(what))")) }
        future.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}

/// An answer to a request or a published message: the `HMSG` status (503: no responders) and the payload.
struct NATSReply: Sendable {
    var status: Int
    var payload: ByteBuffer
}

/// The connection's only handler: parses what the server sends, answers its `PING`s, completes the waiting
/// promises. Touched on its channel's loop only.
final class NATSClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var parser = NATSParser()
    private var buffered: ByteBuffer?
    private var info: EventLoopPromise<String>?
    private var pongs: [EventLoopPromise<Void>] = []
    private var replies: [String: EventLoopPromise<NATSReply>] = [:]
    private var subscriptions: [String: @Sendable (ByteBuffer) -> Void] = [:]
    private var nextSID = 2
    private var nextToken = 0
    /// `_INBOX.<random>.` — replies to this connection's requests and publications arrive under it (sid 1).
    private let inbox = "_INBOX.vantage\(UInt64.random(in: 0...UInt64.max)).".replacingOccurrences(of: " ", with: "")
    var maxPayload: Int {
        get { parser.maxPayload }
        set { parser.maxPayload = newValue }
    }

    init(info: EventLoopPromise<String>) {
        self.info = info
    }

    func subscribeInbox(channel: any Channel) throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        NATSWriter.subscribe(inbox + "*", sid: "1", into: &buffer)
        channel.write(buffer, promise: nil)
    }

    func ping(channel: any Channel) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        pongs.append(promise)
        var buffer = channel.allocator.buffer(capacity: 8)
        NATSWriter.ping(into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
        return promise.futureResult
    }

    func publish(_ subject: String, replyTo: String?, id: String, payload: ByteBuffer, channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: payload.readableBytes + subject.utf8.count + 96)
        NATSWriter.publish(subject, replyTo: replyTo, headers: [("Nats-Msg-Id", id)], payload: payload, into: &buffer)
        channel.write(buffer, promise: nil)
    }

    func publishAcknowledged(_ subject: String, id: String, payload: ByteBuffer, channel: any Channel) -> EventLoopFuture<NATSReply> {
        let token = newToken()
        let promise = channel.eventLoop.makePromise(of: NATSReply.self)
        replies[token] = promise
        publish(subject, replyTo: inbox + token, id: id, payload: payload, channel: channel)
        return promise.futureResult
    }

    func request(_ subject: String, payload: ByteBuffer, channel: any Channel) -> EventLoopFuture<NATSReply> {
        let token = newToken()
        let promise = channel.eventLoop.makePromise(of: NATSReply.self)
        replies[token] = promise
        var buffer = channel.allocator.buffer(capacity: payload.readableBytes + 96)
        NATSWriter.publish(subject, replyTo: inbox + token, headers: [], payload: payload, into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
        return promise.futureResult
    }

    func subscribe(_ subject: String, channel: any Channel, _ onMessage: @escaping @Sendable (ByteBuffer) -> Void) {
        let sid = String(nextSID)
        nextSID += 1
        subscriptions[sid] = onMessage
        var buffer = channel.allocator.buffer(capacity: 64)
        NATSWriter.subscribe(subject, sid: sid, into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func newToken() -> String {
        nextToken += 1
        return String(nextToken)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var held = buffered {
            held.writeBuffer(&incoming)
            incoming = held
        }
        do {
            while let operation = try parser.next(&incoming) {
                handle(operation, context: context)
            }
        } catch {
            failAll(NATSConnection.NATSError(description: "the NATS server sent \(error)"))
            context.close(promise: nil)
            return
        }
        buffered = incoming.readableBytes > 0 ? incoming : nil
    }

    private func handle(_ operation: NATSParser.Operation, context: ChannelHandlerContext) {
        switch operation {
        case .info(let text):
            info?.succeed(text)
            info = nil
        case .ping:
            var buffer = context.channel.allocator.buffer(capacity: 8)
            NATSWriter.pong(into: &buffer)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .pong:
            if !pongs.isEmpty { pongs.removeFirst().succeed() }
        case .ok:
            break
        case .error(let text):
            failAll(NATSConnection.NATSError(description: "the NATS server said: \(text)"))
            context.close(promise: nil)
        case .message(let subject, let sid, _, let headers, let payload):
            if sid == "1", subject.hasPrefix(inbox) {
                let token = String(subject.dropFirst(inbox.count))
                replies.removeValue(forKey: token)?.succeed(NATSReply(status: NATSParser.status(of: headers), payload: payload))
            } else {
                subscriptions[sid]?(payload)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(NATSConnection.NATSError(description: "the connection to NATS closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        info?.fail(error)
        info = nil
        for pong in pongs { pong.fail(error) }
        pongs.removeAll()
        for reply in replies.values { reply.fail(error) }
        replies.removeAll()
    }
}
