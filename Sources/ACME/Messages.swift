import Foundation

/// The ACME resources Vantage reads (RFC 8555 §7.1), decoded leniently: unknown members are ignored.
public struct Directory: Decodable, Sendable {
    public var newNonce: String
    public var newAccount: String
    public var newOrder: String
    public var revokeCert: String?
    public var keyChange: String?
    /// ARI (RFC 9773): present when the CA suggests renewal windows.
    public var renewalInfo: String?
    public var meta: Meta?

    public struct Meta: Decodable, Sendable {
        public var termsOfService: String?
        public var externalAccountRequired: Bool?
    }
}

public struct Identifier: Codable, Sendable, Equatable {
    public var type: String
    public var value: String

    public static func dns(_ name: String) -> Identifier { Identifier(type: "dns", value: name) }
}

public struct Order: Decodable, Sendable {
    /// pending, ready, processing, valid, invalid.
    public var status: String
    public var identifiers: [Identifier]
    public var authorizations: [String]
    public var finalize: String
    public var certificate: String?
    public var error: Problem?
}

public struct Authorization: Decodable, Sendable {
    /// pending, valid, invalid, deactivated, expired, revoked.
    public var status: String
    public var identifier: Identifier
    public var challenges: [Challenge]
    public var wildcard: Bool?
}

public struct Challenge: Decodable, Sendable {
    public var type: String
    public var url: String
    public var status: String
    public var token: String?
    public var error: Problem?
}

/// A problem document (RFC 7807) as ACME servers send them.
public struct Problem: Decodable, Sendable, CustomStringConvertible {
    public var type: String?
    public var detail: String?
    public var status: Int?
    public var subproblems: [Problem]?

    public init(type: String? = nil, detail: String? = nil, status: Int? = nil) {
        self.type = type
        self.detail = detail
        self.status = status
    }

    /// `badNonce`, `rateLimited`, ... without the URN prefix.
    public var kind: String {
        let type = self.type ?? "about:blank"
        return type.hasPrefix("urn:ietf:params:acme:error:") ? String(type.dropFirst("urn:ietf:params:acme:error:".count)) : type
    }

    public var description: String {
        var text = "\(kind): \(detail ?? "no detail")"
        for sub in subproblems ?? [] { text += "; \(sub.detail ?? sub.kind)" }
        return text
    }
}

/// ARI's answer (RFC 9773 §4.2).
struct RenewalInfo: Decodable {
    struct Window: Decodable {
        var start: String
        var end: String
    }

    var suggestedWindow: Window
}

/// Why an ACME operation failed.
public enum ACMEError: Error, CustomStringConvertible, Sendable {
    /// The server answered with a problem document (`retryAfter` from its `Retry-After`, when given).
    case problem(Problem, status: Int, url: String, retryAfter: Date?)
    /// A challenge the CA tried failed: what it saw.
    case challengeFailed(name: String, type: String, problem: Problem?)
    /// An order or authorization ended in a state that cannot go on.
    case unexpected(String)
    /// Waiting for the server took too long.
    case timedOut(String)

    public var description: String {
        switch self {
        case .problem(let problem, let status, let url, _):
            return "the CA answered \(status) for \(url): \(problem)"
        case .challengeFailed(let name, let type, let problem):
            return "the \(type) challenge for \(name) failed: \(problem?.description ?? "no reason given")"
        case .unexpected(let text):
            return text
        case .timedOut(let text):
            return "timed out: \(text)"
        }
    }

    /// When the CA asked to be left alone until.
    public var retryAfter: Date? {
        if case .problem(_, _, _, let date) = self { return date }
        return nil
    }
}
