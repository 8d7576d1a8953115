import AsyncHTTPClient
import Foundation
import NIOCore

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
}
