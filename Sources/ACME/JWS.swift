import Crypto
import Foundation

/// An ACME account key (ECDSA P-256, `ES256`) and the JSON Web Signatures it makes (RFC 7515 flattened
/// serialization, as RFC 8555 §6.2 requires).
public struct AccountKey: Sendable {
    public let privateKey: P256.Signing.PrivateKey

    /// A new random key.
    public init() { privateKey = P256.Signing.PrivateKey() }

    /// A key read back from its PEM (PKCS #8).
    public init(pem: String) throws { privateKey = try P256.Signing.PrivateKey(pemRepresentation: pem) }

    public var pem: String { privateKey.pemRepresentation }

    /// The public key as a JWK with its members in lexicographic order and no whitespace: exactly the input of the
    /// thumbprint (RFC 7638 §3), and a valid `jwk` header as well.
    public var jwk: String {
        let point = privateKey.publicKey.rawRepresentation  // x ‖ y, 32 bytes each
        return "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(Base64URL.encode(point.prefix(32)))\",\"y\":\"\(Base64URL.encode(point.suffix(32)))\"}"
    }

    /// The JWK thumbprint (RFC 7638), which key authorizations end with.
    public var thumbprint: String { Base64URL.encode(Data(SHA256.hash(data: Data(jwk.utf8)))) }

    /// What an HTTP-01 challenge answers for `token` (RFC 8555 §8.1).
    public func keyAuthorization(token: String) -> String { "\(token).\(thumbprint)" }

    /// A signed request body. `keyID` is the account URL; without one (creating the account) the `jwk` is embedded.
    /// A nil `payload` is a POST-as-GET (an empty payload, RFC 8555 §6.3).
    public func sign(payload: Data?, url: String, nonce: String, keyID: String?) throws -> Data {
        var protected = "{\"alg\":\"ES256\","
        if let keyID {
            protected += "\"kid\":\(jsonString(keyID)),"
        } else {
            protected += "\"jwk\":\(jwk),"
        }
        protected += "\"nonce\":\(jsonString(nonce)),\"url\":\(jsonString(url))}"
        let protected64 = Base64URL.encode(Data(protected.utf8))
        let payload64 = payload.map { Base64URL.encode($0) } ?? ""
        // ES256 signatures are r ‖ s, 32 bytes each (RFC 7518 §3.4), not DER.
        let signature = try privateKey.signature(for: Data("\(protected64).\(payload64)".utf8))
        return Data(Self.flattened(protected64, payload64, Base64URL.encode(signature.rawRepresentation)).utf8)
    }

    /// The `externalAccountBinding` member of a new-account request (RFC 8555 §7.3.4): this key's JWK signed with
    /// the CA's MAC key (HS256).
    public func externalAccountBinding(keyID: String, macKey: Data, url: String) -> String {
        let protected64 = Base64URL.encode(Data("{\"alg\":\"HS256\",\"kid\":\(jsonString(keyID)),\"url\":\(jsonString(url))}".utf8))
        let payload64 = Base64URL.encode(Data(jwk.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(protected64).\(payload64)".utf8), using: SymmetricKey(data: macKey))
        return Self.flattened(protected64, payload64, Base64URL.encode(Data(mac)))
    }

    static func flattened(_ protected: String, _ payload: String, _ signature: String) -> String {
        "{\"protected\":\"\(protected)\",\"payload\":\"\(payload)\",\"signature\":\"\(signature)\"}"
    }
}
