import Config
import Foundation
import NIOSSL

/// How Vantage speaks TLS to `https://` upstreams (`proxy.tls`).
///
/// ```yaml
/// proxy:
///   upstreams: ["https://api.internal:8443"]
///   tls:
///     ca: certs/internal-ca.pem          # trusted CAs (PEM); default: the system's trust store
///     client_certificate: certs/edge.pem # mutual TLS: the certificate (chain) Vantage presents
///     client_key: certs/edge.key
///     server_name: api.internal          # SNI and the name checked in the certificate; default: the host
///     verify: true                       # false: accept any certificate (testing only)
/// ```
///
/// The files are read and the TLS context made when the configuration is loaded, so a missing file, a key that
/// does not match its certificate or a file that is not PEM is a configuration error with its line, and a reload
/// picks up renewed files. Two settings are equal when their files' contents are, so a reload with unchanged files
/// keeps the upstream's pooled connections and a renewed client certificate starts a fresh pool.
public struct UpstreamTLS: Sendable, Hashable {
    /// PEM bytes of the trusted CAs; nil trusts the system's store.
    let trustedPEM: [UInt8]?
    /// PEM bytes of the client certificate chain and its key, for mutual TLS.
    let clientCertificatePEM: [UInt8]?
    let clientKeyPEM: [UInt8]?
    /// The name sent as SNI and matched against the certificate instead of the upstream's host.
    public let serverName: String?
    /// False: no verification at all (nginx's default `proxy_ssl_verify off`; here only on request).
    public let verify: Bool
    /// Made once per load, shared by every connection to the upstreams of the route.
    let context: NIOSSLContext

    public static let keys = ["ca", "client_certificate", "client_key", "server_name", "verify"]

    /// The settings of an `https://` upstream without a `tls:` section: the system's CAs, full verification.
    public static func systemDefault() throws -> UpstreamTLS {
        try UpstreamTLS(trustedPEM: nil, clientCertificatePEM: nil, clientKeyPEM: nil, serverName: nil, verify: true)
    }

    /// Reads a `tls:` mapping, loading its files (relative to the configuration file's folder).
    public init(from node: ConfigNode) throws {
        let map = try node.mapping(keys: Self.keys)
        func contents(_ key: String) throws -> (bytes: [UInt8], node: ConfigNode)? {
            guard let value = map[key] else { return nil }
            let path = try value.path()
            guard let data = FileManager.default.contents(atPath: path) else {
                throw value.error("cannot read \(path): no such file, or not readable by this user")
            }
            return (Array(data), value)
        }
        let trusted = try contents("ca")
        if let trusted {
            guard (try? NIOSSLCertificate.fromPEMBytes(trusted.bytes))?.isEmpty == false else {
                throw trusted.node.error("expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)")
            }
        }
        switch (map["client_certificate"], map["client_key"]) {
        case (let certificate?, nil): throw certificate.error("client_certificate needs client_key beside it")
        case (nil, let key?): throw key.error("client_key needs client_certificate beside it")
        default: break
        }
        let certificate = try contents("client_certificate")
        let key = try contents("client_key")
        if let certificate, let key {
            guard (try? NIOSSLCertificate.fromPEMBytes(certificate.bytes))?.isEmpty == false else {
                throw certificate.node.error("expected a PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
            guard (try? NIOSSLPrivateKey(bytes: key.bytes, format: .pem)) != nil else {
                throw key.node.error("expected an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)")
            }
        }
        var serverName: String?
        if let value = map["server_name"] {
            let name = try value.nonEmptyString()
            guard name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") }) else {
                throw value.error("expected a host name, found \"\(name)\"")
            }
            serverName = name
        }
        let verify = try map["verify"]?.bool() ?? true
        do {
            try self.init(
                trustedPEM: trusted?.bytes, clientCertificatePEM: certificate?.bytes, clientKeyPEM: key?.bytes,
                serverName: serverName, verify: verify)
        } catch {
            // Each file parsed on its own above: what is left is the pair not belonging together.
            throw (key?.node ?? node).error(
                "the client key does not belong to the client certificate, or the TLS settings are unusable (\(error))")
        }
    }

    private init(
        trustedPEM: [UInt8]?, clientCertificatePEM: [UInt8]?, clientKeyPEM: [UInt8]?, serverName: String?, verify: Bool
    ) throws {
        self.trustedPEM = trustedPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.serverName = serverName
        self.verify = verify
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // HTTP/1.1 is what the upstream pools speak; a server that would pick h2 must not.
        configuration.applicationProtocols = ["http/1.1"]
        configuration.certificateVerification = verify ? .fullVerification : .none
        if let trustedPEM {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(trustedPEM))
        }
        if let clientCertificatePEM, let clientKeyPEM {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(clientCertificatePEM).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: clientKeyPEM, format: .pem))
        }
        // A pooled connection's close waits this long at most for the upstream's close_notify.
        configuration.shutdownTimeout = .seconds(2)
        context = try NIOSSLContext(configuration: configuration)
    }

    public static func == (lhs: UpstreamTLS, rhs: UpstreamTLS) -> Bool {
        lhs.trustedPEM == rhs.trustedPEM && lhs.clientCertificatePEM == rhs.clientCertificatePEM
            && lhs.clientKeyPEM == rhs.clientKeyPEM && lhs.serverName == rhs.serverName && lhs.verify == rhs.verify
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(trustedPEM)
        hasher.combine(clientCertificatePEM)
        hasher.combine(serverName)
        hasher.combine(verify)
    }

    /// The name sent as SNI and checked in the certificate of `address`: `server_name`, else its host unless that is
    /// an IP address (then no SNI, and the certificate must name the address).
    func serverName(for address: UpstreamAddress) -> String? {
        if let serverName { return serverName }
        return address.hostIsIPAddress ? nil : address.host
    }
}
