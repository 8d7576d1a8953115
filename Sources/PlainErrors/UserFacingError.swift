import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// Errors of the libraries underneath told in plain words (the proxy's logs and health checks, the ClickHouse
/// client, Edge's listeners): NIO's system-call errors name the call and errno
/// (`connect(descriptor:addr:size:): Connection refused (errno: 111)`); people need what happened.
public enum UserFacingError {
    /// A failed connection to `address`: "connection refused by 127.0.0.1:3000".
    public static func connecting(to address: String, _ error: any Error) -> String {
        if (error as? IOError)?.errnoCode == ECONNREFUSED { return "connection refused by \(address)" }
        if case .connectTimeout = error as? ChannelError { return "\(address) did not accept the connection in time" }
        return "connecting to \(address): \(describe(error))"
    }

    public static func describe(_ error: any Error) -> String {
        if let tls = tlsProblem(error) { return tls }
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        if let http = error as? HTTPClientError {
            switch http {
            case .connectTimeout: return "the connection timed out"
            case .readTimeout: return "no answer in time"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(http)"
            }
        }
        if let channel = error as? ChannelError {
            switch channel {
            case .connectTimeout: return "the connection timed out"
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed: return "the connection was closed"
            default: return "\(channel)"
            }
        }
        return "\(error)"
    }

    /// A TLS failure as the peer's fault in words ("its certificate is not valid for api.internal"), or nil when
    /// `error` is not one of NIOSSL's. BoringSSL reports reasons as names in an error stack
    /// (`...:CERTIFICATE_VERIFY_FAILED at ...`): the common ones are told, others keep their reason name.
    public static func tlsProblem(_ error: any Error) -> String? {
        if let extra = error as? NIOSSLExtraError {
            let text = "\(extra)"
            if extra == .failedToValidateHostname {
                // "…: Couldn't find NAME in certificate from peer"
                if let start = text.range(of: "Couldn't find "), let end = text.range(of: " in certificate") {
                    return "its certificate is not valid for \(text[start.upperBound..<end.lowerBound])"
                }
                return "its certificate is not valid for the name asked for"
            }
            if extra == .serverHostnameImpossibleToMatch { return "the server name asked for is not a DNS name" }
            return text
        }
        // After the handshake (TLS 1.3 refuses a missing client certificate then), BoringSSL's errors come bare.
        if let boring = error as? BoringSSLError { return tlsReason(boring) }
        guard let ssl = error as? NIOSSLError else { return nil }
        switch ssl {
        case .handshakeFailed(let reason), .shutdownFailed(let reason): return tlsReason(reason)
        case .uncleanShutdown: return "the peer closed the connection without ending TLS"
        case .noCertificateToValidate: return "the peer sent no certificate"
        case .unableToValidateCertificate: return "its certificate could not be checked"
        default: return "\(ssl)"
        }
    }

    private static func tlsReason(_ reason: BoringSSLError) -> String {
        let stack: [BoringSSLInternalError]
        switch reason {
        case .sslError(let errors), .unknownError(let errors): stack = errors
        case .zeroReturn, .syscallError: return "the peer closed the connection during the TLS handshake"
        default: return "the TLS handshake failed (\(reason))"
        }
        let text = stack.map(\.description).joined(separator: " ")
        if stack.contains(.eofDuringHandshake) { return "the peer closed the connection during the TLS handshake" }
        let known: [(String, String)] = [
            ("CERTIFICATE_VERIFY_FAILED", "its certificate is not signed by a trusted CA, or it has expired"),
            ("WRONG_VERSION_NUMBER", "it does not speak TLS on this port (plain HTTP?)"),
            ("PACKET_LENGTH_TOO_LONG", "it does not speak TLS on this port (plain HTTP?)"),
            ("CERTIFICATE_REQUIRED", "it requires a client certificate"),
            ("ALERT_UNKNOWN_CA", "it does not trust our client certificate"),
            ("ALERT_BAD_CERTIFICATE", "it refused our client certificate"),
            ("ALERT_HANDSHAKE_FAILURE", "it refused the handshake (no common TLS version or cipher, or a client certificate is required)"),
            ("ALERT_PROTOCOL_VERSION", "no TLS version in common"),
        ]
        if let match = known.first(where: { text.contains($0.0) }) { return match.1 }
        return "TLS failed (\(reasonName(in: text) ?? text))"
    }

    /// `SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at file:line` → `CERTIFICATE_VERIFY_FAILED`.
    private static func reasonName(in text: String) -> String? {
        guard let atRange = text.range(of: " at ") else { return nil }
        let head = text[..<atRange.lowerBound]
        guard let colon = head.lastIndex(of: ":") else { return nil }
        let name = head[head.index(after: colon)...]
        return name.isEmpty ? nil : String(name)
    }
}
