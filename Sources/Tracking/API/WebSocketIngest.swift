import CLZ4
import NIOCore
import NIOHTTP1
import Synchronization

/// The Go tracker's WebSocket ingest (`/tr/v1/ws`): each text message is one JSON event, each binary message the
/// same JSON compressed as the tracker's client sends it (a 4-byte little-endian uncompressed size, then an LZ4
/// block: lz4_flex's `compress_prepend_size`, go-lz4's `Encode`). A message becomes events exactly as a
/// `POST /tr/v1/tr/` with that body would (``TrackingAPI/handle(_:now:makeID:)``), so it has the same fields,
/// bounds and guarantees; only the answer, which a WebSocket has no place for, is dropped.
public struct WebSocketIngest: Sendable {
    public let api: TrackingAPI
    /// Largest message, compressed or not, and largest decompressed size (`tracking.api.max_body`).
    public var maxMessageBytes: Int { api.configuration.maxBodyBytes }
    /// Messages a connection may send per second on average, and in a burst.
    public static let messagesPerSecond = 50.0
    public static let burst = 200.0

    public init(api: TrackingAPI) {
        self.api = api
    }

    /// Why a message made no event.
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// The events of one message. `upgrade` is the WebSocket's opening request (cookie, origin, site): each message
    /// is answered as a POST of its JSON from that request, without a cookie being set (a WebSocket cannot take one).
    public func events(
        message: ByteBuffer, binary: Bool, upgrade: APIRequest, now: Int64, makeID: () -> EventID
    ) -> Result<[TrackingEvent], Refusal> {
        var body = message
        if binary {
            switch Self.inflate(message, maxBytes: maxMessageBytes) {
            case .success(let inflated): body = inflated
            case .failure(let refusal): return .failure(refusal)
            }
        }
        var request = upgrade
        request.method = .POST
        request.path = "/tr/v1/tr/"
        request.query = ""
        request.body = body
        request.issuesCookies = false
        switch api.handle(request, now: now, makeID: makeID) {
        case .respond(let response, let events):
            guard response.status == .ok else {
                let reason = String(buffer: response.body).trimmingCharacters(in: .whitespacesAndNewlines)
                return .failure(Refusal(description: reason.isEmpty ? "\(response.status.code)" : reason))
            }
            return .success(events)
        case .deferred:
            return .failure(Refusal(description: "not an event"))
        }
    }

    /// A size-prefixed LZ4 block, decompressed; the declared size must be at most `maxBytes` and match.
    public static func inflate(_ message: ByteBuffer, maxBytes: Int) -> Result<ByteBuffer, Refusal> {
        guard message.readableBytes > 4, let size = message.getInteger(at: message.readerIndex, endianness: .little, as: UInt32.self)
        else { return .failure(Refusal(description: "a binary message is a 4-byte size and an LZ4 block")) }
        guard size > 0, Int(size) <= maxBytes else {
            return .failure(Refusal(description: "the message inflates to \(size) bytes, more than the \(maxBytes) allowed"))
        }
        var output = ByteBuffer()
        let produced = message.withUnsafeReadableBytes { source -> Int32 in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(size)) { target in
                let count = LZ4_decompress_safe(
                    source.baseAddress!.advanced(by: 4).assumingMemoryBound(to: CChar.self),
                    target.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(source.count - 4), Int32(size))
                return max(0, Int(count))
            }
            return Int32(output.readableBytes)
        }
        guard produced == Int32(size) else {
            return .failure(Refusal(description: "the LZ4 block is corrupt or does not match its declared size"))
        }
        return .success(output)
    }
}

/// Figures of the WebSocket ingest, over every connection.
public final class WebSocketIngestCounters: Sendable {
    public let open = Atomic<Int>(0)
    public let recorded = Atomic<Int>(0)
    public let refused = Atomic<Int>(0)
    public let rateLimited = Atomic<Int>(0)
    let loggedRateLimit = Atomic<Bool>(false)

    public init() {}

    /// Whether this is the first time a connection went over its rate (logged once).
    public func firstRateLimit() -> Bool { !loggedRateLimit.exchange(true, ordering: .relaxed) }

    public func render(into text: inout String) {
        text += "# HELP vantage_websocket_ingest_connections WebSocket ingest connections open (/tr/v1/ws).\n"
        text += "# TYPE vantage_websocket_ingest_connections gauge\nvantage_websocket_ingest_connections \(open.load(ordering: .relaxed))\n"
        text += "# HELP vantage_websocket_ingest_messages_total WebSocket ingest messages by outcome.\n"
        text += "# TYPE vantage_websocket_ingest_messages_total counter\n"
        text += "vantage_websocket_ingest_messages_total{result=\"recorded\"} \(recorded.load(ordering: .relaxed))\n"
        text += "vantage_websocket_ingest_messages_total{result=\"refused\"} \(refused.load(ordering: .relaxed))\n"
        text += "vantage_websocket_ingest_messages_total{result=\"rate_limited\"} \(rateLimited.load(ordering: .relaxed))\n"
    }
}
