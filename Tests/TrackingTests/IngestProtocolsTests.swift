import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import Tracking

/// The pure parts of the older systems' ingest: the NATS protocol parser, the tracker's LZ4 messages, webhook
/// signatures and the compatibility paths.
@Suite struct IngestProtocolsTests {
    @Test func theNATSParserYieldsWholeOperationsFromAnySplit() throws {
        let stream = "INFO {\"headers\":true,\"max_payload\":1048576}\r\nPING\r\nMSG a.b 1 5\r\nhello\r\n"
            + "HMSG _INBOX.x.1 1 16 18\r\nNATS/1.0 503\r\n\r\nok\r\n+OK\r\n-ERR 'Authorization Violation'\r\n"
        let bytes = Array(stream.utf8)
        // Every split point gives the same operations.
        for split in stride(from: 0, through: bytes.count, by: 7) {
            var parser = NATSParser()
            var buffer = ByteBuffer(bytes: bytes[..<split])
            var operations: [NATSParser.Operation] = []
            while let operation = try parser.next(&buffer) { operations.append(operation) }
            buffer.writeBytes(bytes[split...])
            while let operation = try parser.next(&buffer) { operations.append(operation) }
            #expect(operations.count == 6, "split at \(split): \(operations)")
            #expect(operations[1] == .ping && operations[4] == .ok)
            #expect(operations[5] == .error("Authorization Violation"))
            guard case .message(let subject, let sid, _, let headers, let payload) = operations[3] else {
                Issue.record("expected HMSG")
                continue
            }
            #expect(subject == "_INBOX.x.1" && sid == "1" && String(buffer: payload) == "ok")
            #expect(NATSParser.status(of: headers) == 503)
        }
        var parser = NATSParser()
        var huge = ByteBuffer(string: "MSG a 1 999999999\r\n")
        #expect(throws: NATSParser.ProtocolError.self) { _ = try parser.next(&huge) }
        var unknown = ByteBuffer(string: "WHAT\r\n")
        #expect(throws: NATSParser.ProtocolError.self) { _ = try parser.next(&unknown) }
    }

    @Test func publicationsCarryTheirIdInAHeaderBlock() {
        var buffer = ByteBuffer()
        NATSWriter.publish("vantage.events", replyTo: "_INBOX.a.1", headers: [("Nats-Msg-Id", "id-1")], payload: ByteBuffer(string: "{}"), into: &buffer)
        #expect(String(buffer: buffer) == "HPUB vantage.events _INBOX.a.1 31 33\r\nNATS/1.0\r\nNats-Msg-Id: id-1\r\n\r\n{}\r\n")
    }

    @Test func lz4MessagesAreSizePrefixedBlocks() throws {
        let message = try #require(Self.compressed("hello hello hello hello"))
        let inflated = try WebSocketIngest.inflate(message, maxBytes: 1024).get()
        #expect(String(buffer: inflated) == "hello hello hello hello")
        // A size over the limit, a size that does not match, and garbage are refused.
        #expect(throws: WebSocketIngest.Refusal.self) { try WebSocketIngest.inflate(message, maxBytes: 8).get() }
        var lying = message
        lying.setInteger(UInt32(40), at: lying.readerIndex, endianness: .little)
        #expect(throws: WebSocketIngest.Refusal.self) { try WebSocketIngest.inflate(lying, maxBytes: 1024).get() }
        #expect(throws: WebSocketIngest.Refusal.self) { try WebSocketIngest.inflate(ByteBuffer(bytes: [5, 0, 0, 0, 0xFF, 0xFF]), maxBytes: 1024).get() }
    }

    /// A size-prefixed LZ4 block of `text`: one literal run and no match, valid LZ4 for any input (the end-to-end
    /// test sends blocks Python's lz4 compressed).
    static func compressed(_ text: String) -> ByteBuffer? {
        // Literal-only LZ4 block: one token with the literal length, the bytes, no match (valid for any input).
        let bytes = Array(text.utf8)
        var block: [UInt8] = []
        var length = bytes.count
        if length < 15 {
            block.append(UInt8(length << 4))
        } else {
            block.append(0xF0)
            length -= 15
            while length >= 255 {
                block.append(255)
                length -= 255
            }
            block.append(UInt8(length))
        }
        block += bytes
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(bytes.count), endianness: .little)
        buffer.writeBytes(block)
        return buffer
    }

    @Test func webhookSignaturesAreCheckedInEachScheme() throws {
        let secret = Array("a-shared-secret".utf8)
        let body = ByteBuffer(string: #"{"x":1}"#)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(body.readableBytesView), using: SymmetricKey(data: secret))
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        let github = WebhookConfiguration.Verification(scheme: .github, header: "X-Hub-Signature-256", secret: secret)
        #expect(WebhookReceiver.check(github, body: body, headers: ["X-Hub-Signature-256": "sha256=" + hex], now: 0) == nil)
        #expect(WebhookReceiver.check(github, body: body, headers: ["X-Hub-Signature-256": "sha256=" + String(hex.reversed())], now: 0) != nil)
        #expect(WebhookReceiver.check(github, body: body, headers: [:], now: 0)?.contains("missing") == true)
        let stripe = WebhookConfiguration.Verification(scheme: .stripe, header: "Stripe-Signature", secret: secret)
        let signed = HMAC<SHA256>.authenticationCode(for: Array("1700000000.".utf8) + Array(body.readableBytesView), using: SymmetricKey(data: secret))
            .map { String(format: "%02x", $0) }.joined()
        let header = "t=1700000000,v1=\(signed)"
        #expect(WebhookReceiver.check(stripe, body: body, headers: ["Stripe-Signature": header], now: 1_700_000_100_000) == nil)
        #expect(WebhookReceiver.check(stripe, body: body, headers: ["Stripe-Signature": header], now: 1_700_001_000_000)?.contains("five minutes") == true)
    }

    @Test func compatibilityPathsAreRoutedExactly() {
        #expect(CompatEndpoint.route("/t/app_open") == .pushtech(event: "app_open"))
        #expect(CompatEndpoint.route("/t/a/b") == .pushtech(event: "b"))
        #expect(CompatEndpoint.route("/event") == .pushtech(event: "event"))
        #expect(CompatEndpoint.route("/track") == .alcolyticsTrack && CompatEndpoint.route("/img") == .alcolyticsPixel)
        #expect(CompatEndpoint.route("/api/tracking-cookie") == .traceGliderCookie)
        #expect(CompatEndpoint.route("/tracking") == nil && CompatEndpoint.route("/api/other") == nil)
        #expect(TrackingAPI.profileCookie(name: "tracking_id", value: "x", maxAge: 10, sameSiteNone: true, secure: false)
            == "tracking_id=x; Max-Age=10; Path=/; HttpOnly; SameSite=Lax", "SameSite=None only with Secure")
    }
}
