import Synchronization

/// The HTTP-01 answers in play: token to key authorization. The gateway's HTTP listener asks it for every
/// `/.well-known/acme-challenge/<token>` request (RFC 8555 §8.3); the manager fills it for the life of a challenge.
///
/// Answers are also written to the ACME storage (`challenges/<token>`), so that when several Vantage processes
/// share it behind one balancer, whichever receives the CA's request can answer a challenge another one started.
public final class HTTP01Responder: Sendable {
    public static let pathPrefix = "/.well-known/acme-challenge/"
    /// Tokens held at once; a manager validates a handful of names at a time, so this is a bound, not a tuning.
    static let capacity = 4096
    private let answers = Mutex<[String: String]>([:])
    private let storage = Mutex<(any ACMEStorage)?>(nil)

    public init() {}

    /// The storage shared with other processes (nil: ACME is off, and challenge paths belong to the sites).
    public func share(through storage: (any ACMEStorage)?) {
        self.storage.withLock { $0 = storage }
    }

    /// Whether ACME is on here: a challenge this process does not hold may be in storage, and an unknown token is
    /// answered 404 rather than passed to a site.
    public var ownsChallengePaths: Bool { storage.withLock { $0 != nil } }

    /// A challenge another process sharing the storage started. Reads a file: call it off the event loops.
    public func storedAnswer(forPath path: Substring) -> String? {
        guard path.hasPrefix(Self.pathPrefix), let storage = storage.withLock({ $0 }) else { return nil }
        let token = path.dropFirst(Self.pathPrefix.count)
        guard !token.isEmpty, token.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
        return (try? storage.load("challenges/\(token)")).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
    }

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
