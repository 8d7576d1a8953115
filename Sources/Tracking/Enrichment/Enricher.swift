import Config
import Logging
import NIOCore
import Synchronization

/// `tracking.visitors` and `tracking.privacy`: how visitors are told apart and what is kept about them.
public struct VisitorConfiguration: Sendable, Equatable {
    /// Issue and read a visitor cookie; off: cookieless ids only (no consent banner needed for them).
    public var cookies = false
    public var cookieName = "vid"
    public var cookieMaxAgeSeconds = 365 * 86_400
    /// `Secure` on the cookie: always, never, or only over TLS (nil).
    public var cookieSecure: Bool?
    public var cookieHTTPOnly = true
    /// `Strict`, `Lax` or `None`.
    public var cookieSameSite = "Lax"
    public var cookieDomain: String?
    /// A session ends after this much inactivity.
    public var sessionTimeoutSeconds = 30 * 60
    /// Visitors whose sessions are remembered at once (the session table's bound).
    public var maxSessions = 1_000_000
    /// Honour `DNT: 1` / `Sec-GPC: 1`: such requests still count, without visitor, session, address or city.
    public var honorDoNotTrack = false
    public var honorGlobalPrivacyControl = false
    /// Networks of mail image proxies that announce no user agent of their own (Apple's Mail Privacy Protection
    /// relays): requests from them are machine opens (`mail_proxy`).
    public var mailProxyNetworks: [CIDR] = []
    /// Off: only the address policy applies (raw request events).
    public var enrich = true

    public init() {}
}

/// How the client address is stored: truncated to /24 or /48 (the default), whole, or not at all.
public enum ClientAddressPolicy: String, Sendable, Equatable {
    case truncated, full, none
}

/// What the data plane tells enrichment about a request and its answer; values it already holds.
public struct RequestFacts {
    public var clientAddress: String
    public var userAgent: String?
    public var cookie: String?
    public var doNotTrack: Bool
    public var globalPrivacyControl: Bool
    /// The site's host names (referrals from them are internal).
    public var siteHosts: [String]
    /// A visitor id the answer just issued in a cookie.
    public var issuedVisitorID: String?
    /// The connection's memo of its client (nil: worked out afresh).
    public var memo: ClientMemo?

    // Inlinable and whole: built for every request in Edge, where a call returned the struct through a copy, and
    // setting the fields one by one afterwards copied it again.
    @inlinable
    public init(
        clientAddress: String, userAgent: String?, cookie: String?, doNotTrack: Bool = false,
        globalPrivacyControl: Bool = false, siteHosts: [String] = [], issuedVisitorID: String? = nil, memo: ClientMemo? = nil
    ) {
        self.clientAddress = clientAddress
        self.userAgent = userAgent
        self.cookie = cookie
        self.doNotTrack = doNotTrack
        self.globalPrivacyControl = globalPrivacyControl
        self.siteHosts = siteHosts
        self.issuedVisitorID = issuedVisitorID
        self.memo = memo
    }
}

/// The pieces of enrichment every loop shares: session table, visitor keys, GeoIP database, and the settings a
/// reload may change (each loop's ``Enricher`` holds its own copy of those, for the request path).
public final class EnrichmentContext: Sendable {
    public let keyring: VisitorKeyring
    public let sessions: SessionTable
    public let geoIP: GeoIPSource
    /// The user-agent lists (nil: the built-in token rules).
    public let userAgentRules: UserAgentRules?
    private let settings: Mutex<(visitors: VisitorConfiguration, clientAddressPolicy: ClientAddressPolicy)>

    /// `keys`: the cookieless keys an earlier run saved (``VisitorStateFiles``), if still of use.
    public init(
        visitors: VisitorConfiguration, clientAddressPolicy: ClientAddressPolicy, geoIP: GeoIPSource,
        keys: VisitorKeyring.Keys? = nil, userAgentRules: UserAgentRules? = nil, logger: Logger
    ) {
        settings = Mutex((visitors, clientAddressPolicy))
        self.userAgentRules = userAgentRules
        self.geoIP = geoIP
        keyring = VisitorKeyring(restored: keys)
        sessions = SessionTable(visitors: visitors.maxSessions, timeoutSeconds: visitors.sessionTimeoutSeconds, logger: logger)
    }

    /// The settings in force (a lock: off the request path's hot loop; enrichers keep their own copy).
    public var visitors: VisitorConfiguration { settings.withLock { $0.visitors } }
    public var clientAddressPolicy: ClientAddressPolicy { settings.withLock { $0.clientAddressPolicy } }

    /// A reload's settings (the session table's size stays what it was at start).
    func update(visitors: VisitorConfiguration, clientAddressPolicy: ClientAddressPolicy) {
        settings.withLock { $0 = (visitors, clientAddressPolicy) }
        sessions.timeoutSeconds = UInt32(clamping: visitors.sessionTimeoutSeconds)
    }
}

/// One loop's enrichment: fills an event's visitor, session, device, bot, source and location fields and puts the
/// client address in its stored form, on the loop, before the event is spooled (so the raw address never reaches
/// the disk unless configured). Caches are per loop and take no lock; the session table is shared.
public final class Enricher: @unchecked Sendable {
    public let context: EnrichmentContext
    /// This loop's copy of the settings (replaced on the loop by a reload).
    public private(set) var visitors: VisitorConfiguration
    private var clientAddressPolicy: ClientAddressPolicy
    private var keepCoordinates = false
    private let userAgents: UserAgentCache
    private let locations: TwoGenerationCache<String, GeoLocation>
    private var locationGeneration = -1
    private var geoDatabase: GeoIPDatabase?
    private var keys: VisitorKeyring.Keys?
    /// Referrer host and category by (site, referrer): a site's referrers repeat, and classifying one takes a
    /// URL parse and suffix checks against a few dozen known hosts.
    private let referrers = TwoGenerationCache<ReferrerKey, (host: String, category: TrafficSource.Category)>(capacity: 4096)

    struct ReferrerKey: Hashable {
        var site: String
        var referrer: String
    }
    private var random = EventIDGenerator()
    /// Counts the reloads' settings taken (``ClientMemo``s worked out under older settings are stale).
    private var settingsGeneration = 0

    public init(context: EnrichmentContext, userAgentCacheSize: Int = 4096) {
        self.context = context
        visitors = context.visitors
        clientAddressPolicy = context.clientAddressPolicy
        userAgents = UserAgentCache(capacity: userAgentCacheSize, rules: context.userAgentRules)
        locations = TwoGenerationCache(capacity: 8192)
    }

    /// Takes a reload's settings; call on the enricher's loop.
    public func apply(visitors: VisitorConfiguration, clientAddressPolicy: ClientAddressPolicy) {
        self.visitors = visitors
        self.clientAddressPolicy = clientAddressPolicy
        settingsGeneration += 1
    }

    public var userAgentCacheHits: Int { userAgents.hits.value }
    public var userAgentCacheMisses: Int { userAgents.misses.value }

    /// Fills in `event` (whose kind, method, status and referrer the data plane set) from `facts`.
    public func enrich(_ event: inout TrackingEvent, facts: RequestFacts) {
        guard visitors.enrich else {
            event.clientAddress = storedAddress(facts.clientAddress)
            return
        }
        // The event's own touch (nil: a subresource, or internal navigation).
        let touch = event.kind != .request ? addSource(&event, siteHosts: facts.siteHosts) : nil
        if event.isServerSide {
            event.clientAddress = ""
            if !event.visitorID.isEmpty { identify(&event, facts: facts, touch: touch, memo: nil) }
            return
        }
        // Read through the (shared, immutable) classification: a copy of its agent or location would retain and
        // release each of their strings.
        let client = classify(facts)
        // A tracking-API call may have said what the app, OS and device are: that stays.
        if event.browser.isEmpty { (event.browser, event.browserVersion) = (client.agent.browser, client.agent.browserVersion) }
        if event.os.isEmpty { (event.os, event.osVersion) = (client.agent.os, client.agent.osVersion) }
        if event.device.isEmpty || client.agent.isBot { event.device = client.agent.device.rawValue }
        if let reason = client.agent.botReason {
            event.botReason = reason.rawValue
        } else if event.method == "HEAD" {
            // Browsers do not send HEAD for pages; link checkers and monitors do.
            event.botReason = "head"
            event.device = UserAgent.Device.bot.rawValue
        } else if client.isMailProxy {
            event.botReason = UserAgent.BotReason.mailProxy.rawValue
            event.device = UserAgent.Device.bot.rawValue
        }
        let optedOut = (visitors.honorDoNotTrack && facts.doNotTrack)
            || (visitors.honorGlobalPrivacyControl && facts.globalPrivacyControl)
        event.country = client.location.country
        if optedOut {
            event.clientAddress = ""
            return
        }
        event.region = client.location.region
        event.city = client.location.city
        if event.latitude == nil, !client.location.latitude.isNaN, !client.location.longitude.isNaN {
            event.latitude = client.location.latitude
            event.longitude = client.location.longitude
        }
        if let consent = facts.cookie.flatMap({ Self.cookieValue($0, name: "CookieConsent") }).flatMap({ Int64($0) }) {
            if event.consentFlags == 0 { event.consentFlags = consent }
        }
        identify(&event, facts: facts, touch: touch, memo: facts.memo)
        event.clientAddress = clientAddressPolicy == .truncated ? client.truncated : storedAddress(facts.clientAddress)
    }

    /// The client's device, stored address, location and mail-proxy flag: from the connection's memo when it holds
    /// this client under the settings in force, else worked out (and remembered there).
    private func classify(_ facts: RequestFacts) -> ClientMemo.Client {
        let geoGeneration = context.geoIP.generation
        if let known = facts.memo?.client(
            address: facts.clientAddress, userAgent: facts.userAgent, settingsGeneration: settingsGeneration,
            geoGeneration: geoGeneration)
        {
            return known
        }
        // GeoIP reads the truncated address whatever is stored, so its precision never exceeds a /24 or /48.
        let truncated = IPAnonymizer.anonymize(facts.clientAddress)
        let client = ClientMemo.Client(
            agent: userAgents.classify(facts.userAgent), truncated: truncated, location: locate(truncated),
            isMailProxy: CIDR.any(visitors.mailProxyNetworks, contains: facts.clientAddress))
        facts.memo?.remember(
            client, address: facts.clientAddress, userAgent: facts.userAgent, settingsGeneration: settingsGeneration,
            geoGeneration: geoGeneration)
        return client
    }

    /// Referrer host and category, campaign and click id from the landing URL (page views and API events: for
    /// assets the referrer is the page itself). Values the API sent explicitly stay. Returns the event's channel
    /// (nil for internal navigation: no new touch).
    private func addSource(_ event: inout TrackingEvent, siteHosts: [String]) -> MarketingChannel? {
        if event.referrer.isEmpty && event.query.isEmpty && event.utmSource.isEmpty && event.utmMedium.isEmpty
            && event.utmCampaign.isEmpty && event.utmTerm.isEmpty && event.utmContent.isEmpty && event.clickID.isEmpty
        {
            // A direct visit without tags (most page views): nothing to parse or classify.
            event.referrerHost = ""
            event.sourceCategory = TrafficSource.Category.direct.rawValue
            event.channel = MarketingChannel.direct.label
            return .direct
        }
        let source: TrafficSource
        if event.referrer.isEmpty {
            source = TrafficSource(referrerHost: "", category: .direct, query: event.query)
        } else {
            let key = ReferrerKey(site: event.site, referrer: event.referrer)
            let known = referrers[key] ?? {
                let classified = TrafficSource(referrer: event.referrer, query: "", ownHosts: siteHosts)
                referrers[key] = (classified.referrerHost, classified.category)
                return (classified.referrerHost, classified.category)
            }()
            source = TrafficSource(referrerHost: known.host, category: known.category, query: event.query)
        }
        // The landing's values, with those the API sent explicitly in their place.
        var tagged = source
        if !event.utmSource.isEmpty { tagged.utmSource = event.utmSource }
        if !event.utmMedium.isEmpty {
            tagged.utmMedium = event.utmMedium
            // A medium the API sent says what kind of source it was, as one in the landing URL would.
            switch event.utmMedium.lowercased() {
            case "email", "newsletter": tagged.category = .email
            case "social": tagged.category = .social
            default: break
            }
        }
        if !event.utmCampaign.isEmpty { tagged.utmCampaign = event.utmCampaign }
        if !event.utmTerm.isEmpty { tagged.utmTerm = event.utmTerm }
        if !event.utmContent.isEmpty { tagged.utmContent = event.utmContent }
        if !event.clickID.isEmpty { tagged.clickID = event.clickID }
        event.referrerHost = tagged.referrerHost
        event.sourceCategory = tagged.category.rawValue
        (event.utmSource, event.utmMedium, event.utmCampaign) = (tagged.utmSource, tagged.utmMedium, tagged.utmCampaign)
        (event.utmTerm, event.utmContent, event.clickID) = (tagged.utmTerm, tagged.utmContent, tagged.clickID)
        let touch = MarketingChannel.classify(tagged)
        event.channel = touch?.label ?? ""
        return touch
    }

    /// Visitor and session: the API's or cookie's id when there is one, else the cookieless id; the session table
    /// says whether this request continues a session, and the channel of its first touch.
    ///
    /// The session table is keyed by a hash of site and visitor id, whichever way the id came: so in cookie mode a
    /// browser's first page (no cookie yet: the cookieless id, which the cookie then set carries) and the requests
    /// after it (the cookie) are one visitor in one session.
    ///
    /// `memo` holds the request's client (``classify(_:)`` checked it): its cookieless id of the day is reused.
    private func identify(_ event: inout TrackingEvent, facts: RequestFacts, touch: MarketingChannel?, memo: ClientMemo?) {
        var cookieless = false
        var knownKey: UInt64?
        if event.visitorID.isEmpty, visitors.cookies {
            if let issued = facts.issuedVisitorID {
                event.visitorID = issued
            } else if let header = facts.cookie, let cookie = Self.cookieValue(header, name: visitors.cookieName),
                Self.acceptableVisitorID(cookie)
            {
                event.visitorID = String(cookie)
            }
        }
        if event.visitorID.isEmpty {
            let keyDay = currentKeys(day: event.timeMilliseconds / 86_400_000).day
            if let known = memo?.visitor, known.keyDay == keyDay, known.site == event.site {
                (event.visitorID, knownKey) = (known.id, known.sessionKey)
            } else {
                event.visitorID = cookielessID(
                    site: event.site, clientAddress: facts.clientAddress, userAgent: facts.userAgent, key: \.today,
                    timeMilliseconds: event.timeMilliseconds)
                if let memo {
                    let key = Self.sessionKey(site: event.site, visitorID: event.visitorID)
                    memo.visitor = ClientMemo.Visitor(site: event.site, keyDay: keyDay, id: event.visitorID, sessionKey: key)
                    knownKey = key
                }
            }
            cookieless = true
        }
        // Machines get a visitor id (so they can be counted) but no session: sessions are about people.
        guard event.botReason.isEmpty, event.sessionID.isEmpty else { return }
        let visitorKey = knownKey ?? Self.sessionKey(site: event.site, visitorID: event.visitorID)
        // Within one session timeout after midnight, yesterday's cookieless id may hold a session that goes on.
        var previousKey: UInt64?
        let sinceMidnight = event.timeMilliseconds / 1000 % 86_400
        if cookieless, sinceMidnight < Int64(visitors.sessionTimeoutSeconds) {
            let yesterdays = cookielessID(
                site: event.site, clientAddress: facts.clientAddress, userAgent: facts.userAgent, key: \.yesterday,
                timeMilliseconds: event.timeMilliseconds)
            previousKey = Self.sessionKey(site: event.site, visitorID: yesterdays)
        }
        let nowSeconds = UInt32(clamping: max(0, event.timeMilliseconds / 1000))
        // A page view that is internal navigation brings no channel; if it opens a session, that session is direct.
        let channel = touch ?? (event.kind == .request ? nil : .direct)
        let visit = context.sessions.visit(
            visitor: visitorKey, now: nowSeconds, newSession: random.nextRandom(), channel: channel?.rawValue ?? 0,
            carriedFrom: previousKey)
        event.sessionID = ShortID.string(visit.session)
        event.sessionStart = visit.isNew
        let sessionChannel = MarketingChannel(byte: visit.channel)
        event.sessionChannel = sessionChannel?.label ?? ""
        if event.channel.isEmpty, event.kind != .request { event.channel = event.sessionChannel }
    }

    /// The session table's key for a visitor of a site.
    static func sessionKey(site: String, visitorID: String) -> UInt64 {
        var hasher = SipHash24(key0: 0x7661_6e74_6167_6531, key1: 0)
        hasher.combineField(site)
        hasher.combineField(visitorID)
        return hasher.finalize()
    }

    /// The visitor id a cookie issued now to a browser without one carries: its cookieless id, so the requests it
    /// made before it returns the cookie (and those that never carry it) are the same visitor.
    public func visitorIDForCookie(site: String, clientAddress: String, userAgent: String?, timeMilliseconds: Int64) -> String {
        cookielessID(site: site, clientAddress: clientAddress, userAgent: userAgent, key: \.today, timeMilliseconds: timeMilliseconds)
    }

    /// The cookieless id of the request's browser under today's or yesterday's key of the day `timeMilliseconds`
    /// falls in.
    private func cookielessID(
        site: String, clientAddress: String, userAgent: String?, key: KeyPath<VisitorKeyring.Keys, VisitorKeyring.Key>,
        timeMilliseconds: Int64
    ) -> String {
        let keys = currentKeys(day: timeMilliseconds / 86_400_000)
        return ShortID.string(VisitorKeyring.visitorHash(
            key: keys[keyPath: key], site: site, clientAddress: clientAddress, userAgent: userAgent ?? ""))
    }

    private func currentKeys(day: Int64) -> VisitorKeyring.Keys {
        if let keys, keys.day == day { return keys }
        let fresh = context.keyring.keys(day: day)
        keys = fresh
        return fresh
    }

    /// The address as the configuration stores it: /24 or /48 (the default), whole, or not at all.
    private func storedAddress(_ address: String) -> String {
        switch clientAddressPolicy {
        case .truncated: IPAnonymizer.anonymize(address)
        case .full: address
        case .none: ""
        }
    }

    /// GeoIP for the stored (truncated) address, so the precision never exceeds what is kept; cached per loop.
    private func locate(_ address: String) -> GeoLocation {
        guard !address.isEmpty else { return .unknown }
        let source = context.geoIP
        let generation = source.generation
        if generation != locationGeneration {
            locationGeneration = generation
            geoDatabase = source.current
            keepCoordinates = source.keepCoordinates
            locations.removeAll()
        }
        if let known = locations[address] { return known }
        guard let database = geoDatabase else { return .unknown }
        var location = database.lookup(address)
        if !keepCoordinates {
            location.latitude = .nan
            location.longitude = .nan
        }
        locations[address] = location
        return location
    }

    /// The `Set-Cookie` value issuing `visitorID`.
    public func visitorCookie(_ visitorID: String, secureTransport: Bool) -> String {
        Self.cookie(visitorID, visitors: visitors, secureTransport: secureTransport)
    }

    static func cookie(_ visitorID: String, visitors: VisitorConfiguration, secureTransport: Bool) -> String {
        var cookie = "\(visitors.cookieName)=\(visitorID); Max-Age=\(visitors.cookieMaxAgeSeconds); Path=/"
        if let domain = visitors.cookieDomain { cookie += "; Domain=\(domain)" }
        if visitors.cookieSecure ?? secureTransport { cookie += "; Secure" }
        if visitors.cookieHTTPOnly { cookie += "; HttpOnly" }
        cookie += "; SameSite=\(visitors.cookieSameSite)"
        return cookie
    }

    /// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
    public static func cookieValue(_ header: String, name: String) -> Substring? {
        var rest = header[...]
        while !rest.isEmpty {
            // Bytes, not characters: names compare as sent, and a header of every request is scanned here.
            let end = rest.utf8.firstIndex(of: UInt8(ascii: ";")) ?? rest.endIndex
            let pair = rest[..<end].drop { $0 == " " }
            if let equals = pair.utf8.firstIndex(of: UInt8(ascii: "=")), pair[..<equals].utf8.elementsEqual(name.utf8) {
                return pair[pair.utf8.index(after: equals)...]
            }
            rest = end < rest.endIndex ? rest[rest.utf8.index(after: end)...] : ""
        }
        return nil
    }

    /// Visitor ids from cookies and the API: 1 to 64 letters, digits, `-` and `_` (a UUID, a hash, an app's id).
    public static func acceptableVisitorID(_ value: Substring) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 64 else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                true
            default: false
            }
        }
    }
}
