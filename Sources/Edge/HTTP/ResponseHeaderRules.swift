import HeaderRules
import HTTP1Parser
import NIOHTTP1

/// A route's (or a site's) ``HeaderRules`` for answers, prepared once per configuration load: what the writer
/// needs to know besides the rules themselves.
final class ResponseHeaderRules: Sendable {
    let rules: HeaderRules
    /// `remove: [Server]` (or a `set`): the edge's own `Server: vantage` is left out.
    let omitsServer: Bool
    /// The rules set or remove `Strict-Transport-Security`: the site's `hsts` value is left out.
    let omitsHSTS: Bool
    /// No placeholder: the result is the same for every request, so cached heads can include it.
    let isConstant: Bool

    /// Nil for rules that change nothing.
    init?(_ rules: HeaderRules) {
        guard !rules.isEmpty else { return nil }
        self.rules = rules
        omitsServer = rules.replaces("server")
        omitsHSTS = rules.replaces("strict-transport-security")
        isConstant = rules.isConstant
    }

    /// Applies the rules; `facts` is only gathered when a value has placeholders (most rules have none, and
    /// gathering costs an allocation per request).
    func apply(to headers: inout HTTPHeaders, facts: @autoclosure () -> ExchangeFacts) {
        if isConstant {
            rules.apply(to: &headers, NoFacts())
        } else {
            rules.apply(to: &headers, facts())
        }
    }

    /// Calls `emit` with every added header, values rendered (`facts` gathered only when needed).
    func forEachAddition(facts: @autoclosure () -> ExchangeFacts, _ emit: (String, String) -> Void) {
        if isConstant {
            rules.forEachAddition(NoFacts(), emit)
        } else {
            rules.forEachAddition(facts(), emit)
        }
    }
}

/// The values of templates without placeholders: never asked.
private struct NoFacts: PlaceholderValues {
    func value(of placeholder: Placeholder) -> String { "" }
}

/// The request facts placeholders are filled from, read only when a rule has placeholders.
struct ExchangeFacts: PlaceholderValues {
    let head: RequestHead
    let host: String?
    let routePrefix: String?
    let isTLS: Bool
    let requestID: () -> String
    let clientAddress: () -> String
    /// For an error page: its status and reason.
    var error: (status: Int, reason: String)?

    func value(of placeholder: Placeholder) -> String {
        if let value = placeholder.value(inTarget: head.uri, routePrefix: routePrefix ?? "/") { return value }
        switch placeholder {
        case .host:
            // Only a name a Location or header can carry: the Host header is the client's to choose.
            guard let host, let authority = RequestRouter.redirectAuthority(host: host, port: 443) else { return "" }
            return authority
        case .requestID: return requestID()
        case .path, .rest, .query, .uri: return ""
        case .scheme: return isTLS ? "https" : "http"
        case .method: return head.method.rawValue
        case .remoteAddress: return clientAddress()
        case .status: return error.map { String($0.status) } ?? ""
        case .reason: return error?.reason ?? ""
        }
    }
}
