import Foundation
import NIOCore
import PlainErrors

/// A problem that stops the gateway from starting or reloading: a certificate that does not load, a port already in
/// use. The message says what and where.
public struct GatewayError: Error, CustomStringConvertible {
    /// What went wrong, for the log and the terminal.
    public var message: String

    /// Creates an error with a message.
    public init(message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension GatewayError {
    /// Why a listener could not be opened, in the words of the person who configured it rather than the socket
    /// call's (`bind(descriptor:ptr:bytes:): Address already in use (errno: 98)`).
    init(listening address: String, kind: String, port: Int, _ error: any Error) {
        let reason: String
        switch (error as? IOError)?.errnoCode {
        case EADDRINUSE: reason = "port \(port) is already in use by another process (`ss -ltnp 'sport = :\(port)'` shows which)"
        case EACCES: reason = "ports below 1024 need root or the CAP_NET_BIND_SERVICE capability (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)"
        case EADDRNOTAVAIL: reason = "no network interface of this machine has that address"
        default: reason = UserFacingError.describe(error)
        }
        self.init(message: "cannot listen on \(address) (\(kind)): \(reason)")
    }
}
