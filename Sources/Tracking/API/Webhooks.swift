import Config
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// A `webhook` route: every call (any method) becomes a `webhook` event with its method, source, action and the
/// start of its body; a source with a secret must sign its calls (GitHub's or Stripe's scheme, or a hex HMAC in a
/// header), checked in constant time.
///
/// ```yaml
/// - path: /hooks/
///   webhook:
///     layout: source              # /hooks/<source>/<action...> (default); alcolytics: /<project>/<service>/<action>
///     keep: 4KB                   # body bytes kept in the event (props.body); longer bodies are cut and flagged
///     sources:
///       github: { secret_env: GITHUB_WEBHOOK_SECRET, scheme: github }     # X-Hub-Signature-256: sha256=<hex>
///       stripe: { secret_env: STRIPE_WEBHOOK_SECRET, scheme: stripe }     # Stripe-Signature: t=..,v1=<hex>
///       shop:   { secret_env: SHOP_SECRET, scheme: hex, header: X-Signature }
/// ```
public struct WebhookConfiguration: Sendable, Equatable {
    public enum Layout: String, Sendable, Equatable {
        /// `<prefix><source>/<action...>`.
        case source
        /// Alcolytics' `/webhook/<project>/<service>/<action>`: the service is the source.
        case alcolytics
    }

    /// How one source signs its calls.
    public struct Verification: Sendable, Equatable {
        public enum Scheme: String, Sendable, Equatable {
            /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>`.
            case github
            /// `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256("<t>.<body>")>`, within five minutes.
            case stripe
            /// `<header>: <hex HMAC-SHA256(body)>` (a `sha256=` prefix allowed).
            case hex
        }

        public var scheme: Scheme
        public var header: String
        let secret: [UInt8]
    }

    public var layout = Layout.source
    /// Body bytes kept in the event.
    public var keepBytes = 4096
    /// Sources that must sign, by name (lower-case).
    public var sources: [String: Verification] = [:]

    public init() {}

    public static let keys = ["layout", "keep", "sources"]

    public init(from node: ConfigNode) throws {
        if let enabled = try? node.bool() {
            guard enabled else { throw node.error("expected true or a mapping with \(Self.keys.joined(separator: ", "))") }
            return
        }
        let map = try node.mapping(keys: Self.keys)
        if let value = map["layout"] { layout = Layout(rawValue: try value.oneOf(["source", "alcolytics"]))! }
        if let value = map["keep"] {
            keepBytes = try value.byteSize()
            // Escaped into the event's props, whose record keeps 8 KB.
            guard (0...6144) ~= keepBytes else { throw value.error("expected at most 6KB of body kept in an event") }
        }
        if let value = map["sources"] {
            for (name, source) in try value.entries() {
                let settings = try source.mapping(keys: ["secret_env", "scheme", "header"])
                let variable = try settings.required("secret_env", expected: "the environment variable holding the shared secret").nonEmptyString()
                guard let secret = source.environmentValue(variable), secret.utf8.count >= 8 else {
                    throw source.error("expected the environment variable \(variable) to hold the webhook secret (8 bytes or more)")
                }
                let scheme = try settings["scheme"].map { Verification.Scheme(rawValue: try $0.oneOf(["github", "stripe", "hex"]))! } ?? .hex
                let header: String
                switch scheme {
                case .github: header = "X-Hub-Signature-256"
                case .stripe: header = "Stripe-Signature"
                case .hex: header = try settings.required("header", expected: "the header carrying the signature, such as X-Signature").nonEmptyString()
                }
                sources[name.lowercased()] = Verification(scheme: scheme, header: header, secret: Array(secret.utf8))
            }
        }
    }
}

/// Answers `webhook` routes (see ``WebhookConfiguration``).
public struct WebhookReceiver: Sendable {
    public let configuration: WebhookConfiguration
    /// The route's path prefix: the source and action are read after it.
    public let pathPrefix: String

    public init(configuration: WebhookConfiguration, pathPrefix: String) {
        self.configuration = configuration
        self.pathPrefix = pathPrefix
    }

    /// The call's event, or a refusal (an unsigned or wrongly signed call from a source that signs).
    public func handle(_ request: APIRequest, now: Int64, makeID: () -> EventID) -> APIOutcome {
        let segments = request.path.dropFirst(pathPrefix.utf8.count).split(separator: "/").map {
            APIFields.percentDecode($0, plusIsSpace: false)
        }
        var source = ""
        var action = ""
        var project: String?
        switch configuration.layout {
        case .source:
            source = segments.first ?? ""
            action = segments.dropFirst().joined(separator: "/")
        case .alcolytics:
            project = segments.first
            source = segments.count > 1 ? segments[1] : ""
            action = segments.dropFirst(2).joined(separator: "/")
        }
        let body = request.body ?? ByteBuffer()
        if let verification = configuration.sources[source.lowercased()] {
            if let problem = Self.check(verification, body: body, headers: request.headers, now: now) {
                return .respond(Self.answer(.unauthorized, "401 Unauthorized: \(problem)\n", contentType: "text/plain; charset=utf-8"), events: [])
            }
        }
        var fields = APIFields()
        try? fields.set("method", .text(request.method.rawValue))
        if let project { try? fields.set("oid", .text(project)) }
        if configuration.sources[source.lowercased()] != nil { try? fields.set("verified", .text("true")) }
        if let type = request.headers.first(name: "content-type") { try? fields.set("content_type", .text(type)) }
        // Which delivery this is, as the common senders name it (retries of one delivery share it).
        for name in ["X-GitHub-Delivery", "X-GitHub-Event", "X-Request-Id", "Idempotency-Key"] {
            if let value = request.headers.first(name: name) { try? fields.set(name.lowercased().replacingOccurrences(of: "-", with: "_"), .text(value)) }
        }
        if configuration.keepBytes > 0, body.readableBytes > 0 {
            // Only the kept start is decoded (a body may be megabytes); a character cut at its end is dropped.
            let start = body.readableBytesView.prefix(configuration.keepBytes + 4)
            let text = APIFields.prefix(of: String(decoding: start, as: UTF8.self), maxBytes: configuration.keepBytes)
            fields.setUnbounded("body", text)
            if body.readableBytes > text.utf8.count { fields.markTruncated("body") }
        }
        var event = TrackingAPI.event(kind: .webhook, fields: fields, id: makeID(), now: now)
        event.eventName = source
        event.eventType = action
        // The caller is a service, not a visitor: its address and agent say nothing about one.
        return .respond(Self.answer(.ok, #"{"result":"queued"}"#, contentType: "application/json"), events: [event])
    }

    /// Why a signed source's call is refused, or nil when its signature is right.
    static func check(_ verification: WebhookConfiguration.Verification, body: ByteBuffer, headers: HTTPHeaders, now: Int64) -> String? {
        guard let presented = headers.first(name: verification.header) else {
            return "this source signs its calls: \(verification.header) is missing"
        }
        let key = SymmetricKey(data: verification.secret)
        switch verification.scheme {
        case .github, .hex:
            var signature = Substring(presented.trimmingCharacters(in: .whitespaces))
            if signature.hasPrefix("sha256=") { signature = signature.dropFirst(7) }
            let expected = Signatures.hex(HMAC<SHA256>.authenticationCode(for: Array(body.readableBytesView), using: key))
            return Signatures.equal(signature.lowercased(), expected) ? nil : "the \(verification.header) signature does not match"
        case .stripe:
            var timestamp: Substring?
            var candidates: [Substring] = []
            for part in presented.split(separator: ",") {
                let pair = part.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                let name = pair[0].trimmingCharacters(in: .whitespaces)
                if name == "t" { timestamp = pair[1] } else if name == "v1" { candidates.append(pair[1]) }
            }
            guard let timestamp, let seconds = Int64(timestamp) else { return "Stripe-Signature has no t= timestamp" }
            guard abs(now / 1000 - seconds) <= 300 else { return "the Stripe-Signature timestamp is more than five minutes off" }
            let signed = Array(timestamp.utf8) + [UInt8(ascii: ".")] + Array(body.readableBytesView)
            let expected = Signatures.hex(HMAC<SHA256>.authenticationCode(for: signed, using: key))
            return candidates.contains { Signatures.equal($0.lowercased(), expected) } ? nil : "the Stripe-Signature does not match"
        }
    }

    private static func answer(_ status: HTTPResponseStatus, _ text: String, contentType: String) -> APIResponse {
        var response = APIResponse(status: status, body: ByteBuffer(string: text))
        response.headers.add(name: "Content-Type", value: contentType)
        response.headers.add(name: "Cache-Control", value: "no-store")
        response.headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        return response
    }
}
