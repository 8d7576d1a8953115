import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate chain with its key, as issued and as stored: PEM texts plus what renewal needs to know.
public struct IssuedCertificate: Sendable, Equatable {
    /// The names the certificate was ordered for.
    public var names: [String]
    /// Leaf first, then intermediates.
    public var chainPEM: String
    /// The certificate's private key (PKCS #8 PEM).
    public var keyPEM: String
    public var notBefore: Date
    public var notAfter: Date
    /// The leaf's ARI identifier (RFC 9773 §4.1): base64url(authority key identifier) "." base64url(serial).
    public var renewalID: String?

    /// Reads the leaf of `chainPEM`; throws when there is none or it cannot be parsed.
    public init(names: [String], chainPEM: String, keyPEM: String) throws {
        guard let leafPEM = Self.blocks(chainPEM).first else {
            throw ACMEError.unexpected("the certificate chain holds no certificate")
        }
        let leaf = try Certificate(pemEncoded: leafPEM)
        self.names = names
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
        notBefore = leaf.notValidBefore
        notAfter = leaf.notValidAfter
        if let authority = (try? leaf.extensions.authorityKeyIdentifier)??.keyIdentifier {
            renewalID = Base64URL.encode(Array(authority)) + "." + Base64URL.encode(Array(leaf.serialNumber.bytes))
        }
    }

    /// Every PEM certificate block of `text`.
    static func blocks(_ text: String) -> [String] {
        var blocks: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = rest.range(of: "-----END CERTIFICATE-----", range: start.upperBound..<rest.endIndex)
        {
            blocks.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        return blocks
    }

    /// A self-signed certificate for `name`, valid for ten years: what the TLS listener presents before any real
    /// certificate exists (on-demand TLS with nothing issued yet), so handshakes can reach the on-demand callback.
    public static func selfSigned(name: String) throws -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName(name)]) },
            issuerPrivateKey: Certificate.PrivateKey(key))
        return try IssuedCertificate(names: [name], chainPEM: try certificate.serializeAsPEM().pemString + "\n", keyPEM: key.pemRepresentation)
    }

    /// A fresh P-256 key and the DER CSR for `names` (the first is the subject's common name; all are DNS SANs).
    static func makeRequest(names: [String]) throws -> (key: P256.Signing.PrivateKey, csr: [UInt8]) {
        let key = P256.Signing.PrivateKey()
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames(names.map { .dnsName($0) })
        }
        let csr = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName(names[0]) },
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256)
        var serializer = DER.Serializer()
        try serializer.serialize(csr)
        return (key, serializer.serializedBytes)
    }
}
