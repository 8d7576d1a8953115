import Synchronization

/// The HTTP-01 answers in play: token to key authorization. The gateway's HTTP listener asks it for every
/// `/.well-known/acme-challenge/<token>` request (RFC 8555 §8.3); the manager fills it for the life of a challenge.
public final class HTTP01Responder: Sendable {
    public static let pathPrefix = "/.well-known/acme-challenge/"
    /// Tokens held at once; a manager validates a handful of names at a time, so this is a bound, not a tuning.
    static let capacity = 4096
    private let answers = Mutex<[String: String]>([:])

    public init() {}

    func add(token: String, keyAuthorization: String) {
        answers.withLock { answers in
            if answers.count >= Self.capacity { answers.removeAll() }
            answers[token] = keyAuthorization
        }
    }

    func remove(token: String) {
        _ = answers.withLock { $0.removeValue(forKey: token) }
    }

    /// The body for a request path, if it is a challenge this process is answering.
    public func answer(forPath path: Substring) -> String? {
        guard path.hasPrefix(Self.pathPrefix) else { return nil }
        let token = path.dropFirst(Self.pathPrefix.count)
        guard !token.isEmpty else { return nil }
        return answers.withLock { $0[String(token)] }
    }
}
