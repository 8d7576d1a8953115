#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network such as `10.0.0.0/8` or `2001:db8::/32`; a bare address means a single host.
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    /// Address bytes (4 or 16).
    let network: [UInt8]
    /// Prefix length in bits.
    let prefixLength: Int

    /// Parses `address[/bits]`; nil when it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let bytes = parseIPAddress(String(first)) else { return nil }
        let maxBits = bytes.count * 8
        var bits = maxBits
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maxBits).contains(parsed) else { return nil }
            bits = parsed
        }
        network = Self.mask(bytes, bits)
        prefixLength = bits
    }

    /// Whether the address (given as bytes) lies inside the network. IPv4-mapped IPv6 addresses match IPv4 ranges.
    public func contains(_ address: [UInt8]) -> Bool {
        var candidate = address
        if network.count == 4, address.count == 16, address.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] {
            candidate = Array(address.suffix(4))
        }
        guard candidate.count == network.count else { return false }
        return Self.mask(candidate, prefixLength) == network
    }

    public var description: String {
        (formatIPAddress(network) ?? "?") + "/\(prefixLength)"
    }

    static func mask(_ bytes: [UInt8], _ bits: Int) -> [UInt8] {
        var out = bytes
        for index in out.indices {
            let remaining = bits - index * 8
            if remaining >= 8 { continue }
            out[index] = remaining <= 0 ? 0 : out[index] & UInt8(truncatingIfNeeded: 0xFF << (8 - remaining))
        }
        return out
    }
}

/// Parses an IPv4 or IPv6 literal into its bytes.
public func parseIPAddress(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
        return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
        return withUnsafeBytes(of: &v6) { Array($0) }
    }
    return nil
}

/// Formats address bytes as text.
public func formatIPAddress(_ bytes: [UInt8]) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = bytes.count == 4 ? AF_INET : AF_INET6
    let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
    guard ok != nil else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
