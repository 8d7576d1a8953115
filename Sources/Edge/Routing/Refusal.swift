import HTTP1Parser
import NIOHTTP1

/// Every way the edge refuses a request before a handler answers it: what the client is told (status and a short
/// reason), whether the connection closes after the answer, and the kind it is counted under
/// (`vantage_refusals_total{kind}`).
///
/// A refusal that closes the connection is one after which the byte stream cannot be trusted (the request did not
/// parse, or its body will not be read) or one that sheds load; the others answer and go on serving the connection.
enum Refusal: Equatable {
    /// The server is at `limits.max_connections`.
    case overCapacity
    /// The bytes did not parse as a request (framing, a bare LF, a control character, a head or target too long…).
    case malformed(RequestParser.Refusal)
    /// The head parsed but cannot be routed safely (``RequestAdmission``: the target, Host, the method).
    case inadmissible(status: HTTPResponseStatus, reason: String)
    /// The connection's deadlines and bounds (head too large or too slow, a body that stalls or trickles).
    case connectionGuard(ConnectionGuardStateMachine.Rejection)
    /// HTTP/2: the header list is over `h2_max_header_list_size`.
    case headerListTooLarge(limit: Int)
    case unknownHost
    /// An HTTPS redirect cannot be built from the Host value.
    case invalidRedirectHost
    /// A site rewrite produced a target that cannot be served.
    case rewriteRefused(reason: String)
    case noRoute
    /// The route's rate limit or concurrency refused; `headers` say when to retry.
    case rateLimited(status: HTTPResponseStatus, message: String, headers: HTTPHeaders)
    case bodyTooLarge(limit: Int)
    /// `Expect` other than `100-continue`.
    case unsupportedExpectation

    /// The kinds refusals are counted under.
    enum Kind: String, CaseIterable {
        case overCapacity = "over_capacity"
        case malformed
        case inadmissible
        case headTooLarge = "head_too_large"
        case headTimeout = "head_timeout"
        case bodyTimeout = "body_timeout"
        case bodyTooSlow = "body_too_slow"
        case headerListTooLarge = "header_list_too_large"
        case unknownHost = "unknown_host"
        case invalidRedirectHost = "invalid_redirect_host"
        case rewriteRefused = "rewrite_refused"
        case noRoute = "no_route"
        case rateLimited = "rate_limited"
        case bodyTooLarge = "body_too_large"
        case unsupportedExpectation = "unsupported_expectation"
    }

    var kind: Kind {
        switch self {
        case .overCapacity: .overCapacity
        case .malformed: .malformed
        case .inadmissible: .inadmissible
        case .connectionGuard(.headerTooLarge): .headTooLarge
        case .connectionGuard(.headerTimeout): .headTimeout
        case .connectionGuard(.bodyTimeout): .bodyTimeout
        case .connectionGuard(.bodyTooSlow): .bodyTooSlow
        case .headerListTooLarge: .headerListTooLarge
        case .unknownHost: .unknownHost
        case .invalidRedirectHost: .invalidRedirectHost
        case .rewriteRefused: .rewriteRefused
        case .noRoute: .noRoute
        case .rateLimited: .rateLimited
        case .bodyTooLarge: .bodyTooLarge
        case .unsupportedExpectation: .unsupportedExpectation
        }
    }

    var status: HTTPResponseStatus {
        switch self {
        case .overCapacity: .serviceUnavailable
        case .malformed(let refusal): refusal.status
        case .inadmissible(let status, _): status
        case .connectionGuard(let rejection): rejection.status
        case .headerListTooLarge: .requestHeaderFieldsTooLarge
        case .unknownHost, .noRoute: .notFound
        case .invalidRedirectHost, .rewriteRefused: .badRequest
        case .rateLimited(let status, _, _): status
        case .bodyTooLarge: .payloadTooLarge
        case .unsupportedExpectation: .expectationFailed
        }
    }

    var reason: String {
        switch self {
        case .overCapacity: "the server is at its connection limit; retry shortly"
        case .malformed(let refusal): refusal.reason
        case .inadmissible(_, let reason): reason
        case .connectionGuard(let rejection): rejection.reason
        case .headerListTooLarge(let limit): "the request's header fields exceed \(limit) bytes (h2_max_header_list_size)"
        case .unknownHost: "no site is configured for this host"
        case .invalidRedirectHost: "the Host header is not a valid host name"
        case .rewriteRefused(let reason): reason
        case .noRoute: "no route matches this path"
        case .rateLimited(_, let message, _): message
        case .bodyTooLarge(let limit): "the request body is larger than \(limit) bytes"
        case .unsupportedExpectation: "only Expect: 100-continue is supported"
        }
    }

    /// The connection closes after the answer.
    var closesConnection: Bool {
        switch self {
        case .overCapacity, .malformed, .inadmissible, .connectionGuard, .headerListTooLarge, .bodyTooLarge,
            .unsupportedExpectation:
            true
        case .unknownHost, .invalidRedirectHost, .rewriteRefused, .noRoute, .rateLimited:
            false
        }
    }

    /// Fields the answer carries besides the error page's.
    var extraHeaders: HTTPHeaders {
        switch self {
        case .overCapacity: ["Retry-After": "1"]
        case .rateLimited(_, _, let headers): headers
        default: [:]
        }
    }
}
