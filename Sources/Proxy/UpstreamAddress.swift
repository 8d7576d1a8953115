import NIOCore

/// Where an upstream listens: `host:port`, `http://host:port[/]`, `https://host[:port]`, `[v6]:port` or
/// `unix:/path/to.sock`.
///
/// Host names are resolved once, when the configuration is read (NIO's resolver would block an event loop), so a
/// change of address needs a reload.
public struct UpstreamAddress: Sendable, Hashable, CustomStringConvertible {
    /// What the configuration said, normalized: `host:port`, `https://host:port` or `unix:/path`.
    public let description: String
    /// The `host:port` used for `host: upstream` (the port left out when it is the scheme's default).
    public let authority: String
    /// `https://`: requests go over TLS (``UpstreamTLS``).
    public let isTLS: Bool
    /// The host as written, without brackets: the name sent as SNI and checked in the upstream's certificate.
    public let host: String
    /// The host is an IP address literal (no SNI; the certificate must name the address).
    public let hostIsIPAddress: Bool
    let socketAddress: SocketAddress

    struct ParseError: Error {
        var message: String
    }

    public static func == (lhs: UpstreamAddress, rhs: UpstreamAddress) -> Bool { lhs.description == rhs.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    init(parsing text: String) throws {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") || path.hasPrefix(".") else {
                throw ParseError(message: "expected unix:/absolute/path.sock, found \"\(text)\"")
            }
            do {
                socketAddress = try SocketAddress(unixDomainSocketPath: path)
            } catch {
                throw ParseError(message: "the socket path \"\(path)\" is too long")
            }
            description = "unix:" + path
            authority = "localhost"
            isTLS = false
            host = "localhost"
            hostIsIPAddress = false
            return
        }
        var rest = Substring(text)
        if rest.hasPrefix("https://") {
            isTLS = true
            rest = rest.dropFirst(8)
        } else {
            isTLS = false
            if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/") else {
            throw ParseError(message: "an upstream is an address without a path (use rewrite_prefix), found \"\(text)\"")
        }
        let host: String
        let portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ParseError(message: "unclosed [ in \"\(text)\"") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            portText = after.hasPrefix(":") ? after.dropFirst() : (after.isEmpty ? nil : after)
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            host = String(rest)
            portText = nil
        }
        var port = isTLS ? 443 : 80
        if let portText {
            guard let parsed = Int(portText), (1...65535).contains(parsed) else {
                throw ParseError(message: "expected host:port with a port from 1 to 65535, found \"\(text)\"")
            }
            port = parsed
        }
        guard !host.isEmpty else { throw ParseError(message: "expected host:port, found \"\(text)\"") }
        do {
            socketAddress = try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw ParseError(message: "cannot resolve upstream host \"\(host)\": \(error)")
        }
        self.host = host
        hostIsIPAddress = (try? SocketAddress(ipAddress: host, port: port)) != nil
        let bracketed = host.contains(":") ? "[\(host)]" : host
        let hostPort = "\(bracketed):\(port)"
        description = isTLS ? "https://" + hostPort : hostPort
        authority = port == (isTLS ? 443 : 80) ? bracketed : hostPort
    }
}
