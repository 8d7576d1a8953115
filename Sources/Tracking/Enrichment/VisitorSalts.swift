/// Daily random keys for cookieless visitor ids (DESIGN.md §4): a visitor id is SipHash(salt of the day; site, IP,
/// user agent), so the same browser is one visitor within a UTC day and cannot be followed across days, and the ids
/// say nothing about the IP without the salt. Salts live only in memory here (a restart starts new ones, as a day
/// change does) and are never written with the events.
public struct VisitorSalts: Sendable {
    private var day: Int64 = .min
    private var key: (UInt64, UInt64) = (0, 0)

    public init() {}

    /// The cookieless visitor id for a request at `unixMilliseconds`; rotates the salt when the UTC day changed.
    public mutating func visitorID(site: String, clientAddress: String, userAgent: String, unixMilliseconds: Int64) -> UInt64 {
        let today = unixMilliseconds / 86_400_000
        if today != day {
            var random = SystemRandomNumberGenerator()
            key = (random.next(), random.next())
            day = today
        }
        var hasher = SipHash24(key0: key.0, key1: key.1)
        hasher.combineField(site)
        hasher.combineField(clientAddress)
        hasher.combineField(userAgent)
        return hasher.finalize()
    }
}
