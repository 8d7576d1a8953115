/// What enrichment worked out about one connection's client, so the requests of a keep-alive connection (one
/// address, one browser) are classified once rather than each time: the device and browser, the stored address,
/// the location, whether the address is a mail proxy's, and the cookieless visitor id of the day.
///
/// Every use compares the request's address and user agent with the memo's (a trusted proxy's connection carries
/// many clients, and a client may send another agent), and the enricher's settings and GeoIP generations with those
/// the values were worked out under; any difference works them out again. Owned by one connection and only used
/// on its event loop (`@unchecked Sendable` for that hand-over).
public final class ClientMemo: @unchecked Sendable {
    /// The client's classification, as ``Enricher`` works it out. A class, immutable: handing the memo's to each
    /// request is one reference, where a struct of a dozen strings was a dozen retains and releases a request.
    final class Client {
        let agent: UserAgent
        /// The address truncated to /24 or /48 (what GeoIP reads, and what is stored by default).
        let truncated: String
        let location: GeoLocation
        /// The address is in `tracking.visitors.mail_proxy_networks`.
        let isMailProxy: Bool

        init(agent: UserAgent, truncated: String, location: GeoLocation, isMailProxy: Bool) {
            self.agent = agent
            self.truncated = truncated
            self.location = location
            self.isMailProxy = isMailProxy
        }
    }

    /// The cookieless id of the client for a site under one day's key, and its session-table key.
    struct Visitor {
        var site: String
        var keyDay: Int64
        var id: String
        var sessionKey: UInt64
    }

    /// What the values were worked out from.
    private(set) var clientAddress = ""
    private(set) var userAgent: String?
    private(set) var settingsGeneration = -1
    private(set) var geoGeneration = -1

    private(set) var client: Client?
    /// Only valid for the client ``client`` describes (cleared with it).
    var visitor: Visitor?

    public init() {}

    /// The remembered classification, when it was worked out for this address and agent under these generations.
    @inline(__always)
    func client(address: String, userAgent: String?, settingsGeneration: Int, geoGeneration: Int) -> Client? {
        guard let client, self.settingsGeneration == settingsGeneration, self.geoGeneration == geoGeneration,
            clientAddress == address, self.userAgent == userAgent
        else { return nil }
        return client
    }

    /// Replaces the memo with a new client's classification (and forgets its visitor id).
    func remember(_ client: Client, address: String, userAgent: String?, settingsGeneration: Int, geoGeneration: Int) {
        self.client = client
        clientAddress = address
        self.userAgent = userAgent
        self.settingsGeneration = settingsGeneration
        self.geoGeneration = geoGeneration
        visitor = nil
    }
}
