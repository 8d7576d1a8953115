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
        address.withUnsafeBytes { contains(bytes: $0) }
    }

    /// The same, on bytes in place: no allocation (request paths check client addresses against lists).
    public func contains(bytes address: UnsafeRawBufferPointer) -> Bool {
        var start = 0
        if network.count == 4, address.count == 16 {
            for index in 0..<10 where address[index] != 0 { return false }
            guard address[10] == 0xFF, address[11] == 0xFF else { return false }
            start = 12
        }
        guard address.count - start == network.count else { return false }
        for index in network.indices {
            let remaining = prefixLength - index * 8
            if remaining <= 0 { return true }
            let mask: UInt8 = remaining >= 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - remaining))
            if address[start + index] & mask != network[index] { return false }
        }
        return true
    }

    /// Whether any of `networks` contains the address written as `text` (false when it is not an address); parsed
    /// on the stack.
    public static func any(_ networks: [CIDR], contains text: String) -> Bool {
        guard !networks.isEmpty else { return false }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { bytes in networks.contains { $0.contains(bytes: bytes) } }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { bytes in networks.contains { $0.contains(bytes: bytes) } }
        }
        return false
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
