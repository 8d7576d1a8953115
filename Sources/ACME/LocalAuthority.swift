import Crypto
import Foundation
import SwiftASN1
import X509

/// `tls: { internal: true }`: a certificate authority of this machine, as Caddy's `tls internal`, for development
/// and private networks. Its root (`root.pem`, key `root.key` mode 0600) is made once in its folder and kept; the
/// server certificate for the configured names (and localhost) is issued from it for 30 days and issued again when
/// fewer than 10 days remain or the names change. Trust the root once (`update-ca-certificates`, a browser's
/// authorities) and every certificate it issues is trusted.
public struct LocalAuthority: Sendable {
    /// The folder holding the root and the issued certificate.
    public let folder: String
    private let root: Certificate
    private let rootKey: P256.Signing.PrivateKey

    /// The root certificate's file, for trust stores.
    public var rootPath: String { folder + "/root.pem" }

    /// How long an issued certificate is valid, and when it is issued again.
    static let lifetime: TimeInterval = 30 * 86_400
    static let renewBefore: TimeInterval = 10 * 86_400

    /// Opens the authority in `folder`, making its root (valid ten years) the first time.
    public static func open(folder: String, now: Date = Date()) throws -> LocalAuthority {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let certificatePath = folder + "/root.pem", keyPath = folder + "/root.key"
        if FileManager.default.fileExists(atPath: certificatePath) {
            let root = try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8))
            let key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
            return LocalAuthority(folder: folder, root: root, rootKey: key)
        }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Vantage")
            CommonName("Vantage local authority \(ProcessInfo.processInfo.hostName)")
        }
        let root = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            },
            issuerPrivateKey: Certificate.PrivateKey(key))
        try write(key.pemRepresentation, to: keyPath, mode: 0o600)
        try write(try root.serializeAsPEM().pemString + "\n", to: certificatePath, mode: 0o644)
        return LocalAuthority(folder: folder, root: root, rootKey: key)
    }

    /// The server certificate for `names` (host names; `localhost` and the loopback addresses are always added):
    /// the files of the one issued before while it covers the names and has more than 10 days left, a new one
    /// otherwise. Returns the certificate (leaf, then the root) and key files.
    public func certificate(for names: [String], now: Date = Date()) throws -> (certificatePath: String, keyPath: String) {
        let dnsNames = Array(Set(names.map { $0.lowercased() } + ["localhost"])).sorted()
        let certificatePath = folder + "/server.pem", keyPath = folder + "/server.key", namesPath = folder + "/server.names"
        if let issued = try? String(contentsOfFile: namesPath, encoding: .utf8), issued == dnsNames.joined(separator: "\n"),
            let pem = try? String(contentsOfFile: certificatePath, encoding: .utf8),
            // The file holds the leaf, then the root.
            let first = IssuedCertificate.blocks(pem).first, let leaf = try? Certificate(pemEncoded: first),
            leaf.notValidAfter.timeIntervalSince(now) > Self.renewBefore
        {
            return (certificatePath, keyPath)
        }
        let key = P256.Signing.PrivateKey()
        var alternatives: [GeneralName] = dnsNames.map { .dnsName($0) }
        alternatives.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])))
        alternatives.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(Array(repeating: 0, count: 15) + [1]))))
        let leaf = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Self.lifetime),
            issuer: root.subject, subject: try DistinguishedName { CommonName(dnsNames.first { $0 != "localhost" } ?? "localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(alternatives)
                AuthorityKeyIdentifier(keyIdentifier: try root.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: Certificate.PrivateKey(rootKey))
        try Self.write(key.pemRepresentation, to: keyPath, mode: 0o600)
        try Self.write(try leaf.serializeAsPEM().pemString + "\n" + (try root.serializeAsPEM().pemString) + "\n", to: certificatePath, mode: 0o644)
        try Self.write(dnsNames.joined(separator: "\n"), to: namesPath, mode: 0o644)
        return (certificatePath, keyPath)
    }

    private static func write(_ text: String, to path: String, mode: Int) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }
}
