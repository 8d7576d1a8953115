import Config
import Foundation
import NIOCore

/// A listen address from the config: `:8080` (all IPv4 interfaces), `127.0.0.1:8080`, `[::1]:8443` or `[::]:80`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// Host part as written (`0.0.0.0` for `:port`).
    public var host: String
    /// Port; 0 picks a free port (tests), and the log says which.
    public var port: Int

    /// Parses the text form.
    public init(parsing text: String) throws(ListenAddressError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var hostPart: Substring
        var portPart: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { throw ListenAddressError(text: text) }
            hostPart = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ListenAddressError(text: text) }
            portPart = rest.dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { throw ListenAddressError(text: text) }
            hostPart = trimmed[..<colon]
            portPart = trimmed[trimmed.index(after: colon)...]
            if hostPart.contains(":") { throw ListenAddressError(text: text) }
        }
        if hostPart.isEmpty { hostPart = "0.0.0.0" }
        guard let port = Int(portPart), (0...65535).contains(port) else { throw ListenAddressError(text: text) }
        guard (try? SocketAddress(ipAddress: String(hostPart), port: port)) != nil else {
            throw ListenAddressError(text: text)
        }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The socket address to bind.
    public func socketAddress() throws -> SocketAddress { try SocketAddress(ipAddress: host, port: port) }
}

/// A listen address that is not of the accepted forms.
public struct ListenAddressError: Error {
    var text: String
}

extension ConfigNode {
    /// Reads one listen address or a list of them.
    func listenAddresses() throws -> [ListenAddress] {
        try list().map { item in
            let text = try item.string()
            do {
                return try ListenAddress(parsing: text)
            } catch {
                throw item.error(
                    "expected a listen address such as \":8080\", \"127.0.0.1:8080\" or \"[::1]:8443\", found \"\(text)\"")
            }
        }
    }
}
