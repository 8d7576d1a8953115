import HTTP1Parser
import NIOHTTP1
import RequestTarget
import Static

/// The checks a request head passes before it is routed, and the one form it is routed and forwarded in.
///
/// Everything after admission (site and route selection, rate limits, body limits, the handlers, the upstream)
/// sees the same target: origin-form, its path in ``NormalizedPath``'s normal form, the query as sent, and `Host`
/// taken from an absolute-form target's authority when there was one. A refusal ends the connection.
enum RequestAdmission {
    struct Refusal: Equatable {
        var status: HTTPResponseStatus
        var reason: String
    }

    /// Checks `head`, and rewrites its target (and `Host`) in place when it was not in normal form. `headers` is
    /// the summary of `head.headers`, kept in step.
    static func admit(
        _ head: inout RequestHead, headers: inout RequestHeaderSummary, limits: Limits, isHTTP2: Bool
    ) -> Refusal? {
        if head.uri.utf8.count > limits.maxURILength {
            return Refusal(status: .uriTooLong, reason: "the request target is longer than \(limits.maxURILength) bytes")
        }
        if isHTTP2 && !RequestMethod.isAcceptable(head.method.rawValue) {
            return Refusal(status: .badRequest, reason: "the method must be an upper-case token")
        }
        if case .CONNECT = head.method {
            return Refusal(status: .methodNotAllowed, reason: "this server does not open tunnels (CONNECT)")
        }
        let target: RequestTarget
        switch RequestTarget.parse(head.uri) {
        case .success(let parsed): target = parsed
        case .failure(let rejection): return Refusal(status: .badRequest, reason: rejection.rawValue)
        }
        if target.path.utf8Equals("*") && head.method != .OPTIONS {
            return Refusal(status: .badRequest, reason: "the target * is only for OPTIONS")
        }
        if let authority = target.authority {
            // RFC 9112 §3.2.2: the authority of an absolute-form target takes the place of Host.
            let host = String(authority)
            head.headers.replaceOrAdd(name: "host", value: host)
            headers.host = host
        }
        if let host = headers.host, !HostName.isValidAuthority(host) {
            return Refusal(status: .badRequest, reason: "the Host header is not a valid host name")
        }
        guard !target.path.utf8Equals("*") else { return nil }
        switch NormalizedPath.normalize(target.path, encodedSlashes: limits.encodedSlashes) {
        case .success(let normal):
            if normal != nil || target.authority != nil { head.uri = target.originForm(path: normal) }
            return nil
        case .failure(let rejection):
            return Refusal(status: .badRequest, reason: rejection.rawValue)
        }
    }
}
