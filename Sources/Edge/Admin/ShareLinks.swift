import ACME
import Crypto
import Foundation
import Synchronization
import Tracking

/// Read-only links to one site's reports: `/share/<secret>/` opens that site's dashboard (and its CSV and JSON)
/// without the admin token, and nothing else. Made and revoked through the admin API with the token.
///
/// The secret is 128 random bits, shown once when the link is made; only its SHA-256 is kept, in a file of the
/// data folder (`shares`, owner-only, rewritten whole), so a copy of the file opens nothing. At most
/// ``capacity`` links.
final class ShareLinks: Sendable {
    struct Share: Codable, Equatable, Sendable {
        /// Names the link in the API (not a secret).
        var id: String
        var site: String
        /// SHA-256 of the secret, hex.
        var digest: String
        /// Unix seconds.
        var created: Int
    }

    static let capacity = 1000
    let path: String
    private let shares: Mutex<[Share]>

    /// Links saved in `path` (none when it does not exist or cannot be read).
    init(path: String) {
        self.path = path
        let saved = (try? Data(contentsOf: URL(fileURLWithPath: path))).flatMap { try? JSONDecoder().decode([Share].self, from: $0) }
        shares = Mutex(saved ?? [])
    }

    var all: [Share] { shares.withLock { $0 } }

    /// Why a link could not be made or removed.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Makes a link to `site`; returns it and its secret (shown once).
    func create(site: String, now: Date = Date()) throws(Failure) -> (share: Share, secret: String) {
        let secret = Self.randomToken(bytes: 16)
        let share = Share(id: Self.randomToken(bytes: 6), site: site, digest: Self.digest(secret), created: Int(now.timeIntervalSince1970))
        try change { (shares: inout [Share]) throws(Failure) in
            guard shares.count < Self.capacity else { throw Failure(description: "at most \(Self.capacity) share links; revoke some first") }
            shares.append(share)
        }
        return (share, secret)
    }

    /// Revokes a link; false when there is none by that id.
    func revoke(id: String) throws(Failure) -> Bool {
        var found = false
        try change { (shares: inout [Share]) throws(Failure) in
            let before = shares.count
            shares.removeAll { $0.id == id }
            found = shares.count != before
        }
        return found
    }

    /// The site a secret opens, if it is a live link's.
    func site(forSecret secret: Substring) -> String? {
        guard secret.utf8.count == 22 else { return nil }
        let digest = Self.digest(String(secret))
        return shares.withLock { shares in
            var site: String?
            // Every link is compared, in constant time, whichever matches.
            for share in shares where Signatures.equal(share.digest, digest) { site = share.site }
            return site
        }
    }

    /// Applies `body` to the links and writes them whole before the change counts.
    private func change(_ body: (inout [Share]) throws(Failure) -> Void) throws(Failure) {
        try shares.withLock { shares throws(Failure) in
            var changed = shares
            try body(&changed)
            let data: Data
            do {
                data = try JSONEncoder().encode(changed)
            } catch {
                throw Failure(description: "cannot encode the share links: \(error)")
            }
            do {
                try FileReplacement.replace(path, with: Array(data))
            } catch {
                throw Failure(description: "cannot save the share links in \(path): \(error)")
            }
            shares = changed
        }
    }

    static func digest(_ secret: String) -> String {
        Signatures.hex(SHA256.hash(data: Data(secret.utf8)))
    }

    /// `bytes` random bytes as base64url without padding.
    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
