#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Upstream selection as pure functions over the group's weights and each upstream's state, so every policy can be
/// tested without sockets. The mutable part (round-robin position) is a small value each event loop keeps per
/// group: loops never contend, and over many requests each loop's share follows the weights.
public enum Balancer {
    /// Per event loop and group: smooth weighted round-robin counters and a rotation for ties.
    public struct State: Sendable {
        var current: [Int]
        var rotation = 0

        public init(count: Int) {
            current = Array(repeating: 0, count: count)
        }
    }

    /// A set of upstream indices (a group has at most 64).
    public struct IndexSet: Sendable, Equatable {
        var bits: UInt64 = 0
        public init() {}
        public func contains(_ index: Int) -> Bool { bits & (1 << UInt64(index)) != 0 }
        public mutating func insert(_ index: Int) { bits |= 1 << UInt64(index) }
        public var isEmpty: Bool { bits == 0 }
    }

    /// Picks an upstream among those `eligible` says may take the request.
    ///
    /// - Parameters:
    ///   - weights: weight of each upstream.
    ///   - eligible: whether an upstream is available (healthy and not yet tried by this request).
    ///   - active: requests in flight per upstream (read by `leastConnections` only).
    ///   - key: the hashing key for the hash policies; nil falls back to round robin.
    /// - Returns: the index, or nil when nothing is eligible.
    public static func pick(
        _ balance: ProxyConfiguration.Balance, weights: [Int], state: inout State, key: String?,
        eligible: (Int) -> Bool, active: (Int) -> Int
    ) -> Int? {
        switch balance {
        case .roundRobin:
            return smoothWeightedRoundRobin(weights: weights, state: &state, eligible: eligible)
        case .leastConnections:
            return leastConnections(weights: weights, state: &state, eligible: eligible, active: active)
        case .clientAddressHash, .headerHash:
            guard let key else { return smoothWeightedRoundRobin(weights: weights, state: &state, eligible: eligible) }
            return rendezvous(weights: weights, key: key, eligible: eligible)
        }
    }

    /// nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a, not a a a a a b c.
    static func smoothWeightedRoundRobin(weights: [Int], state: inout State, eligible: (Int) -> Bool) -> Int? {
        if state.current.count != weights.count { state = State(count: weights.count) }
        var best: Int?
        var total = 0
        for index in weights.indices where eligible(index) {
            state.current[index] += weights[index]
            total += weights[index]
            if best == nil || state.current[index] > state.current[best!] { best = index }
        }
        if let best { state.current[best] -= total }
        return best
    }

    /// Fewest requests in flight relative to weight; ties rotate so equal upstreams share the load.
    static func leastConnections(weights: [Int], state: inout State, eligible: (Int) -> Bool, active: (Int) -> Int)
        -> Int?
    {
        let count = weights.count
        guard count > 0 else { return nil }
        state.rotation = (state.rotation + 1) % count
        var best: Int?
        var bestActive = 0
        for step in 0..<count {
            let index = (state.rotation + step) % count
            guard eligible(index) else { continue }
            let load = active(index)
            // load/weight < bestLoad/bestWeight, without division.
            if best == nil || load * weights[best!] < bestActive * weights[index] {
                best = index
                bestActive = load
            }
        }
        return best
    }

    /// Weighted rendezvous (highest random weight) hashing: a key keeps its upstream while that upstream is up, and
    /// when one goes away only its keys move.
    static func rendezvous(weights: [Int], key: String, eligible: (Int) -> Bool) -> Int? {
        let keyHash = fnv1a(key)
        var best: Int?
        var bestScore = -Double.infinity
        for index in weights.indices where eligible(index) {
            let mixed = mix(keyHash ^ (UInt64(index &+ 1) &* 0x9E37_79B9_7F4A_7C15))
            // Uniform in (0, 1); score = -weight / ln(u), larger wins.
            let unit = (Double(mixed >> 11) + 0.5) / Double(UInt64(1) << 53)
            let score = -Double(weights[index]) / log(unit)
            if score > bestScore {
                bestScore = score
                best = index
            }
        }
        return best
    }

    /// FNV-1a: stable across processes, so a client keeps its upstream across restarts too.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    /// SplitMix64's finalizer, to spread the combined hash over all bits.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
